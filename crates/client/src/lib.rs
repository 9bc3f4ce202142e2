//! # sotto-client
//!
//! The Sotto client SDK: what the `sotto` command line, its terminal chat and bots embed.
//!
//! A [`Client`] is an unlocked profile — a directory holding one encrypted SQLite database
//! ([`store`]) — with its MLS device and its server ([`api`]). It registers accounts and
//! logs in new devices ([`account`]), pins and verifies contacts' keys ([`contacts`]),
//! creates conversations ([`conversations`], [`groups`]) and delivers through the server
//! ([`delivery`]), sends and reads messages with
//! TTLs, burn-on-read, attachments and receipts ([`messaging`]), and fetches what arrived
//! ([`sync`], or live over a WebSocket, [`live`]). Everything the server or the disk
//! supplies is checked; every secret stays in the encrypted store or in zeroized memory.

pub mod account;
pub mod api;
pub mod client;
pub mod contacts;
pub mod conversations;
pub mod delivery;
pub mod error;
pub mod groups;
pub mod live;
pub mod messaging;
pub mod mls_store;
pub mod model;
pub mod store;
pub mod sync;
pub mod tls;
pub mod vault;

pub use account::NewProfile;
pub use client::Client;
pub use error::ClientError;
pub use groups::GroupSpec;
pub use messaging::SendOptions;
pub use model::{Contact, ConversationInfo, DeviceEntry, Message, Notice, SyncReport};
