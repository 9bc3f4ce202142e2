//! Password login (OPAQUE, RFC 9807) and the sealed root-key backup it releases.
//!
//! Registration is done by a logged-in device of the account; login is done by a new
//! device that has only the username and the password. The OPAQUE messages are the byte
//! strings of `sotto_core::password`, each of a fixed length. A successful login returns
//! the account's sealed root-key backup (`sotto_core::backup`), and nothing else: the new
//! device opens it with the password, certifies itself with the root key, registers the
//! certificate and logs in with its own key as any device does.

use serde::{Deserialize, Serialize};

use crate::Bytes;

/// `POST /v1/password/register/start` (authenticated): the first OPAQUE registration
/// message, for the session's own account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordRegistrationStart {
    /// The user id; must be the session's (it is bound into the record).
    pub username: String,
    /// The registration request (32 bytes).
    pub request: Bytes,
}

/// The answer to [`PasswordRegistrationStart`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordRegistrationResponse {
    /// The registration response (64 bytes).
    pub response: Bytes,
}

/// `POST /v1/password/register/finish` (authenticated): store (or replace) the account's
/// OPAQUE record and its sealed root-key backup. Answered 204.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordRegistrationFinish {
    /// The user id; must be the session's.
    pub username: String,
    /// The registration upload (192 bytes), which the server stores as the record.
    pub upload: Bytes,
    /// The root key sealed under the password (`UserRootKey::seal_backup`), at most
    /// 4096 bytes; released only after a successful password login.
    pub sealed_backup: Bytes,
}

/// `PUT /v1/backup` (authenticated): replace the sealed root-key backup of the session's
/// account, which must have a password record. Answered 204.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutBackup {
    /// The new sealed backup, at most 4096 bytes.
    pub sealed_backup: Bytes,
}

/// `POST /v1/password/login/start`: the first OPAQUE login message. Every start counts
/// against the username's lockout; a successful finish clears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordLoginStart {
    /// The user id.
    pub username: String,
    /// The credential request (96 bytes).
    pub request: Bytes,
}

/// The answer to [`PasswordLoginStart`]; the same size whether or not the user exists.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordLoginStarted {
    /// Names this login in the finish (32 random bytes, usable once, for 60 seconds).
    pub login_id: Bytes,
    /// The credential response (320 bytes).
    pub response: Bytes,
}

impl core::fmt::Debug for PasswordLoginStarted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PasswordLoginStarted")
            .field("login_id", &"<redacted>")
            .field("response", &self.response)
            .finish()
    }
}

/// `POST /v1/password/login/finish`: the client's finalization, sent only if its own
/// finish succeeded (a wrong password fails at the client, which then sends nothing).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordLoginFinish {
    /// The login id from [`PasswordLoginStarted`].
    pub login_id: Bytes,
    /// The credential finalization (64 bytes).
    pub finalization: Bytes,
}

impl core::fmt::Debug for PasswordLoginFinish {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PasswordLoginFinish(<redacted>)")
    }
}

/// The answer to a successful [`PasswordLoginFinish`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordLoginFinished {
    /// The account's sealed root-key backup, as last stored.
    pub sealed_backup: Bytes,
}

impl core::fmt::Debug for PasswordLoginFinished {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PasswordLoginFinished(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_debug_hides_secrets() {
        let json = r#"{"username":"alice","request":"AAE=","extra":1}"#;
        assert!(serde_json::from_str::<PasswordLoginStart>(json).is_err());
        let finished = PasswordLoginFinished {
            sealed_backup: Bytes(b"SOTTOBK".to_vec()),
        };
        assert_eq!(format!("{finished:?}"), "PasswordLoginFinished(<redacted>)");
        let started = PasswordLoginStarted {
            login_id: Bytes(vec![7; 32]),
            response: Bytes(vec![1; 320]),
        };
        assert!(format!("{started:?}").contains("<redacted>"));
        let json = serde_json::to_string(&started).unwrap();
        assert_eq!(
            serde_json::from_str::<PasswordLoginStarted>(&json).unwrap(),
            started
        );
    }
}
