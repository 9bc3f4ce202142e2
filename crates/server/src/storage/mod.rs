//! The storage interface of the server, and its two back-ends.
//!
//! Handlers see only [`Storage`]: a set of small async traits, one per concern
//! ([`Accounts`], [`Sessions`], [`KeyPackages`], [`Delivery`], [`Events`],
//! [`Maintenance`], [`Passwords`], …), each implemented by the embedded SQLite back-end
//! ([`sqlite`]) and the PostgreSQL back-end ([`postgres`]). Both keep the same rules:
//! every write that must be atomic is one transaction, a KeyPackage is deleted in the
//! transaction that serves it, and a commit is accepted only for its conversation's
//! current epoch.
//!
//! The store holds only public material and ciphertext: user ids, root public keys,
//! device certificates, KeyPackages, MLS messages, hashes of session tokens — and, for
//! password login, OPAQUE records (which do not contain the password), sealed root-key
//! backups and the server's OPAQUE key (see `docs/operations.md`).

use std::sync::Arc;

use async_trait::async_trait;

mod directory;
mod passwords;
pub mod postgres;
pub mod sqlite;
mod types;

pub use directory::*;
pub use passwords::*;
pub use types::*;

/// Seconds in a day (the unit of the discovery allowance).
pub const SECS_PER_DAY: i64 = 24 * 3600;

/// How long account events are kept: 7 days.
pub const EVENT_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row already exists with other contents (or the commit is for a past epoch).
    #[error("already exists")]
    Conflict,
    /// The named row does not exist.
    #[error("not found")]
    NotFound,
    /// The acting device may not do this.
    #[error("forbidden")]
    Forbidden,
    /// A stored value is not one this server writes.
    #[error("corrupt row in the database")]
    Corrupt,
    /// Too many requests of this kind in the current window.
    #[error("rate limited")]
    RateLimited,
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database was written by a newer version of the server.
    #[error("database schema version {0} is newer than this server understands")]
    TooNew(i64),
    /// A blocking storage task did not complete.
    #[error("storage task failed")]
    Task,
}

impl StoreError {
    /// What a request that failed with this error tells the client: a full disk and an
    /// unreachable database are named (the user can only try again later; the operator
    /// knows where to look), anything else is a plain "storage failure". Never any detail
    /// of the database.
    pub fn client_message(&self) -> &'static str {
        match self {
            Self::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                "storage failure: the server's disk is full; try again later"
            }
            Self::Unavailable(_) => "storage failure: the database is unavailable; try again later",
            // A broken connection, or PostgreSQL shutting down or starting up (SQLSTATE
            // class 08, 57P01–57P03).
            Self::Postgres(e)
                if e.is_closed()
                    || e.code().is_some_and(|c| {
                        c.code().starts_with("08") || c.code().starts_with("57P0")
                    }) =>
            {
                "storage failure: the database is unavailable; try again later"
            }
            _ => "storage failure",
        }
    }
}

/// Accounts and their devices.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Registers an account and records the registration event (as `actor`) in the same
    /// transaction; [`StoreError::Conflict`] if the user id is taken.
    async fn create_account(
        &self,
        username: &str,
        root: &[u8],
        actor: &str,
        now: u64,
    ) -> Result<(), StoreError>;
    /// An account and its devices, if it exists.
    async fn account(&self, username: &str) -> Result<Option<AccountRow>, StoreError>;
    /// Stores a device certificate (already verified by the caller). The same certificate
    /// again is [`Put::Unchanged`]; another one for the same device id, or a revoked id,
    /// is a conflict.
    async fn put_device(
        &self,
        username: &str,
        device_id: &[u8],
        certificate: &[u8],
        now: u64,
    ) -> Result<Put, StoreError>;
    /// The certificate registered for a device, if any.
    async fn device_certificate(&self, device: &DeviceRef) -> Result<Option<Vec<u8>>, StoreError>;
    /// The first of `devices` that is not registered, if any.
    async fn first_unknown_device(
        &self,
        devices: &[DeviceRef],
    ) -> Result<Option<DeviceRef>, StoreError>;
    /// Revokes a device: removes its certificate, sessions, challenges, KeyPackages and
    /// undelivered mail, and bars its id for good. [`StoreError::NotFound`] if unknown.
    async fn revoke_device(&self, device: &DeviceRef) -> Result<(), StoreError>;
}

/// Login challenges and sessions (stored by the hash of their token).
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a fresh challenge for `device`, valid until `expires_at`.
    async fn put_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        expires_at: u64,
    ) -> Result<(), StoreError>;
    /// Takes (deletes) an unexpired challenge issued to `device`: true if there was one.
    async fn take_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        now: u64,
    ) -> Result<bool, StoreError>;
    /// Records a session under the hash of its token, and the login event (as `actor`).
    async fn put_session(
        &self,
        token_hash: &[u8],
        device: &DeviceRef,
        expires_at: u64,
        actor: &str,
        now: u64,
    ) -> Result<(), StoreError>;
    /// The device of an unexpired session, by the hash of its token.
    async fn session(&self, token_hash: &[u8], now: u64) -> Result<Option<DeviceRef>, StoreError>;
}

/// The KeyPackage pool.
#[async_trait]
pub trait KeyPackages: Send + Sync {
    /// Adds one-time KeyPackages (and optionally replaces the last-resort one) for a
    /// device; [`StoreError::Conflict`] if its pool would grow beyond `max_pool`.
    async fn add_key_packages(
        &self,
        device: &DeviceRef,
        one_time: &[Vec<u8>],
        last_resort: Option<&[u8]>,
        max_pool: u64,
        now: u64,
    ) -> Result<(), StoreError>;
    /// The pool of a device; reading it clears the last-resort notice.
    async fn pool_status(&self, device: &DeviceRef) -> Result<PoolStatus, StoreError>;
    /// Hands out one KeyPackage for each device of `target`: a one-time one, deleted in
    /// the same transaction, or else the last-resort one (and its device is told). Once
    /// `target` has been claimed `limits.one_time_per_target` times since
    /// `limits.window_start` (by anyone), only last-resort KeyPackages are served, so no
    /// crowd of requesters can drain a pool. [`StoreError::RateLimited`] if `requester`
    /// made `limits.per_requester` claims for `target` in the window.
    async fn claim_key_packages(
        &self,
        requester: &str,
        target: &str,
        limits: ClaimLimits,
        now: u64,
    ) -> Result<Vec<Claimed>, StoreError>;
}

/// Conversation logs, mailboxes and acknowledgements.
#[async_trait]
pub trait Delivery: Send + Sync {
    /// Appends a message (and with it, atomically, its Welcome) to its conversation's log
    /// and its recipients' mailboxes, and records the message-sent event. See
    /// [`AppendRequest`] for the membership and epoch rules.
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError>;
    /// Up to `limit` undelivered entries of `device`'s mailbox after `cursor`, in order,
    /// holding at most [`MAX_PAGE_BYTES`] of payload (at least one entry).
    async fn inbox(
        &self,
        device: &DeviceRef,
        cursor: u64,
        limit: u32,
    ) -> Result<Vec<Delivered>, StoreError>;
    /// [`Self::inbox`] for a live connection: the page, or `None` if the session whose
    /// token hashes to `token_hash` is not `device`'s unexpired session as of `now` (it
    /// expired, or the device was revoked). Session and page are read in one snapshot, so
    /// no page is served after a revocation has committed.
    async fn live_inbox(
        &self,
        token_hash: &[u8],
        now: u64,
        device: &DeviceRef,
        cursor: u64,
        limit: u32,
    ) -> Result<Option<Vec<Delivered>>, StoreError>;
    /// Acknowledges mailbox entries of `device`; log entries no mailbox needs any more
    /// are deleted at once.
    async fn ack(&self, device: &DeviceRef, cursors: &[u64]) -> Result<(), StoreError>;
    /// How many log entries are stored (for audits and tests of deletion).
    async fn log_len(&self) -> Result<u64, StoreError>;
}

/// The account-event log.
#[async_trait]
pub trait Events: Send + Sync {
    /// All account events, oldest first (for audits and tests).
    async fn events(&self) -> Result<Vec<EventRow>, StoreError>;
}

/// Health and retention.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Deletes undelivered ciphertext older than `retention_secs`, expired attachments,
    /// challenges, sessions, pending password logins and claim-log rows, lockout rows
    /// that no longer have an effect ([`LockoutPolicy::forgotten`]), past days' discovery
    /// allowances, and events older than [`EVENT_RETENTION_SECS`], as of `now`.
    async fn sweep(&self, now: u64, retention_secs: u64) -> Result<Swept, StoreError>;
}

/// What wakes live connections: a device whose mailbox may have grown, or everyone
/// (after wake-ups may have been missed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// This device.
    Device(DeviceRef),
    /// Every connected device.
    All,
}

/// Wake-ups across server processes sharing one database. Within one process the
/// [`crate::hub::Hub`] wakes connections directly; a back-end that several processes can
/// share also carries wake-ups between them.
#[async_trait]
pub trait Wakeups: Send + Sync {
    /// Tells the other processes on this database that these devices' mailboxes grew.
    async fn announce(&self, devices: &[DeviceRef]) -> Result<(), StoreError>;
    /// Wake-ups announced by any process, for as long as the server runs; `None` if the
    /// back-end serves one process only.
    async fn wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<Wakeup>>;
}

/// Everything the server stores, on either back-end.
pub trait Storage:
    Accounts
    + Sessions
    + KeyPackages
    + Delivery
    + Events
    + Maintenance
    + Settings
    + Discovery
    + Attachments
    + Wakeups
    + Passwords
{
}

impl<T> Storage for T where
    T: Accounts
        + Sessions
        + KeyPackages
        + Delivery
        + Events
        + Maintenance
        + Settings
        + Discovery
        + Attachments
        + Wakeups
        + Passwords
{
}

/// The store shared by the handlers.
pub type Store = Arc<dyn Storage>;

/// Where the server keeps its data.
#[derive(Clone)]
pub enum Backend {
    /// An embedded SQLite database file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL server, by connection URL.
    Postgres(String),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            // The URL may hold a password.
            Self::Postgres(_) => f.write_str("Postgres(<url redacted>)"),
        }
    }
}

/// Opens (creating and migrating if needed) the store.
pub async fn open(backend: &Backend) -> Result<Store, StoreError> {
    Ok(match backend {
        Backend::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path)?),
        Backend::Postgres(url) => Arc::new(postgres::PostgresStore::connect(url).await?),
    })
}
