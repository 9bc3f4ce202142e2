//! Contact discovery and attachments.

use serde::{Deserialize, Serialize};

use crate::Bytes;

/// `GET /v1/discovery/salt`: the deployment salt clients hash identifiers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoverySalt {
    /// The salt (public; the same for every user of this server).
    pub salt: Bytes,
}

/// `PUT /v1/discovery` (authenticated): publish the contact hashes of one's own
/// identifiers, replacing any published before. An empty list withdraws them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublishContacts {
    /// 32-byte contact hashes (see `sotto_core::discovery`).
    pub hashes: Vec<Bytes>,
}

/// `POST /v1/discovery/lookup` (authenticated): which of these hashes belong to users.
/// The server stores none of them; look-ups are limited per account per day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LookupContacts {
    /// 32-byte contact hashes.
    pub hashes: Vec<Bytes>,
}

/// One match of a look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactMatch {
    /// The hash looked up.
    pub hash: Bytes,
    /// The user who published it.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
}

/// The answer to a look-up: only the hashes that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactMatches {
    /// Matches, in the order looked up.
    pub matches: Vec<ContactMatch>,
    /// Look-ups left today for this account.
    pub remaining_today: u64,
}

/// `POST /v1/attachments` (authenticated, body: the encrypted blob): stored until it
/// expires; anyone holding the id and token may fetch or delete it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachmentStored {
    /// The blob's id (hex).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub id: String,
    /// The capability token (base64url), sent as `Authorization: Capability <token>`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{43}$"))]
    pub token: String,
    /// Unix time (seconds) after which the blob is deleted.
    pub expires_at: u64,
}

impl core::fmt::Debug for AttachmentStored {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AttachmentStored")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
