//! Criterion benchmarks of sotto-core's costly operations: certificates, KeyPackages,
//! creating and joining conversations, sending and receiving a 1 KiB message, and
//! commits, at group sizes up to 1000 devices. One ECDSA P-521 signature and one
//! verification are measured as well: the performance aims are stated against them.
//!
//! Run (about 3 minutes on 2 cores):
//! `cargo bench -p sotto-core --bench core -- --warm-up-time 1 --measurement-time 3`.
//! Results and analysis: `docs/performance.md`.
//!
//! A group size counts devices (MLS leaves). Groups are built the cheap way: one creator
//! (the only manager) adds the other devices in as few commits as possible. Only the
//! devices that must act (a receiver, a joiner) process anything; the others only supply
//! a KeyPackage, so their `Device` is dropped once it has made one.

// Benchmark setup cannot recover from a failure and must stop loudly, so the workspace's
// ban on `unwrap`/`expect` (meant for library code) is lifted here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode};
use sotto_core::content::{Body, Content};
use sotto_core::conversation::{Conversation, Event};
use sotto_core::crypto::{verify_p521, SigningKey};
use sotto_core::device::{Device, NewDevice, SottoConfig};
use sotto_core::identity::{UserId, UserRootKey};
use sotto_core::identity_provider::forget_verified_identities;
use sotto_core::policy::{BurnOnRead, Policy};

/// A fixed "now", in milliseconds since the Unix epoch.
const NOW_MS: u64 = 1_800_000_000_000;
/// Size of the benchmarked message body: 1 KiB of text.
const MESSAGE_LEN: usize = 1024;
/// The largest group benchmarked, in devices.
const MAX_GROUP: usize = 1000;
/// Group sizes of the message benchmarks.
const MESSAGE_GROUPS: [usize; 3] = [2, 100, MAX_GROUP];
/// Group sizes of the create-and-add benchmark.
const CREATE_GROUPS: [usize; 3] = [10, 100, MAX_GROUP];
/// Group size of the join, update and remove benchmarks.
const COMMIT_GROUP: usize = 100;
/// Most KeyPackages added by one commit that a member must process in the message
/// benchmarks (a KeyPackage takes about 1.3 KB of a commit; a Welcome carries the whole
/// tree, about 1.25 KB per member; both stay far below `MAX_MESSAGE_LEN`, 16 MiB). The
/// receiver joins while the group is small, so that building the group stays quick.
const ADD_BATCH: usize = 400;

type Conv = Conversation<SottoConfig>;

/// A new device of a new user `name`, with in-memory state.
fn device(name: &str) -> Device {
    let root = UserRootKey::generate(UserId::new(name).unwrap()).unwrap();
    Device::in_memory(NewDevice::generate(&root, NOW_MS / 1000).unwrap()).unwrap()
}

/// The creator of every conversation and one KeyPackage of each of `MAX_GROUP - 1` other
/// devices (each of its own user). Made once, shared by all benchmarks: a KeyPackage can
/// be added to many conversations, as long as its device joins at most one of them.
struct Pool {
    creator: Device,
    policy: Policy,
    key_packages: Vec<Vec<u8>>,
}

impl Pool {
    fn new() -> Self {
        let creator = device("creator");
        let managers = vec![creator.identity().root_fingerprint];
        let policy = Policy::new(managers, 86_400, BurnOnRead::Allowed).unwrap();
        let key_packages = (1..MAX_GROUP)
            .map(|i| device(&format!("member{i}")).key_package().unwrap())
            .collect();
        Self {
            creator,
            policy,
            key_packages,
        }
    }

    /// Creates a conversation, adds `key_packages` in one commit and merges it: the
    /// creator's side and the Welcome. This is the timed part of `create_add`.
    fn create_and_add(&self, key_packages: &[Vec<u8>]) -> (Conv, Vec<u8>) {
        let mut conv = self.creator.create_conversation(&self.policy).unwrap();
        let out = conv.add_and_remove(key_packages, &[]).unwrap();
        conv.merge_pending_commit().unwrap();
        (conv, out.welcome.unwrap())
    }

    /// A conversation of `n` devices between the creator and `receiver`: the creator adds
    /// `receiver`, which joins from the Welcome, then `n - 2` pool devices in commits of at
    /// most `ADD_BATCH`, which the receiver processes. Returns both sides.
    fn group_with(&self, n: usize, receiver: &Device) -> (Conv, Conv) {
        let (mut creator, welcome) = self.create_and_add(&[receiver.key_package().unwrap()]);
        let mut member = receiver.join(&welcome).unwrap();
        for batch in self.key_packages[..n - 2].chunks(ADD_BATCH) {
            let out = creator.add_and_remove(batch, &[]).unwrap();
            creator.merge_pending_commit().unwrap();
            member.process(&out.commit, NOW_MS).unwrap();
        }
        (creator, member)
    }

    /// A 1 KiB text message from the creator, with a fresh id (ids may not repeat).
    fn message(&self) -> Content {
        let me = self.creator.identity();
        let text = Body::Text("x".repeat(MESSAGE_LEN));
        Content::new(me.user.as_str(), me.device_id, NOW_MS, 3600, false, text).unwrap()
    }
}

/// The reference points: one ECDSA P-521/SHA-512 signature and verification of 1 KiB.
fn reference(c: &mut Criterion) {
    let key = SigningKey::generate().unwrap();
    let public = key.public_key();
    let data = vec![0x5a; MESSAGE_LEN];
    let signature = key.sign(&data).unwrap();
    let mut g = c.benchmark_group("reference");
    g.bench_function("p521_sign_1KiB", |b| {
        b.iter(|| key.sign(black_box(&data)).unwrap())
    });
    g.bench_function("p521_verify_1KiB", |b| {
        b.iter(|| verify_p521(&public, black_box(&data), &signature).unwrap())
    });
}

/// Checking a device certificate, and making a KeyPackage (which stays in the device's
/// in-memory store, as a real one would until used).
fn identity(c: &mut Criterion) {
    let root = UserRootKey::generate(UserId::new("alice").unwrap()).unwrap();
    let certificate = NewDevice::generate(&root, NOW_MS / 1000)
        .unwrap()
        .certificate;
    let alice = device("alice");
    let mut g = c.benchmark_group("identity");
    g.bench_function("certificate_verify", |b| {
        b.iter(|| certificate.verify().unwrap())
    });
    g.bench_function("key_package", |b| b.iter(|| alice.key_package().unwrap()));
}

/// Creating a conversation and adding `n - 1` devices in one commit, then merging it.
/// KeyPackages come from the pool; each iteration builds a new conversation, starting
/// with no remembered certificate verifications (as a fresh process would).
fn create_add(c: &mut Criterion, pool: &Pool) {
    let mut g = c.benchmark_group("create_add");
    g.sample_size(10).sampling_mode(SamplingMode::Flat); // slow: 10 samples (the minimum)
    for n in CREATE_GROUPS {
        let key_packages = &pool.key_packages[..n - 1];
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut made = Vec::with_capacity(iters as usize);
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    forget_verified_identities();
                    let start = Instant::now();
                    made.push(pool.create_and_add(key_packages));
                    elapsed += start.elapsed();
                }
                drop(made); // freeing the conversations is not timed
                elapsed
            })
        });
    }
}

/// Sending (encrypting) and receiving (decrypting and checking) a 1 KiB message in a
/// group of `n` devices. The creator sends; one other device has joined and receives.
fn messages(c: &mut Criterion, pool: &Pool) {
    let mut g = c.benchmark_group("message_1KiB");
    for n in MESSAGE_GROUPS {
        let (mut sender, mut receiver) = pool.group_with(n, &device("receiver"));
        // Replays are refused, so every iteration needs its own ciphertext: encrypt them
        // first (not timed), then time the receiver processing them in order. This runs
        // before `send`, whose messages the receiver never sees: after them the receiver
        // would refuse the next ones as too far ahead in the sender's key ratchet.
        g.bench_function(BenchmarkId::new("receive", n), |b| {
            b.iter_custom(|iters| {
                let ciphertexts: Vec<Vec<u8>> = (0..iters)
                    .map(|_| sender.send(&pool.message()).unwrap())
                    .collect();
                let start = Instant::now();
                for ciphertext in &ciphertexts {
                    let event = receiver.process(ciphertext, NOW_MS).unwrap();
                    assert!(matches!(event, Event::Message(_)));
                }
                start.elapsed()
            })
        });
        // Message ids must be fresh for the sender too: make each content untimed.
        g.bench_function(BenchmarkId::new("send", n), |b| {
            b.iter_batched(
                || pool.message(),
                |content| sender.send(&content).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
}

/// Commits in a group of `COMMIT_GROUP` devices: a new device joining from a Welcome,
/// the creator's update commit, and the creator removing a device.
fn commits(c: &mut Criterion, pool: &Pool) {
    let (mut conv, _) = pool.create_and_add(&pool.key_packages[..COMMIT_GROUP - 1]);
    let mut g = c.benchmark_group("commit");
    g.sample_size(10).sampling_mode(SamplingMode::Flat); // slow: 10 samples (the minimum)

    // Each join needs a fresh Welcome: the creator commits an add of a fresh KeyPackage
    // and discards that commit (not timed), so the group stays at `COMMIT_GROUP` devices.
    let joiner = device("joiner");
    g.bench_function(BenchmarkId::new("join_welcome", COMMIT_GROUP), |b| {
        b.iter_batched(
            || {
                let kp = joiner.key_package().unwrap();
                let out = conv.add_and_remove(&[kp], &[]).unwrap();
                conv.discard_pending_commit();
                // The joiner is a fresh process: it has verified none of the certificates.
                forget_verified_identities();
                out.welcome.unwrap()
            },
            |welcome| joiner.join(&welcome).unwrap(),
            BatchSize::PerIteration,
        )
    });

    g.bench_function(BenchmarkId::new("update", COMMIT_GROUP), |b| {
        b.iter(|| {
            conv.update().unwrap();
            conv.merge_pending_commit().unwrap()
        })
    });

    // Remove the device at leaf `REMOVED` (timed), then add a spare device back into
    // that leaf (not timed), so every removal starts from `COMMIT_GROUP` devices.
    const REMOVED: u32 = 50;
    let spare = device("spare");
    g.bench_function(BenchmarkId::new("remove", COMMIT_GROUP), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                conv.add_and_remove(&[], &[REMOVED]).unwrap();
                let summary = conv.merge_pending_commit().unwrap();
                timed += start.elapsed();
                assert_eq!(summary.removed.len(), 1);
                conv.add_and_remove(&[spare.key_package().unwrap()], &[])
                    .unwrap();
                conv.merge_pending_commit().unwrap();
            }
            timed
        })
    });
}

/// All benchmarks; the pool of about a thousand KeyPackages is made once.
fn all(c: &mut Criterion) {
    reference(c);
    identity(c);
    let pool = Pool::new();
    messages(c, &pool);
    commits(c, &pool);
    create_add(c, &pool);
}

// `criterion_group!` defines an undocumented `pub fn`; a private module keeps it out of
// the crate's public items (and out of the `missing_docs` lint).
mod harness {
    criterion::criterion_group!(benches, super::all);
}
criterion_main!(harness::benches);
