//! What travels inside an MLS application message: [`Content`].
//!
//! Everything a recipient acts on — who sent it, when, for how long it may live, whether
//! it burns on read, and the body — is inside the encrypted, authenticated MLS payload, so
//! neither the server nor a network attacker can read or alter it. Receivers check the
//! claimed sender against the MLS-authenticated sender and the TTL against the policy (see
//! [`crate::conversation`]). The encoding is specified in `docs/protocol.md` ("Content").

use mls_rs_codec::{MlsDecode, MlsEncode, MlsSize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{decode_versioned, DecodeError};
use crate::crypto::{self, CryptoError};
use crate::identity::{DeviceId, UserId};

/// Version of the content encoding produced by this library.
pub const CONTENT_VERSION: u8 = 1;
/// Largest encoded content accepted (64 KiB); larger payloads travel as attachments.
pub const MAX_CONTENT_LEN: usize = 64 * 1024;
/// Longest text body, in bytes.
pub const MAX_TEXT_LEN: usize = 32 * 1024;

/// Why content could not be built or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The bytes are not valid content.
    #[error("malformed message content: {0}")]
    Decode(#[from] DecodeError),
    /// The content is too large to encode.
    #[error("message content too large")]
    TooLarge,
    /// A new message id could not be drawn.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A 16-byte random message id, chosen by the sender.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, MlsSize, MlsEncode, MlsDecode,
)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A fresh random id.
    pub fn random() -> Result<Self, ContentError> {
        Ok(Self(crypto::random_array()?))
    }
}

/// Delivery or read receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
#[repr(u8)]
pub enum ReceiptKind {
    /// The listed messages reached the recipient's device.
    Delivered = 1,
    /// The recipient read the listed messages.
    Read = 2,
}

/// A reference to an encrypted attachment stored as a blob on the server, with the key to
/// decrypt it. The key is secret: it is zeroized on drop and redacted from `Debug`.
#[derive(Clone, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode, Zeroize, ZeroizeOnDrop)]
pub struct Attachment {
    /// The server's id of the blob.
    pub blob_id: Vec<u8>,
    /// AES-256-GCM key of the blob.
    pub key: [u8; 32],
    /// AES-256-GCM nonce of the blob.
    pub nonce: [u8; 12],
    /// SHA-256 of the encrypted blob, checked before decryption.
    pub ciphertext_sha256: [u8; 32],
    /// Size of the plaintext, in bytes.
    pub size: u64,
    /// Media type, e.g. `image/png`.
    pub media_type: String,
    /// Suggested file name.
    pub file_name: String,
}

impl core::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Attachment")
            .field("size", &self.size)
            .field("media_type", &self.media_type)
            .finish_non_exhaustive()
    }
}

/// Receipts for earlier messages of the same conversation.
#[derive(Clone, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode, Zeroize)]
pub struct Receipt {
    /// Delivered or read.
    #[zeroize(skip)]
    pub kind: ReceiptKind,
    /// The messages it acknowledges.
    #[zeroize(skip)]
    pub messages: Vec<MessageId>,
}

/// Call signalling (offer, answer, candidates, hang-up), opaque to this layer.
#[derive(Clone, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode, Zeroize)]
pub struct CallSignal {
    /// The call this belongs to.
    pub call_id: [u8; 16],
    /// The signalling payload.
    pub payload: Vec<u8>,
}

/// A control message for the application (e.g. a conversation's display name).
#[derive(Clone, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode, Zeroize)]
pub struct Control {
    /// Application-defined kind.
    pub kind: u16,
    /// Application-defined payload.
    pub payload: Vec<u8>,
}

/// The body of a message. Its `Debug` shows only the kind and size, never the content.
#[derive(Clone, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode, Zeroize)]
#[repr(u16)]
pub enum Body {
    /// UTF-8 text.
    Text(String) = 1,
    /// An encrypted attachment.
    Attachment(Attachment) = 2,
    /// Delivery or read receipts.
    Receipt(Receipt) = 3,
    /// Call signalling.
    Call(CallSignal) = 4,
    /// Application control data.
    Control(Control) = 5,
}

impl core::fmt::Debug for Body {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Body::Text(text) => write!(f, "Text(<{} bytes>)", text.len()),
            Body::Attachment(a) => write!(f, "{a:?}"),
            Body::Receipt(r) => write!(f, "{r:?}"),
            Body::Call(c) => write!(f, "Call(<{} bytes>)", c.payload.len()),
            Body::Control(c) => write!(f, "Control(kind {}, <{} bytes>)", c.kind, c.payload.len()),
        }
    }
}

/// One message as its sender wrote it. Zeroized on drop: the text and keys it carries are
/// wiped from memory when the message is dropped.
#[derive(Clone, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode, Zeroize, ZeroizeOnDrop)]
pub struct Content {
    version: u8,
    /// Sender-chosen id, unique per conversation.
    #[zeroize(skip)]
    pub id: MessageId,
    /// The sending user.
    pub sender_user: String,
    /// The sending device.
    #[zeroize(skip)]
    pub sender_device: DeviceId,
    /// When it was sent, milliseconds since the Unix epoch (sender's clock).
    pub sent_at_ms: u64,
    /// How long it may live from `sent_at_ms`, in seconds.
    pub ttl_seconds: u32,
    /// Whether it must be deleted as soon as it is read.
    pub burn_on_read: bool,
    /// The body.
    pub body: Body,
}

impl Content {
    /// New content with a fresh random id.
    pub fn new(
        sender_user: &str,
        sender_device: DeviceId,
        sent_at_ms: u64,
        ttl_seconds: u32,
        burn_on_read: bool,
        body: Body,
    ) -> Result<Self, ContentError> {
        Ok(Self {
            version: CONTENT_VERSION,
            id: MessageId::random()?,
            sender_user: sender_user.to_owned(),
            sender_device,
            sent_at_ms,
            ttl_seconds,
            burn_on_read,
            body,
        })
    }

    /// The encoding, checked against [`MAX_CONTENT_LEN`].
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, ContentError> {
        if let Body::Text(text) = &self.body {
            if text.len() > MAX_TEXT_LEN {
                return Err(ContentError::TooLarge);
            }
        }
        let bytes = Zeroizing::new(
            self.mls_encode_to_vec()
                .map_err(|_| ContentError::TooLarge)?,
        );
        if bytes.len() > MAX_CONTENT_LEN {
            return Err(ContentError::TooLarge);
        }
        Ok(bytes)
    }

    /// Parses content from untrusted bytes (after MLS decryption).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContentError> {
        let content: Self = decode_versioned(bytes, MAX_CONTENT_LEN, CONTENT_VERSION)?;
        if matches!(&content.body, Body::Text(t) if t.len() > MAX_TEXT_LEN)
            || UserId::new(&content.sender_user).is_err()
        {
            return Err(DecodeError::Malformed.into());
        }
        Ok(content)
    }

    /// When the message expires, in milliseconds since the Unix epoch.
    ///
    /// The TTL counts from the send time, but a receiver never trusts a sender's clock to
    /// extend a message's life: the earlier of the claimed send time and the local receive
    /// time is used.
    pub fn expires_at_ms(&self, received_at_ms: u64) -> u64 {
        let start = self.sent_at_ms.min(received_at_ms);
        start.saturating_add(u64::from(self.ttl_seconds).saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample(body: Body) -> Content {
        Content::new("alice", DeviceId([1; 16]), 1_000, 60, false, body).unwrap()
    }

    #[test]
    fn roundtrips_every_body() {
        let bodies = [
            Body::Text("hi".into()),
            Body::Attachment(Attachment {
                blob_id: vec![1, 2],
                key: [3; 32],
                nonce: [4; 12],
                ciphertext_sha256: [5; 32],
                size: 10,
                media_type: "text/plain".into(),
                file_name: "a.txt".into(),
            }),
            Body::Receipt(Receipt {
                kind: ReceiptKind::Read,
                messages: vec![MessageId([9; 16])],
            }),
            Body::Call(CallSignal {
                call_id: [7; 16],
                payload: vec![1],
            }),
            Body::Control(Control {
                kind: 3,
                payload: vec![2],
            }),
        ];
        for body in bodies {
            let c = sample(body);
            assert_eq!(Content::from_bytes(&c.to_bytes().unwrap()).unwrap(), c);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let bytes = sample(Body::Text("hi".into())).to_bytes().unwrap();
        let mut bad_version = bytes.clone();
        bad_version[0] = 9;
        assert!(matches!(
            Content::from_bytes(&bad_version),
            Err(ContentError::Decode(DecodeError::UnsupportedVersion(9)))
        ));
        assert!(Content::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Content::from_bytes(&trailing).is_err());
        let huge = sample(Body::Text("x".repeat(MAX_TEXT_LEN + 1)));
        assert_eq!(huge.to_bytes(), Err(ContentError::TooLarge));
    }

    proptest::proptest! {
        #[test]
        fn any_valid_content_roundtrips(
            user in "[a-z][a-z0-9._-]{0,63}",
            device in proptest::array::uniform16(proptest::num::u8::ANY),
            id in proptest::array::uniform16(proptest::num::u8::ANY),
            sent_at_ms in proptest::num::u64::ANY,
            ttl in proptest::num::u32::ANY,
            burn in proptest::bool::ANY,
            text in ".{0,200}",
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            which in 0u8..3,
        ) {
            let body = match which {
                0 => Body::Text(text),
                1 => Body::Call(CallSignal { call_id: id, payload }),
                _ => Body::Control(Control { kind: u16::from(id[0]), payload }),
            };
            let mut c = Content::new(&user, DeviceId(device), sent_at_ms, ttl, burn, body).unwrap();
            c.id = MessageId(id);
            let bytes = c.to_bytes().unwrap();
            proptest::prop_assert_eq!(Content::from_bytes(&bytes).unwrap(), c);
        }
    }

    #[test]
    fn expiry_never_trusts_a_future_send_time() {
        let mut c = sample(Body::Text("hi".into()));
        c.sent_at_ms = 10_000_000;
        assert_eq!(c.expires_at_ms(5_000), 5_000 + 60_000);
        c.sent_at_ms = 1_000;
        assert_eq!(c.expires_at_ms(5_000), 1_000 + 60_000);
    }

    #[test]
    fn message_debug_never_shows_the_text_and_senders_must_be_user_ids() {
        let c = sample(Body::Text("my PIN is 4711".into()));
        let debug = format!("{c:?}");
        assert!(!debug.contains("4711"), "{debug}");
        assert!(debug.contains("Text(<14 bytes>)"), "{debug}");
        let mut spoof = sample(Body::Text("hi".into()));
        spoof.sender_user = "Mallory\n\u{1b}[31m".into();
        let bytes = spoof.mls_encode_to_vec().unwrap();
        assert!(Content::from_bytes(&bytes).is_err());
    }

    #[test]
    fn attachment_debug_is_redacted() {
        let Body::Attachment(a) = Body::Attachment(Attachment {
            blob_id: vec![],
            key: [0xAB; 32],
            nonce: [0; 12],
            ciphertext_sha256: [0; 32],
            size: 1,
            media_type: "x/y".into(),
            file_name: "f".into(),
        }) else {
            unreachable!()
        };
        assert_eq!(
            format!("{a:?}"),
            r#"Attachment { size: 1, media_type: "x/y", .. }"#
        );
    }
}
