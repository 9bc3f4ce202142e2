//! The MLS side of Sotto identities: the credential type carrying a device certificate, and
//! the identity provider that validates it whenever a device enters a conversation.
//!
//! `mls-rs` calls [`SottoIdentityProvider::validate_member`] for every leaf it accepts: the
//! creator's own leaf, each KeyPackage added by a commit, each leaf replaced by an update
//! or commit path, and every leaf of the tree received with a Welcome. Every application
//! message and commit is then signed by a leaf key that passed this check, and MLS
//! verifies that signature on receipt.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use mls_rs_codec::MlsEncode;
use mls_rs_core::{
    error::IntoAnyError,
    extension::ExtensionList,
    identity::{
        Credential, CredentialType, CustomCredential, IdentityProvider, MemberValidationContext,
        SigningIdentity,
    },
    time::MlsTime,
};

use crate::crypto;
use crate::identity::{DeviceCertificate, DeviceIdentity, IdentityError};

/// The MLS credential type of a Sotto device certificate (private-use range of RFC 9420).
pub const SOTTO_CREDENTIAL: CredentialType = CredentialType::new(0xF5D0);

/// Wraps a device certificate as an MLS credential.
pub fn credential(certificate: &DeviceCertificate) -> Result<Credential, IdentityError> {
    Ok(Credential::Custom(CustomCredential::new(
        SOTTO_CREDENTIAL,
        certificate.to_bytes()?,
    )))
}

/// Extracts and verifies the device certificate of an MLS signing identity, checking that
/// it certifies the identity's signature key.
///
/// Verification is a pure function of the signing identity's bytes, so its successful
/// results are remembered ([`VERIFIED_CACHE_LIMIT`] entries, keyed by the SHA-256 of the
/// encoded signing identity): a certificate is checked wherever it is used — every add,
/// Welcome, commit and received message — but its signature is verified once.
pub fn device_identity(
    signing_identity: &SigningIdentity,
) -> Result<DeviceIdentity, IdentityError> {
    let key = signing_identity
        .mls_encode_to_vec()
        .map(|bytes| crypto::sha256(&bytes))
        .map_err(|_| IdentityError::Encode)?;
    if let Some(identity) = verified().get(&key) {
        return Ok(identity.clone());
    }
    let identity = verify_signing_identity(signing_identity)?;
    let mut cache = verified();
    if cache.len() >= VERIFIED_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key, identity.clone());
    Ok(identity)
}

/// Forgets every remembered verification, as in a freshly started process. Only
/// benchmarks need this: they measure the cost of verifying, not of remembering.
pub fn forget_verified_identities() {
    verified().clear();
}

/// How many verified signing identities [`device_identity`] remembers (about 10 MB at most).
pub const VERIFIED_CACHE_LIMIT: usize = 16_384;

type VerifiedCache = HashMap<[u8; 32], DeviceIdentity>;

fn verified() -> MutexGuard<'static, VerifiedCache> {
    static CACHE: OnceLock<Mutex<VerifiedCache>> = OnceLock::new();
    // A panic while holding the lock cannot leave a wrong entry behind (entries are inserted
    // whole), so a poisoned lock is still safe to use.
    CACHE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn verify_signing_identity(
    signing_identity: &SigningIdentity,
) -> Result<DeviceIdentity, IdentityError> {
    let Credential::Custom(custom) = &signing_identity.credential else {
        return Err(IdentityError::WrongCredentialType);
    };
    if custom.credential_type != SOTTO_CREDENTIAL {
        return Err(IdentityError::WrongCredentialType);
    }
    DeviceCertificate::from_bytes(&custom.data)?
        .verify_for_key(signing_identity.signature_key.as_bytes())
}

/// Validates Sotto device certificates for `mls-rs`. External senders are never accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct SottoIdentityProvider;

impl IntoAnyError for IdentityError {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

impl IdentityProvider for SottoIdentityProvider {
    type Error = IdentityError;

    fn validate_member(
        &self,
        signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _context: MemberValidationContext<'_>,
    ) -> Result<(), Self::Error> {
        device_identity(signing_identity).map(|_| ())
    }

    fn validate_external_sender(
        &self,
        _signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _extensions: Option<&ExtensionList>,
    ) -> Result<(), Self::Error> {
        Err(IdentityError::ExternalSender)
    }

    /// A member's MLS identity is its root-key fingerprint followed by its device id, so
    /// that each device is a distinct member and two users can never collide.
    fn identity(
        &self,
        signing_identity: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> Result<Vec<u8>, Self::Error> {
        let id = device_identity(signing_identity)?;
        let mut out = id.root_fingerprint.0.to_vec();
        out.extend_from_slice(&id.device_id.0);
        Ok(out)
    }

    /// A leaf may only be succeeded by the same device of the same user.
    fn valid_successor(
        &self,
        predecessor: &SigningIdentity,
        successor: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> Result<bool, Self::Error> {
        let before = device_identity(predecessor)?;
        let after = device_identity(successor)?;
        Ok(before.same_user(&after) && before.device_id == after.device_id)
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        vec![SOTTO_CREDENTIAL]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::SigningKey;
    use crate::identity::{DeviceId, UserId, UserRootKey};

    #[test]
    fn the_verification_cache_never_vouches_for_other_bytes() {
        let root = UserRootKey::generate(UserId::new("alice").unwrap()).unwrap();
        let key = SigningKey::generate().unwrap().public_key();
        let cert = root.certify_device(DeviceId([3; 16]), &key, 1).unwrap();
        let good = SigningIdentity::new(credential(&cert).unwrap(), key.clone().into());
        let first = device_identity(&good).unwrap();
        assert_eq!(device_identity(&good).unwrap(), first);
        // The same certificate presented with another key is refused, cache or not.
        let other_key = SigningKey::generate().unwrap().public_key();
        let swapped = SigningIdentity::new(credential(&cert).unwrap(), other_key.into());
        assert_eq!(
            device_identity(&swapped),
            Err(IdentityError::DeviceKeyMismatch)
        );
        assert_eq!(
            device_identity(&swapped),
            Err(IdentityError::DeviceKeyMismatch)
        );
    }
}
