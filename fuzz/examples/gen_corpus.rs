//! Writes seed corpora to `fuzz/corpus/<target>/` (git-ignored): valid encodings that the
//! fuzzer then mutates. Run from `fuzz/` with `cargo run --example gen_corpus`.
//!
//! Certificates and backups are made with fresh random keys, so each run writes new seeds
//! (named by content hash, so nothing is overwritten). The conversation and Welcome
//! targets make their own keys at start-up; their seeds select modes and templates. The
//! server targets get valid request bodies and frames, and real MLS messages; the client
//! targets valid records, answers, frames and locators, and a real key file and sealed
//! record (fresh keys each run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz_targets/common/mod.rs"]
mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use sotto_core::identity::DeviceId;
use sotto_core::safety;

fn write(target: &str, seeds: &[Vec<u8>]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for seed in seeds {
        let mut h = DefaultHasher::new();
        seed.hash(&mut h);
        std::fs::write(dir.join(format!("seed-{:016x}", h.finish())), seed).unwrap();
    }
    println!("{target}: {} seeds in {}", seeds.len(), dir.display());
}

fn prefixed(prefix: &[u8], items: &[Vec<u8>]) -> Vec<Vec<u8>> {
    items.iter().map(|i| [prefix, i].concat()).collect()
}

fn main() {
    let contents = common::contents(DeviceId([1; 16]));

    write(
        "certificate",
        &[common::certificate(), common::certificate()],
    );
    write("content", &contents);
    write("backup", &[common::sealed_backup()]);
    write("policy", &common::policies());

    let salt = b"0123456789abcdef".to_vec();
    let contacts: Vec<Vec<u8>> = [
        "+44 20 7946 0958",
        "0044-20-7946-0958",
        "+1 (555) 010.0199",
        "Alice@Example.ORG ",
        "  ÉLODIE@exemple.fr",
        "a@b@c.org",
    ]
    .iter()
    .map(|id| [&[16u8][..], &salt, id.as_bytes()].concat())
    .collect();
    write("contact", &contacts);

    let key = |fill: u8| {
        let mut k = vec![fill; 133];
        k[0] = 0x04;
        k
    };
    let number = safety::safety_number("alice", &key(1), "bob", &key(2)).unwrap();
    write(
        "safety",
        &[
            number.digits().as_bytes().to_vec(),
            number.to_string().into_bytes(),
        ],
    );

    let mut conversation = Vec::new();
    for template in 0u8..5 {
        conversation.push(vec![1, template, 0, 0, 20, 0x01]); // XOR one byte
        conversation.push(vec![1, template, 2, 0, 40, 0]); // truncate
    }
    conversation.extend(prefixed(&[2], &contents));
    conversation.extend(prefixed(&[3], &contents));
    conversation.push(vec![0]);
    write("conversation_process", &conversation);

    write(
        "welcome",
        &[
            vec![0],
            vec![1, 0, 0, 0, 0x01],
            vec![1, 0, 0, 64, 0x80],
            vec![1, 2, 0, 100, 0],
        ],
    );

    write("server_json", &common::server::request_seeds());
    write("server_ws_frame", &common::server::frame_seeds());
    write("server_classify", &common::server::mls_seeds());

    let (_, key_file, sealed) = &*common::client::VAULT;
    write("client_record", &common::client::record_seeds());
    write("client_sealed_record", &common::client::vault_seeds(sealed));
    write("client_key_file", &common::client::vault_seeds(key_file));
    write("client_answer", &common::client::answer_seeds());
    write("client_ws_frame", &common::client::frame_seeds());
    write("client_locator", &common::client::locator_seeds());
}
