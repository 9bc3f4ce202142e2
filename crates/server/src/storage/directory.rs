//! Storage for server settings, contact discovery and attachments.

use async_trait::async_trait;

use super::StoreError;

/// Values the server creates once and keeps (salts, its OPAQUE key).
#[async_trait]
pub trait Settings: Send + Sync {
    /// The value stored under `name`; if there is none, stores `fresh` and returns it.
    /// Atomic: servers sharing one database all get the first value stored.
    async fn setting_or_insert(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// Published contact hashes and the look-up allowance.
#[async_trait]
pub trait Discovery: Send + Sync {
    /// Replaces the hashes `username` publishes (an empty list withdraws them).
    async fn publish_contacts(&self, username: &str, hashes: &[Vec<u8>]) -> Result<(), StoreError>;
    /// The `(hash, username)` pairs among `hashes` that someone published, charging
    /// `hashes.len()` to `requester`'s allowance for `day` ([`StoreError::RateLimited`] —
    /// and nothing charged — if it would exceed `max_per_day`). Returns the matches and
    /// what is left of the allowance. The looked-up hashes are not stored.
    async fn lookup_contacts(
        &self,
        requester: &str,
        hashes: &[Vec<u8>],
        day: u64,
        max_per_day: u64,
    ) -> Result<(Vec<(Vec<u8>, String)>, u64), StoreError>;
}

/// An attachment as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    /// SHA-256 of its capability token.
    pub token_hash: Vec<u8>,
    /// The encrypted blob.
    pub blob: Vec<u8>,
    /// Unix time after which it is deleted.
    pub expires_at: u64,
}

impl std::fmt::Debug for AttachmentRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentRow")
            .field("blob", &self.blob.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Encrypted attachment blobs.
#[async_trait]
pub trait Attachments: Send + Sync {
    /// Stores a blob for `owner`; [`StoreError::RateLimited`] if the owner's stored
    /// blobs would exceed `max_owner_bytes`.
    async fn put_attachment(
        &self,
        id: &[u8],
        owner: &str,
        row: &AttachmentRow,
        max_owner_bytes: u64,
    ) -> Result<(), StoreError>;
    /// An unexpired attachment by id.
    async fn attachment(&self, id: &[u8], now: u64) -> Result<Option<AttachmentRow>, StoreError>;
    /// Deletes an attachment; true if it existed.
    async fn delete_attachment(&self, id: &[u8]) -> Result<bool, StoreError>;
}
