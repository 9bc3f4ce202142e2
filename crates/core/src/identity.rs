//! User identities: user ids, user root keys and device certificates.
//!
//! A user owns one **root key** (ECDSA P-521/SHA-512), made at registration. The root key
//! signs a **device certificate** for each of the user's devices, binding the user id, a
//! random device id, the device's MLS signature public key and a creation time. The
//! certificate is the device's MLS credential (see [`crate::identity_provider`]); every
//! member checks it whenever a device enters a conversation. A server that stores
//! certificates cannot mint one, so it cannot add a device to an account.
//!
//! The byte encoding is specified in `docs/protocol.md` ("Device certificate").

use mls_rs_codec::{MlsDecode, MlsEncode, MlsSize};
use zeroize::Zeroizing;

use crate::backup::{self, BackupError, ScryptParams, SealedBackup};
use crate::codec::{decode_versioned, DecodeError};
use crate::crypto::{self, CryptoError, SigningKey, P521_PUBLIC_KEY_LEN};

/// Version of the device-certificate encoding produced by this library.
pub const CERTIFICATE_VERSION: u8 = 1;
/// Longest user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 64;
/// Largest encoded device certificate accepted from the network or disk.
pub const MAX_CERTIFICATE_LEN: usize = 1024;
/// Domain-separation label prefixed to every to-be-signed certificate.
const CERTIFICATE_LABEL: &[u8] = b"sotto device certificate v1";
/// Domain-separation label for root-key fingerprints.
const FINGERPRINT_LABEL: &[u8] = b"sotto root key fingerprint v1";
/// Context bound into the sealed backup of a root key (with the user id appended).
const BACKUP_CONTEXT_LABEL: &[u8] = b"sotto root key backup v1:";

/// Why an identity or certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The user id is empty, too long, or uses characters outside `[a-z0-9._-]`.
    #[error("invalid user id: must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")]
    InvalidUserId,
    /// A public key is not an uncompressed P-521 point.
    #[error("invalid public key: expected an uncompressed P-521 point of 133 bytes")]
    InvalidPublicKey,
    /// The certificate could not be decoded.
    #[error("malformed device certificate: {0}")]
    Decode(#[from] DecodeError),
    /// The certificate's root signature does not verify.
    #[error("device certificate signature is not valid for its root key")]
    BadSignature,
    /// The certificate is valid but certifies a different device key than the one presented.
    #[error("device certificate does not match the device's signature key")]
    DeviceKeyMismatch,
    /// The certificate is valid but belongs to another user or root key than expected.
    #[error("device certificate belongs to another user")]
    UserMismatch,
    /// The cryptographic backend failed.
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] CryptoError),
    /// The MLS credential is not a Sotto device certificate.
    #[error("credential is not a Sotto device certificate")]
    WrongCredentialType,
    /// Sotto conversations accept no external senders.
    #[error("external senders are not allowed")]
    ExternalSender,
    /// A structure could not be encoded (a field exceeded the encoding's limits).
    #[error("could not encode the certificate")]
    Encode,
    /// Sealing or opening the root-key backup failed.
    #[error(transparent)]
    Backup(#[from] BackupError),
}

/// A validated user id (the account name): 1–64 bytes of `[a-z0-9._-]`, starting with a
/// letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Validates `name` as a user id. Upper case is refused, not folded, so that a user id
    /// has exactly one spelling.
    pub fn new(name: &str) -> Result<Self, IdentityError> {
        let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c);
        let bytes = name.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || bytes.len() > MAX_USER_ID_LEN || !bytes.iter().all(|&c| ok_char(c)) {
            return Err(IdentityError::InvalidUserId);
        }
        Ok(Self(name.to_owned()))
    }

    /// The user id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for UserId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

impl core::fmt::Display for UserId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 16-byte random device id, unique within a user's account.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, MlsSize, MlsEncode, MlsDecode)]
pub struct DeviceId(pub [u8; 16]);

impl DeviceId {
    /// A fresh random device id.
    pub fn random() -> Result<Self, IdentityError> {
        Ok(Self(crypto::random_array()?))
    }

    /// Lower-case hex, as shown to users and used in URLs.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl core::fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeviceId({})", self.to_hex())
    }
}

/// The 32-byte fingerprint of a root public key: `SHA-512(label || key)[..32]`.
/// It names a user inside the policy extension (managers) and in member identities.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, MlsSize, MlsEncode, MlsDecode)]
pub struct RootFingerprint(pub [u8; 32]);

impl core::fmt::Debug for RootFingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hex: String = self.0[..8].iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "RootFingerprint({hex}…)")
    }
}

fn check_point(key: &[u8]) -> Result<(), IdentityError> {
    if key.len() == P521_PUBLIC_KEY_LEN && key.first() == Some(&0x04) {
        Ok(())
    } else {
        Err(IdentityError::InvalidPublicKey)
    }
}

/// A user's root public key (uncompressed SEC1 P-521 point).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RootPublicKey(Vec<u8>);

impl RootPublicKey {
    /// Wraps `bytes` after checking that they have the shape of an uncompressed P-521 point.
    /// (Whether the point is on the curve is checked by AWS-LC at every verification.)
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        check_point(bytes)?;
        Ok(Self(bytes.to_vec()))
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> RootFingerprint {
        let digest = crypto::sha512_parts(&[FINGERPRINT_LABEL, &self.0]);
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest[..32]);
        RootFingerprint(out)
    }
}

impl core::fmt::Debug for RootPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RootPublicKey({:?})", self.fingerprint())
    }
}

/// A user's root key pair. The secret half never leaves a device except sealed in a
/// [`SealedBackup`]; it is zeroized on drop.
#[derive(Debug)]
pub struct UserRootKey {
    user: UserId,
    key: SigningKey,
}

impl UserRootKey {
    /// Generates a new root key for `user`.
    pub fn generate(user: UserId) -> Result<Self, IdentityError> {
        Ok(Self {
            user,
            key: SigningKey::generate()?,
        })
    }

    /// The user this key belongs to.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The secret key in PKCS#8 form, for a device's encrypted store while a registration
    /// is unfinished. It is zeroized when dropped and must never leave the device
    /// unencrypted.
    pub fn to_pkcs8(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.pkcs8().to_vec())
    }

    /// A root key of `user` read back from [`to_pkcs8`](Self::to_pkcs8) output.
    pub fn from_pkcs8(user: UserId, pkcs8: &[u8]) -> Result<Self, IdentityError> {
        Ok(Self {
            user,
            key: SigningKey::from_pkcs8(pkcs8)?,
        })
    }

    /// The public half.
    pub fn public_key(&self) -> RootPublicKey {
        RootPublicKey(self.key.public_key())
    }

    /// Signs a certificate for a device whose MLS signature public key is `device_key`.
    pub fn certify_device(
        &self,
        device_id: DeviceId,
        device_key: &[u8],
        created_at: u64,
    ) -> Result<DeviceCertificate, IdentityError> {
        check_point(device_key)?;
        let mut cert = DeviceCertificate {
            version: CERTIFICATE_VERSION,
            user_id: self.user.0.clone(),
            device_id,
            device_key: device_key.to_vec(),
            created_at,
            root_key: self.key.public_key(),
            signature: Vec::new(),
        };
        cert.signature = self.key.sign(&cert.to_be_signed()?)?;
        Ok(cert)
    }

    /// Signs the revocation of one of this user's devices (see [`revocation_message`]),
    /// for when no other device of the user is at hand.
    pub fn sign_revocation(&self, device: &DeviceId) -> Result<Vec<u8>, IdentityError> {
        Ok(self.key.sign(&revocation_message(&self.user, device))?)
    }

    /// Seals the root secret key under `password` (scrypt, then AES-256-GCM), bound to
    /// the user id. The result is what the server stores as the account's key backup.
    pub fn seal_backup(
        &self,
        password: &[u8],
        params: ScryptParams,
    ) -> Result<SealedBackup, IdentityError> {
        Ok(backup::seal(
            self.key.pkcs8(),
            password,
            params,
            &backup_context(&self.user),
        )?)
    }

    /// Opens a backup sealed by [`seal_backup`](Self::seal_backup) for `user`, whose root
    /// key the caller knows by its fingerprint `expected` (from the account it logged in
    /// to). A wrong password, another user's blob, an altered blob, or a blob holding any
    /// other key (one a server substituted) gives an error.
    pub fn open_backup(
        user: UserId,
        expected: &RootFingerprint,
        sealed: &SealedBackup,
        password: &[u8],
    ) -> Result<Self, IdentityError> {
        let pkcs8 = sealed.open(password, &backup_context(&user))?;
        let root = Self {
            user,
            key: SigningKey::from_pkcs8(&pkcs8)?,
        };
        if &root.public_key().fingerprint() != expected {
            return Err(IdentityError::UserMismatch);
        }
        Ok(root)
    }
}

/// The bytes a root key signs to revoke a device:
/// `"sotto revoke device v1" || u8(len(user id)) || user id || device id`.
pub fn revocation_message(user: &UserId, device: &DeviceId) -> Vec<u8> {
    let user = user.as_str().as_bytes();
    let mut out = b"sotto revoke device v1".to_vec();
    // A user id is at most 64 bytes.
    out.push(u8::try_from(user.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(user);
    out.extend_from_slice(&device.0);
    out
}

/// Checks a root key's signature over the revocation of `device` of `user`.
pub fn verify_revocation(
    root: &RootPublicKey,
    user: &UserId,
    device: &DeviceId,
    signature: &[u8],
) -> Result<(), IdentityError> {
    crypto::verify_p521(
        root.as_bytes(),
        &revocation_message(user, device),
        signature,
    )
    .map_err(|_| IdentityError::BadSignature)
}

fn backup_context(user: &UserId) -> Zeroizing<Vec<u8>> {
    let mut ctx = Zeroizing::new(BACKUP_CONTEXT_LABEL.to_vec());
    ctx.extend_from_slice(user.as_str().as_bytes());
    ctx
}

/// A device certificate: the root key's signature over the device's identity.
///
/// Decoding ([`from_bytes`](Self::from_bytes)) only parses; call
/// [`verify`](Self::verify) before trusting any field.
#[derive(Clone, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
pub struct DeviceCertificate {
    version: u8,
    user_id: String,
    device_id: DeviceId,
    device_key: Vec<u8>,
    created_at: u64,
    root_key: Vec<u8>,
    signature: Vec<u8>,
}

/// The to-be-signed part of a certificate (every field but the signature), after a label.
#[derive(MlsSize, MlsEncode)]
struct CertificateTbs<'a> {
    label: &'a [u8],
    version: u8,
    user_id: &'a str,
    device_id: &'a DeviceId,
    device_key: &'a [u8],
    created_at: u64,
    root_key: &'a [u8],
}

impl core::fmt::Debug for DeviceCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceCertificate")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl DeviceCertificate {
    fn to_be_signed(&self) -> Result<Vec<u8>, IdentityError> {
        let tbs = CertificateTbs {
            label: CERTIFICATE_LABEL,
            version: self.version,
            user_id: &self.user_id,
            device_id: &self.device_id,
            device_key: &self.device_key,
            created_at: self.created_at,
            root_key: &self.root_key,
        };
        tbs.mls_encode_to_vec().map_err(|_| IdentityError::Encode)
    }

    /// Parses an encoded certificate from untrusted bytes (at most
    /// [`MAX_CERTIFICATE_LEN`]). Does not verify it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        Ok(decode_versioned(
            bytes,
            MAX_CERTIFICATE_LEN,
            CERTIFICATE_VERSION,
        )?)
    }

    /// The certificate's encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, IdentityError> {
        self.mls_encode_to_vec().map_err(|_| IdentityError::Encode)
    }

    /// Checks every field's shape and the root key's signature, and returns the verified
    /// identity of the device.
    pub fn verify(&self) -> Result<DeviceIdentity, IdentityError> {
        let user = UserId::new(&self.user_id)?;
        check_point(&self.device_key)?;
        let root = RootPublicKey::from_bytes(&self.root_key)?;
        crypto::verify_p521(&self.root_key, &self.to_be_signed()?, &self.signature)
            .map_err(|_| IdentityError::BadSignature)?;
        Ok(DeviceIdentity {
            user,
            root_fingerprint: root.fingerprint(),
            root_key: root,
            device_id: self.device_id,
            created_at: self.created_at,
        })
    }

    /// Verifies the certificate and that it certifies exactly `device_key`.
    pub fn verify_for_key(&self, device_key: &[u8]) -> Result<DeviceIdentity, IdentityError> {
        let identity = self.verify()?;
        if self.device_key != device_key {
            return Err(IdentityError::DeviceKeyMismatch);
        }
        Ok(identity)
    }

    /// Verifies the certificate and that it belongs to `user` under the root key with
    /// fingerprint `root` — the key the caller already trusts for that user (pinned, or
    /// checked with a safety number). A certificate of another user, or of the same user
    /// id under another root key (a key substituted by a server), is `UserMismatch`.
    pub fn verify_for_user(
        &self,
        user: &UserId,
        root: &RootFingerprint,
    ) -> Result<DeviceIdentity, IdentityError> {
        let identity = self.verify()?;
        if &identity.user != user || &identity.root_fingerprint != root {
            return Err(IdentityError::UserMismatch);
        }
        Ok(identity)
    }

    /// The certified MLS signature public key of the device (unverified until
    /// [`verify`](Self::verify) succeeds).
    pub fn device_key(&self) -> &[u8] {
        &self.device_key
    }
}

/// What a verified device certificate says: which user (and root key) owns which device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The owning user.
    pub user: UserId,
    /// The user's root public key.
    pub root_key: RootPublicKey,
    /// Its fingerprint.
    pub root_fingerprint: RootFingerprint,
    /// The device.
    pub device_id: DeviceId,
    /// When the root key certified the device (seconds since the Unix epoch).
    pub created_at: u64,
}

impl DeviceIdentity {
    /// True if both devices belong to the same user under the same root key.
    pub fn same_user(&self, other: &DeviceIdentity) -> bool {
        self.user == other.user && self.root_fingerprint == other.root_fingerprint
    }
}

#[cfg(test)]
mod tests;
