//! # sotto-core
//!
//! The pure protocol library of Sotto, a self-hostable, end-to-end encrypted, ephemeral
//! messenger: user root keys and device certificates, the Sotto policy extension and the
//! membership rule every client enforces, MLS conversations on ciphersuite 0x0005
//! (P-521, AES-256-GCM, SHA-512), the encoding of message content, sealed root-key backups,
//! safety numbers and contact-discovery hashes.
//!
//! It performs no I/O and runs no async code. Every primitive comes from [`crypto`], which
//! wraps AWS-LC; MLS comes from `mls-rs`. The wire formats are specified in
//! `docs/protocol.md`.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod backup;
pub mod codec;
pub mod content;
pub mod conversation;
pub mod crypto;
pub mod device;
pub mod discovery;
pub mod identity;
pub mod identity_provider;
pub mod policy;
pub mod rules;
pub mod safety;
