//! # sotto-api
//!
//! The wire types of the Sotto client–server protocol: JSON bodies of the HTTP control
//! plane and frames of the live-delivery WebSocket ([`ClientFrame`], [`ServerFrame`]),
//! shared by `sotto-server` and the client so that both sides agree by construction.
//! Binary fields (keys, certificates, ciphertext) travel as standard, padded base64
//! ([`Bytes`]). Every route is under `/v1`.
//!
//! The server only ever sees what these types carry: public keys, certificates,
//! ciphertext, OPAQUE messages and sealed backups — never a password, a secret key or
//! plaintext.
//!
//! With the `openapi` feature every type implements `utoipa::ToSchema` (serde attributes
//! included), and [`Bytes`] is described as a base64 string: the server's OpenAPI document
//! (`GET /openapi.json`) is made from these very types.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod directory;
mod passwords;
pub use directory::*;
pub use passwords::*;

/// Path prefix of this version of the API.
pub const API_PREFIX: &str = "/v1";

/// Binary data, carried in JSON as a standard (padded) base64 string.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl core::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes)
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

/// Standard, padded base64 (RFC 4648, section 4), as a regular expression: what a [`Bytes`]
/// field must match.
#[cfg(feature = "openapi")]
const BASE64_PATTERN: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Bytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
            .content_encoding("base64")
            .pattern(Some(BASE64_PATTERN))
            .description(Some(
                "Binary data in standard, padded base64 (RFC 4648, section 4).",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Bytes {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Bytes")
    }
}

/// `POST /v1/accounts`: register a user id with the user's root public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterAccount {
    /// The user id (see `sotto_core::identity::UserId`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
    /// The root public key (uncompressed P-521 point).
    pub root_public_key: Bytes,
}

/// `POST /v1/accounts/{username}/devices`: publish a device certificate. The server
/// accepts it only if it verifies under the account's root key, so only the holder of
/// that key can add a device; publishing the same certificate again changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    /// The encoded device certificate.
    pub certificate: Bytes,
}

/// `POST /v1/accounts/{username}/devices/{device_id}/revoke`: remove a device. Allowed
/// with a session of any device of the same user, or with a signature of the user's root
/// key (`sotto_core::identity::revocation_message`) when no device is at hand. The device
/// id can never be registered again; its sessions, KeyPackages and mail are deleted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeDevice {
    /// The root key's signature, when the request has no session of the user.
    #[serde(default)]
    pub root_signature: Option<Bytes>,
}

/// One published device of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// The device id, lower-case hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub device_id: String,
    /// The encoded device certificate; clients verify it themselves.
    pub certificate: Bytes,
}

/// `GET /v1/accounts/{username}`: an account's public identity and its devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    /// The user id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
    /// The root public key; clients pin it and compare safety numbers.
    pub root_public_key: Bytes,
    /// The published devices, ordered by device id.
    pub devices: Vec<DeviceInfo>,
}

/// `POST /v1/auth/challenge`: ask for a challenge to sign with a device's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The user id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
    /// The device id, lower-case hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub device_id: String,
}

/// A fresh challenge: sign it within its lifetime, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// 32 random bytes.
    pub challenge: Bytes,
    /// When it expires, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// `POST /v1/auth/session`: answer a challenge and receive a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The user id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
    /// The device id, lower-case hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub device_id: String,
    /// The challenge being answered.
    pub challenge: Bytes,
    /// The device's signature over `sotto_core::auth::auth_message`.
    pub signature: Bytes,
}

/// A session: send `Authorization: Bearer <token>` with authenticated requests.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// The bearer token (secret; the server keeps only its hash).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{43}$"))]
    pub token: String,
    /// When it expires, seconds since the Unix epoch.
    pub expires_at: u64,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `GET /v1/me`: who the session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// The user id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
    /// The device id, lower-case hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub device_id: String,
}

/// `POST /v1/key-packages` (authenticated): publish one-time KeyPackages of the session's
/// device, and optionally replace its last-resort KeyPackage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadKeyPackages {
    /// One-time KeyPackages (MLS messages), each served at most once.
    pub key_packages: Vec<Bytes>,
    /// A last-resort KeyPackage, served when the one-time pool is empty.
    #[serde(default)]
    pub last_resort: Option<Bytes>,
}

/// `GET /v1/key-packages` (authenticated): the session device's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyPackagePool {
    /// One-time KeyPackages left.
    pub available: u64,
    /// True when `available` is at or below the low-water mark: upload more.
    pub low_water: bool,
    /// Whether a last-resort KeyPackage is on file.
    pub has_last_resort: bool,
    /// Whether the last-resort KeyPackage was handed out since the device last looked:
    /// replace it, and expect conversations to have added the device with it.
    pub last_resort_used: bool,
}

/// One KeyPackage handed out for a device of the target user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedKeyPackage {
    /// The device id, lower-case hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub device_id: String,
    /// The KeyPackage; the claimer checks it (`sotto_core::device::expect_key_package`).
    pub key_package: Bytes,
    /// Whether it is the device's last-resort KeyPackage.
    pub last_resort: bool,
}

/// `POST /v1/accounts/{username}/key-packages/claim` (authenticated): one KeyPackage per
/// device of the user that has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedKeyPackages {
    /// The KeyPackages, ordered by device id.
    pub key_packages: Vec<ClaimedKeyPackage>,
}

/// A device, as addressed in deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceAddress {
    /// The user id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
    /// The device id, lower-case hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub device_id: String,
}

/// A Welcome to deliver with a commit that adds devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WelcomeDelivery {
    /// The MLS Welcome message.
    pub payload: Bytes,
    /// The added devices.
    pub recipients: Vec<DeviceAddress>,
}

/// `POST /v1/conversations/{conversation}/messages` (authenticated): an MLS message of the
/// conversation (hex group id in the path) for the listed devices. The server reads the
/// message's kind and epoch from its MLS header; a commit is accepted only for the
/// conversation's current epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// A random 16-byte id, lower-case hex; sending the same id again is harmless.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub message_id: String,
    /// The MLS message (a `PrivateMessage`).
    pub payload: Bytes,
    /// The devices to deliver it to.
    pub recipients: Vec<DeviceAddress>,
    /// With a commit that adds devices: their Welcome.
    #[serde(default)]
    pub welcome: Option<WelcomeDelivery>,
    /// With a commit that removes devices: those devices, which receive the commit (to
    /// learn they were removed) but are no longer members the server accepts posts from.
    #[serde(default)]
    pub removed: Vec<DeviceAddress>,
}

/// The answer to [`SendMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sent {
    /// The message's position in the conversation's log.
    pub seq: u64,
    /// True if this message id had been accepted before (nothing new was stored).
    pub duplicate: bool,
}

/// What an inbox entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// An application message (or a proposal).
    Application,
    /// A commit.
    Commit,
    /// A Welcome into a conversation.
    Welcome,
}

/// One undelivered message of the session's device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxMessage {
    /// Its position in this device's mailbox: fetch after it, acknowledge it.
    pub cursor: u64,
    /// The conversation, lower-case hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(?:[0-9a-f]{2}){1,64}$"))]
    pub conversation: String,
    /// Its position in the conversation's log.
    pub seq: u64,
    /// What it is.
    pub kind: MessageKind,
    /// The MLS message.
    pub payload: Bytes,
}

/// `GET /v1/inbox?after=<cursor>&limit=<n>` (authenticated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inbox {
    /// Messages in mailbox order.
    pub messages: Vec<InboxMessage>,
}

/// `POST /v1/inbox/ack` (authenticated): these messages were processed and may be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// Cursors of processed messages.
    pub cursors: Vec<u64>,
}

/// Path of the WebSocket for live delivery (authenticated by the same bearer header as
/// the HTTP routes; never by a token in the URL).
pub const WS_PATH: &str = "/v1/ws";

/// A JSON text frame from the client on `GET /v1/ws`, tagged by `"type"`.
///
/// The client subscribes once, then acknowledges what it processed. Frames are handled in
/// order: when the server answers a WebSocket ping, every earlier frame has been handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// `{"type":"subscribe","after":<cursor>}`: stream every mailbox entry after this
    /// cursor (0: from the start), then new entries as they arrive. Once per connection.
    Subscribe {
        /// The cursor of the last message the client processed.
        #[serde(default)]
        after: u64,
    },
    /// `{"type":"ack","cursors":[...]}`: these messages were processed and may be
    /// deleted, as with `POST /v1/inbox/ack`.
    Ack {
        /// Cursors of processed messages.
        cursors: Vec<u64>,
    },
}

/// A JSON text frame from the server on `GET /v1/ws`, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// `{"type":"message", "cursor", "conversation", "seq", "kind", "payload"}`: one
    /// mailbox entry, sent in cursor order and at most once per connection.
    Message(InboxMessage),
    /// `{"type":"error", "error", "message"}`: why the server is closing the socket;
    /// the close frame follows.
    Error(ApiError),
}

/// What kind of error a request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or invalid.
    BadRequest,
    /// The request needs a valid session, or the challenge answer was wrong.
    Unauthorized,
    /// The session's device may not do this (e.g. post to a conversation it is not in).
    Forbidden,
    /// The named resource does not exist.
    NotFound,
    /// The resource exists already, or the request conflicts with the current state.
    Conflict,
    /// The request body is larger than the server accepts.
    TooLarge,
    /// Too many requests of this kind; try again later.
    RateLimited,
    /// The server failed; the request may be retried.
    Internal,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// Machine-readable kind.
    pub error: ErrorCode,
    /// A sentence for people. Never contains secrets or client addresses.
    pub message: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `"ok"` when the server and its database answer.
    pub status: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bytes_are_base64_in_json() {
        let body = RegisterDevice {
            certificate: Bytes(vec![0, 1, 2, 250]),
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"certificate":"AAEC+g=="}"#);
        assert_eq!(serde_json::from_str::<RegisterDevice>(&json).unwrap(), body);
        assert!(serde_json::from_str::<RegisterDevice>(r#"{"certificate":"%%"}"#).is_err());
        assert!(serde_json::from_str::<RegisterDevice>(r#"{"certificate":"","x":1}"#).is_err());
        assert_eq!(format!("{:?}", body.certificate), "Bytes(4 bytes)");
    }

    #[test]
    fn websocket_frames_are_tagged_json() {
        let sub: ClientFrame = serde_json::from_str(r#"{"type":"subscribe","after":7}"#).unwrap();
        assert_eq!(sub, ClientFrame::Subscribe { after: 7 });
        let ack: ClientFrame = serde_json::from_str(r#"{"type":"ack","cursors":[1,2]}"#).unwrap();
        assert_eq!(
            ack,
            ClientFrame::Ack {
                cursors: vec![1, 2]
            }
        );
        for bad in [
            r#"{"type":"nope"}"#,
            r#"{"after":1}"#,
            r#"{"type":"ack","cursors":[1],"x":0}"#,
            r#"{"type":"ack","cursors":[-1]}"#,
        ] {
            assert!(serde_json::from_str::<ClientFrame>(bad).is_err(), "{bad}");
        }
        let message = ServerFrame::Message(InboxMessage {
            cursor: 3,
            conversation: "ab".into(),
            seq: 1,
            kind: MessageKind::Commit,
            payload: Bytes(vec![1]),
        });
        let json = serde_json::to_string(&message).unwrap();
        assert_eq!(
            json,
            r#"{"type":"message","cursor":3,"conversation":"ab","seq":1,"kind":"commit","payload":"AQ=="}"#
        );
        assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), message);
        let error = ServerFrame::Error(ApiError {
            error: ErrorCode::BadRequest,
            message: "m".into(),
        });
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","error":"bad_request","message":"m"}"#
        );
    }

    #[test]
    fn error_codes_are_snake_case() {
        let e = ApiError {
            error: ErrorCode::TooLarge,
            message: "m".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":"too_large","message":"m"}"#
        );
    }
}
