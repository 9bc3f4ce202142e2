//! Device authentication to the server: the device signs a fresh server challenge with its
//! MLS signature key, and the server checks the signature against the device's registered
//! certificate. No password or secret ever reaches the server this way.
//!
//! The signed message is `"sotto device auth v1" || u16be(len(challenge)) || challenge ||
//! u16be(len(user id)) || user id || device id (16 bytes)`, so a signature answers exactly
//! one challenge for exactly one device and can never be mistaken for an MLS signature
//! (those are over RFC 9420 `SignContent` structures with their own labels).

use mls_rs::{CipherSuiteProvider, CryptoProvider};
use mls_rs_core::crypto::SignatureSecretKey;

use crate::crypto::{self, CryptoError};
use crate::device::{crypto_provider, CIPHER_SUITE};
use crate::identity::{DeviceCertificate, DeviceId, DeviceIdentity, IdentityError, UserId};

/// Length of a server challenge.
pub const CHALLENGE_LEN: usize = 32;
const AUTH_LABEL: &[u8] = b"sotto device auth v1";

/// The bytes a device signs to answer `challenge`.
pub fn auth_message(challenge: &[u8; CHALLENGE_LEN], user: &UserId, device: &DeviceId) -> Vec<u8> {
    let user = user.as_str().as_bytes();
    let mut out = Vec::with_capacity(AUTH_LABEL.len() + 4 + CHALLENGE_LEN + user.len() + 16);
    out.extend_from_slice(AUTH_LABEL);
    out.extend_from_slice(&(CHALLENGE_LEN as u16).to_be_bytes());
    out.extend_from_slice(challenge);
    // A user id is at most 64 bytes, so its length always fits.
    out.extend_from_slice(&u16::try_from(user.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(user);
    out.extend_from_slice(&device.0);
    out
}

/// Signs the answer to `challenge` with the device's MLS signature secret key.
pub fn sign_challenge(
    secret: &SignatureSecretKey,
    challenge: &[u8; CHALLENGE_LEN],
    user: &UserId,
    device: &DeviceId,
) -> Result<Vec<u8>, CryptoError> {
    let suite = crypto_provider()
        .cipher_suite_provider(CIPHER_SUITE)
        .ok_or(CryptoError::Key)?;
    suite
        .sign(secret, &auth_message(challenge, user, device))
        .map_err(|_| CryptoError::Key)
}

/// Checks an answer against the device's certificate (which the caller looked up as the
/// registered one) and returns the verified device.
pub fn verify_challenge(
    certificate: &DeviceCertificate,
    challenge: &[u8; CHALLENGE_LEN],
    signature: &[u8],
) -> Result<DeviceIdentity, IdentityError> {
    let device = certificate.verify()?;
    let message = auth_message(challenge, &device.user, &device.device_id);
    crypto::verify_p521(certificate.device_key(), &message, signature)
        .map_err(|_| IdentityError::BadSignature)?;
    Ok(device)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::device::NewDevice;
    use crate::identity::UserRootKey;

    #[test]
    fn a_signed_challenge_verifies_once_and_only_for_its_device() {
        let root = UserRootKey::generate(UserId::new("alice").unwrap()).unwrap();
        let device = NewDevice::generate(&root, 1).unwrap();
        let other = NewDevice::generate(&root, 1).unwrap();
        let who = device.certificate.verify().unwrap();
        let challenge = [7u8; CHALLENGE_LEN];
        let sig = sign_challenge(&device.secret, &challenge, &who.user, &who.device_id).unwrap();
        assert_eq!(
            verify_challenge(&device.certificate, &challenge, &sig).unwrap(),
            who
        );
        assert_eq!(
            verify_challenge(&device.certificate, &[8u8; CHALLENGE_LEN], &sig),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            verify_challenge(&other.certificate, &challenge, &sig),
            Err(IdentityError::BadSignature)
        );
    }
}
