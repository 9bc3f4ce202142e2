//! Criterion benchmarks of the client's profile store: unlocking a profile (scrypt at the
//! default cost, paid by every `sotto` command), sealing and opening one record, storing a
//! message, and listing a conversation of 1000 messages.
//!
//! Run: `cargo bench -p sotto-client --bench store -- --warm-up-time 1 --measurement-time 3`.
//! Results: `docs/performance.md` ("Client").

// Benchmark setup cannot recover from a failure and must stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `criterion_group!` defines an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde::{Deserialize, Serialize};
use sotto_client::store::{Slot, Store};
use sotto_client::vault::Vault;
use sotto_core::backup::ScryptParams;

#[derive(Serialize, Deserialize)]
struct Record {
    text: String,
    sent_at: u64,
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (_, key_file) = Vault::create(b"passphrase", ScryptParams::default()).unwrap();
    c.bench_function("unlock a profile key (scrypt 2^17, r 8)", |b| {
        b.iter(|| Vault::open(black_box(&key_file), b"passphrase").unwrap())
    });
    let (vault, _) = Vault::create(b"pw", ScryptParams::new(10, 8, 1).unwrap()).unwrap();
    let record = vec![7u8; 1024];
    c.bench_function("seal and open a 1 KiB record", |b| {
        b.iter(|| {
            let sealed = vault.seal(b"row", black_box(&record)).unwrap();
            vault.open_record(b"row", &sealed).unwrap()
        })
    });

    let store = Store::create(dir.path(), b"pw", ScryptParams::new(10, 8, 1).unwrap()).unwrap();
    let text = "x".repeat(200);
    let mut n = 0u64;
    c.bench_function("store one message (one durable transaction)", |b| {
        b.iter(|| {
            n += 1;
            let id = n.to_be_bytes();
            let conn = store.conn().unwrap();
            let value = Record {
                text: text.clone(),
                sent_at: n,
            };
            let key: [&[u8]; 2] = [b"bench", &id];
            let slot = Slot::in_group("message", &key, &[b"bench"]);
            store
                .put(&conn, slot, n as i64, Some(u64::MAX), &value)
                .unwrap();
        })
    });
    let conn = store.conn().unwrap();
    conn.execute("DELETE FROM records", []).unwrap();
    for i in 0..1000u64 {
        let id = i.to_be_bytes();
        let value = Record {
            text: text.clone(),
            sent_at: i,
        };
        let key: [&[u8]; 2] = [b"list", &id];
        let slot = Slot::in_group("message", &key, &[b"list"]);
        store.put(&conn, slot, i as i64, None, &value).unwrap();
    }
    drop(conn);
    c.bench_function("list a conversation of 1000 messages", |b| {
        b.iter(|| {
            let conn = store.conn().unwrap();
            let all: Vec<Record> = store.list(&conn, "message", Some(&[b"list"])).unwrap();
            assert_eq!(all.len(), 1000);
        })
    });
}

criterion_group!(benches, store);
criterion_main!(benches);
