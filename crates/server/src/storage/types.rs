//! The values that cross the storage interface.

/// A device, as named in challenges, sessions and mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceRef {
    /// The user id.
    pub username: String,
    /// The device id.
    pub device_id: Vec<u8>,
}

/// An account as stored: its root key and devices `(device id, certificate)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// The user's root public key.
    pub root_public_key: Vec<u8>,
    /// `(device id, certificate)`, ordered by device id.
    pub devices: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Whether a device certificate was stored anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// A new row.
    Created,
    /// The same row was already there.
    Unchanged,
}

/// Kinds of account events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An account was registered.
    Registration,
    /// A device logged in.
    Login,
    /// A message was sent.
    MessageSent,
    /// A password login succeeded and released the sealed backup.
    PasswordLogin,
}

impl Event {
    /// The name stored in the event log.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Registration => "registration",
            Event::Login => "login",
            Event::MessageSent => "message_sent",
            Event::PasswordLogin => "password_login",
        }
    }
}

/// One row of the account-event log: when, what, and who acted (a user id, or its salted
/// hash in the privacy profile) — never a client address, never a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Unix time in seconds.
    pub at: u64,
    /// The event name ([`Event::as_str`]).
    pub kind: String,
    /// The acting user, or its salted hash.
    pub actor: String,
}

/// A KeyPackage handed out by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The device it belongs to.
    pub device_id: Vec<u8>,
    /// The KeyPackage.
    pub key_package: Vec<u8>,
    /// Whether it is the device's last-resort KeyPackage (served again until replaced).
    pub last_resort: bool,
}

/// The rate limits of a KeyPackage claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Most claims one requester may make for one target in the window.
    pub per_requester: u64,
    /// Claims of one target (by anyone) in the window after which only last-resort
    /// KeyPackages are served.
    pub one_time_per_target: u64,
    /// Start of the window (Unix seconds).
    pub window_start: u64,
}

/// A device's view of its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// One-time KeyPackages left.
    pub available: u64,
    /// Whether a last-resort KeyPackage is on file.
    pub has_last_resort: bool,
    /// Whether the last-resort KeyPackage was served since the device last looked.
    pub last_resort_used: bool,
}

/// The kind of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An MLS application message.
    Application = 0,
    /// An MLS commit; moves the conversation to the next epoch.
    Commit = 1,
    /// An MLS Welcome for added devices.
    Welcome = 2,
}

impl Kind {
    /// The kind stored as `v`, if it is one.
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Application),
            1 => Some(Self::Commit),
            2 => Some(Self::Welcome),
            _ => None,
        }
    }
}

/// A message to append, with everything the store needs to decide.
///
/// Only a member may post to an existing conversation ([`super::StoreError::Forbidden`]).
/// A commit for any epoch but the conversation's current one is a
/// [`super::StoreError::Conflict`]. A new conversation, and every accepted commit, sets
/// the members to the sender, the recipients and the Welcome's recipients — not the
/// `removed` devices, which receive the commit but may post no more. Appending the same
/// `message_id` again stores nothing and answers [`Appended::Duplicate`].
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The posting device.
    pub sender: DeviceRef,
    /// The conversation (MLS group id).
    pub conversation: Vec<u8>,
    /// The sender-chosen id (idempotency key).
    pub message_id: Vec<u8>,
    /// What it is.
    pub kind: Kind,
    /// The epoch it was sent in (read from the MLS header).
    pub epoch: u64,
    /// The bytes to deliver.
    pub payload: Vec<u8>,
    /// The devices to deliver to.
    pub recipients: Vec<DeviceRef>,
    /// A Welcome `(payload, recipients)` stored with a commit.
    pub welcome: Option<(Vec<u8>, Vec<DeviceRef>)>,
    /// Devices a commit removes: they get the commit, then are no longer members.
    pub removed: Vec<DeviceRef>,
    /// Who the event log names as sender (user id, or its salted hash).
    pub actor: String,
    /// Unix time in seconds.
    pub now: u64,
}

impl AppendRequest {
    /// The id under which a commit's Welcome is stored.
    pub fn welcome_id(&self) -> Vec<u8> {
        let mut id = self.message_id.clone();
        id.push(b'w');
        id
    }
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored at this sequence number.
    New(u64),
    /// The same message id was already stored at this sequence number.
    Duplicate(u64),
}

/// Most payload bytes one inbox page returns (at least one message is always returned).
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// One entry of a device's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Position in the device's mailbox; acknowledge it when processed.
    pub cursor: u64,
    /// The conversation.
    pub conversation: Vec<u8>,
    /// Position in the conversation's log.
    pub seq: u64,
    /// What it is.
    pub kind: Kind,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Undelivered messages older than the retention.
    pub messages: u64,
    /// Expired challenges, sessions, pending password logins, lockout rows, claim-log rows
    /// and events.
    pub expired: u64,
}

/// Converts a stored integer back (negative values are not written by this server).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Converts for storage as a signed 64-bit integer (saturating).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
