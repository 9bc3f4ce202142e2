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
//!
//! A bot that answers every message:
//!
//! ```no_run
//! use std::path::Path;
//! use sotto_client::{Client, SendOptions};
//!
//! # async fn bot() -> Result<(), sotto_client::ClientError> {
//! let mut client = Client::open(Path::new("/var/lib/echo-bot"), b"its passphrase", None, None)?;
//! let (mut live, _) = client.connect_live().await?;
//! loop {
//!     let Some(report) = client.next_live(&mut live, std::time::Duration::from_secs(60)).await?
//!     else {
//!         continue;
//!     };
//!     for message in &report.messages {
//!         let reply = format!("you said: {}", message.text);
//!         client.send_text(&message.conversation, &reply, SendOptions::default()).await?;
//!     }
//! }
//! # }
//! ```

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
