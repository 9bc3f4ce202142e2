//! Helpers shared by the conversation tests: users, devices and policies.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sotto_core::conversation::Conversation;
use sotto_core::device::{Device, NewDevice, SottoConfig};
use sotto_core::identity::{UserId, UserRootKey};
use sotto_core::policy::{BurnOnRead, Policy};

/// A fixed "now" for tests, in milliseconds since the Unix epoch.
pub const NOW_MS: u64 = 1_800_000_000_000;

/// A user with a root key.
pub fn user(name: &str) -> UserRootKey {
    UserRootKey::generate(UserId::new(name).unwrap()).unwrap()
}

/// A new certified device of `root`, with in-memory state.
pub fn device(root: &UserRootKey) -> Device {
    Device::in_memory(NewDevice::generate(root, NOW_MS / 1000).unwrap()).unwrap()
}

/// A policy managed by `managers`, max TTL one day, burn-on-read allowed.
pub fn policy(managers: &[&UserRootKey]) -> Policy {
    Policy::new(
        managers
            .iter()
            .map(|m| m.public_key().fingerprint())
            .collect(),
        86_400,
        BurnOnRead::Allowed,
    )
    .unwrap()
}

/// alice (the manager) and bob in one conversation: alice's root key and both sides.
pub fn pair() -> (
    UserRootKey,
    Conversation<SottoConfig>,
    Conversation<SottoConfig>,
) {
    let (alice, bob) = (user("alice"), user("bob"));
    let (a, b) = (device(&alice), device(&bob));
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let cb = b.join(&out.welcome.unwrap()).unwrap();
    (alice, ca, cb)
}
