//! The records a profile keeps (each stored encrypted, see [`crate::store`]) and the
//! values the SDK hands to front ends.

use serde::{Deserialize, Serialize};

/// Record kinds.
pub(crate) mod kind {
    /// The profile itself (one record).
    pub const PROFILE: &str = "profile";
    /// Secret keys of this device and user (raw bytes).
    pub const SECRET: &str = "secret";
    /// A contact, by username.
    pub const CONTACT: &str = "contact";
    /// A conversation, by id.
    pub const CONVERSATION: &str = "conversation";
    /// A message, by conversation and id; grouped by conversation.
    pub const MESSAGE: &str = "message";
    /// A notice for the user (warnings), by time.
    pub const NOTICE: &str = "notice";
}

/// This device's account and state. Its `Debug` leaves out the session token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    /// The server's address.
    pub server: String,
    /// A PEM file of extra certificate authorities to trust for the server, if any.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// The account name.
    pub username: String,
    /// This device's id, lower-case hex.
    pub device_id: String,
    /// This device's certificate.
    pub certificate: Vec<u8>,
    /// When the user acknowledged the ephemerality policy (ms), if they did.
    pub policy_accepted_at: Option<u64>,
    /// The last inbox cursor processed.
    pub cursor: u64,
    /// The current session token and its expiry (seconds), if any.
    #[serde(default)]
    pub session: Option<(String, u64)>,
    /// Messages received by a sync the SDK did on its own (before a send, say), not yet
    /// returned by [`crate::Client::sync`]: (conversation, message id).
    #[serde(default)]
    pub unreported: Vec<(String, String)>,
    /// Inbox cursors processed but not yet acknowledged to the server.
    #[serde(default)]
    pub unacked: Vec<u64>,
    /// Commits posted whose acceptance is not known yet (the answer was lost, or the
    /// process stopped): (conversation, the request as posted). The next sync posts each
    /// again with the same message id, and merges or discards it by the answer.
    #[serde(default)]
    pub in_doubt: Vec<(String, sotto_api::SendMessage)>,
}

impl core::fmt::Debug for Profile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("device_id", &self.device_id)
            .field("session", &self.session.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What the profile knows about another user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The username.
    pub username: String,
    /// The root public key first seen (or last verified) for them.
    pub root_key: Vec<u8>,
    /// Whether the user compared safety numbers and confirmed them.
    pub verified: bool,
    /// A different root key seen since, which is not trusted until verified.
    pub changed_root_key: Option<Vec<u8>>,
}

/// A conversation this device is in (or was in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationInfo {
    /// The conversation id (MLS group id), lower-case hex.
    pub id: String,
    /// A group's name; `None` for a 1:1 conversation (and a group not yet named).
    pub name: Option<String>,
    /// A 1:1 conversation: two users, both managers, and no other manager.
    #[serde(default)]
    pub direct: bool,
    /// The member usernames (this user included).
    pub members: Vec<String>,
    /// The managers' usernames.
    pub managers: Vec<String>,
    /// Longest message life allowed, seconds.
    pub max_ttl_seconds: u32,
    /// The burn-on-read rule: `"allowed"`, `"required"` or `"forbidden"`.
    pub burn_on_read: String,
    /// False once this device left or was removed.
    pub active: bool,
    /// When it was created or joined (ms).
    pub joined_at: u64,
}

/// An attachment of a stored message: what is needed to fetch and decrypt it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttachment {
    /// Server blob id and capability, as `id:token`.
    pub locator: String,
    /// AES-256-GCM key.
    pub key: [u8; 32],
    /// AES-256-GCM nonce.
    pub nonce: [u8; 12],
    /// SHA-256 of the ciphertext.
    pub ciphertext_sha256: [u8; 32],
    /// Plaintext size.
    pub size: u64,
    /// Suggested file name.
    pub file_name: String,
    /// Media type.
    pub media_type: String,
}

impl core::fmt::Debug for StoredAttachment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoredAttachment")
            .field("file_name", &self.file_name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Drop for StoredAttachment {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// A stored message (sent or received). Its text is zeroized when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The conversation id, hex.
    pub conversation: String,
    /// The message id, hex.
    pub id: String,
    /// The sending user.
    pub from: String,
    /// The sending device, hex.
    pub from_device: String,
    /// The text (for an attachment: its file name).
    pub text: String,
    /// The attachment, if this message carries one.
    pub attachment: Option<StoredAttachment>,
    /// Send time (ms since the Unix epoch).
    pub sent_at: u64,
    /// When it is deleted (ms since the Unix epoch).
    pub expires_at: u64,
    /// Whether it is deleted once read.
    pub burn_on_read: bool,
    /// Whether this device sent it.
    pub outgoing: bool,
    /// Whether this user read it (incoming only).
    pub read: bool,
    /// Users whose device confirmed delivery (outgoing only).
    pub delivered_to: Vec<String>,
    /// Users who read it (outgoing only).
    pub read_by: Vec<String>,
}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("conversation", &self.conversation)
            .field("id", &self.id)
            .field("from", &self.from)
            .field("text", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.text);
    }
}

/// Something the user should know (a key change, the last-resort KeyPackage used, a
/// message that failed to decrypt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// When (ms).
    pub at: u64,
    /// The explanation.
    pub text: String,
}

/// One device of the user's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    /// Its id, hex.
    pub device_id: String,
    /// When the root key certified it (seconds since the Unix epoch).
    pub created_at: u64,
    /// Whether it is this device.
    pub this_device: bool,
}

/// What a sync brought.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// New messages stored.
    pub messages: Vec<Message>,
    /// Warnings raised.
    pub notices: Vec<Notice>,
    /// Conversations joined.
    pub joined: Vec<String>,
    /// Conversations this user left from another device, which this one leaves too.
    pub left: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            conversation: "c0".into(),
            id: "1d".into(),
            from: "alice".into(),
            from_device: "d1".into(),
            text: "the secret text".into(),
            attachment: Some(StoredAttachment {
                locator: "blob:capability-token".into(),
                key: [7; 32],
                nonce: [1; 12],
                ciphertext_sha256: [2; 32],
                size: 5,
                file_name: "a.txt".into(),
                media_type: "text/plain".into(),
            }),
            sent_at: 1,
            expires_at: 2,
            burn_on_read: true,
            outgoing: false,
            read: false,
            delivered_to: vec![],
            read_by: vec![],
        }
    }

    #[test]
    fn debug_output_of_secret_bearing_records_is_redacted() {
        assert_eq!(
            format!("{:?}", message()),
            r#"Message { conversation: "c0", id: "1d", from: "alice", text: "<redacted>", expires_at: 2, .. }"#
        );
        let attachment = message().attachment.clone();
        assert_eq!(
            format!("{attachment:?}"),
            r#"Some(StoredAttachment { file_name: "a.txt", size: 5, .. })"#
        );
        let profile = Profile {
            server: "https://s".into(),
            ca_file: None,
            username: "alice".into(),
            device_id: "d1".into(),
            certificate: vec![1, 2],
            policy_accepted_at: None,
            cursor: 0,
            session: Some(("bearer-token-value".into(), 9)),
            unreported: vec![],
            unacked: vec![],
            in_doubt: vec![],
        };
        assert_eq!(
            format!("{profile:?}"),
            r#"Profile { server: "https://s", username: "alice", device_id: "d1", session: Some("<redacted>"), .. }"#
        );
    }
}
