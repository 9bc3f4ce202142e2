//! # sotto-core
//!
//! The pure protocol library of Sotto, a self-hostable, end-to-end encrypted, ephemeral
//! messenger: user root keys and device certificates, the Sotto policy extension and the
//! membership rule every client enforces, MLS conversations on ciphersuite 0x0005
//! (P-521, AES-256-GCM, SHA-512), the encoding of message content, sealed root-key backups,
//! safety numbers, contact-discovery hashes and OPAQUE password login ([`password`]).
//!
//! It performs no I/O and runs no async code. Every primitive comes from [`crypto`], which
//! wraps AWS-LC, except the ristretto255 OPRF and key exchange of [`password`], which come
//! from `opaque-ke`; MLS comes from `mls-rs`. The wire formats are specified in
//! `docs/protocol.md`.
//!
//! ```
//! use sotto_core::{conversation::Event, device::{Device, NewDevice}};
//! use sotto_core::identity::{UserId, UserRootKey};
//! use sotto_core::policy::{BurnOnRead, Policy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now_ms = 1_800_000_000_000;
//! let alice = UserRootKey::generate(UserId::new("alice")?)?;
//! let bob = UserRootKey::generate(UserId::new("bob")?)?;
//! let alice_phone = Device::in_memory(NewDevice::generate(&alice, now_ms / 1000)?)?;
//! let bob_laptop = Device::in_memory(NewDevice::generate(&bob, now_ms / 1000)?)?;
//!
//! // Alice manages a conversation whose messages live at most an hour, and adds Bob.
//! let policy = Policy::new(vec![alice.public_key().fingerprint()], 3600, BurnOnRead::Allowed)?;
//! let mut at_alice = alice_phone.create_conversation(&policy)?;
//! let added = at_alice.add_and_remove(&[bob_laptop.key_package()?], &[])?;
//! at_alice.merge_pending_commit()?;
//! let mut at_bob = bob_laptop.join(&added.welcome.ok_or("no welcome")?)?;
//!
//! let (_, ciphertext) = at_alice.send_text("hello", 600, false, now_ms)?;
//! let Event::Message(message) = at_bob.process(&ciphertext, now_ms)? else { panic!() };
//! assert_eq!(message.sender.user.as_str(), "alice");
//! assert_eq!(message.expires_at_ms, now_ms + 600_000);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod auth;
pub mod backup;
pub mod codec;
pub mod content;
pub mod conversation;
pub mod crypto;
pub mod device;
pub mod discovery;
pub mod identity;
pub mod identity_provider;
pub mod password;
pub mod policy;
pub mod rules;
pub mod safety;
