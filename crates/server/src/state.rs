//! What every handler shares: the store, the live-connection hub, the server's OPAQUE key,
//! and how the event log names actors.

use sotto_core::crypto;

use crate::hub::Hub;
use crate::passwords::ServerKeys;
use crate::storage::Store;

/// The state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// Where everything is kept.
    pub store: Store,
    /// How long undelivered ciphertext and attachments are kept, in seconds.
    pub retention_secs: u64,
    /// Counters and gauges served at `/metrics`.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Wakes live (WebSocket) connections when their device's mailbox grows.
    pub hub: Hub,
    /// The OPAQUE key for password login (secret; never logged).
    pub passwords: std::sync::Arc<ServerKeys>,
    /// In the privacy profile, the secret salt under which the event log names actors.
    privacy_salt: Option<[u8; 32]>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("privacy_profile", &self.privacy_salt.is_some())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Handlers over `store` with the OPAQUE key `passwords` (loaded from the same store
    /// by [`ServerKeys::load`]); with `privacy_salt`, the event log stores salted hashes of
    /// user ids instead of the ids.
    pub fn new(store: Store, passwords: ServerKeys, privacy_salt: Option<[u8; 32]>) -> Self {
        Self {
            store,
            retention_secs: crate::DEFAULT_RETENTION_SECS,
            metrics: std::sync::Arc::default(),
            hub: Hub::new(),
            passwords: std::sync::Arc::new(passwords),
            privacy_salt,
        }
    }

    /// How the account-event log names `username`: the id itself, or in the privacy
    /// profile the hex SHA-256 of the server's secret salt and the id.
    pub fn actor(&self, username: &str) -> String {
        match &self.privacy_salt {
            None => username.to_owned(),
            Some(salt) => crate::hex::encode(&crypto::sha256_parts(&[salt, username.as_bytes()])),
        }
    }
}
