//! Sealed root-key backups: a secret encrypted under a password.
//!
//! The key is `scrypt(password, salt, N, r, p)` (RFC 7914, 32 bytes); the secret is sealed
//! with AES-256-GCM under that key. Both come from [`crate::crypto`].
//!
//! # Format (version 1)
//!
//! All integers are big-endian. Offsets are in bytes.
//!
//! | offset | length | field                                              |
//! |-------:|-------:|----------------------------------------------------|
//! |      0 |      7 | magic, ASCII `SOTTOBK`                             |
//! |      7 |      1 | version, `0x01`                                    |
//! |      8 |      1 | `log_n`: scrypt cost `N = 2^log_n`                 |
//! |      9 |      4 | `r`: scrypt block size (u32)                       |
//! |     13 |      4 | `p`: scrypt parallelism (u32)                      |
//! |     17 |     32 | salt, random                                       |
//! |     49 |     12 | AES-256-GCM nonce, random                          |
//! |     61 |  n+16 | AES-256-GCM ciphertext of the n-byte secret, then the 16-byte tag |
//!
//! The *header* is bytes `0..61` (magic through nonce). The GCM additional data is
//! `header || context`, where `context` is supplied by the caller to both [`seal`] and
//! [`SealedBackup::open`] and is not stored: binding, for example, the user id there means a
//! blob cannot be moved to another account. Every header byte is therefore authenticated.
//!
//! # Limits
//!
//! A blob is at most [`MAX_BACKUP_LEN`] bytes. Parameters are accepted (when sealing *and*
//! when parsing, so a hostile blob cannot make us allocate gigabytes or spin for minutes)
//! only if `10 <= log_n <= 22`, `r >= 1`, `p >= 1`, `r * p <= 64`,
//! `128 * N * r <= 256 MiB` (scrypt's memory; twice the default) and `N * r * p <= 2^22`
//! (its work; four times the default), so that a blob served by a hostile server cannot
//! exhaust a phone's memory or battery. There is deliberately no way below `N = 2^10`, not even for tests: the parser
//! enforces the same bounds as the sealer, so an escape hatch would be either a hole or
//! useless. Tests use `ScryptParams::new(10, 1, 1)` (128 KiB), which is cheap.

use crate::crypto::{self, CryptoError, AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN};
use zeroize::Zeroizing;

/// The magic bytes that start every backup.
pub const MAGIC: &[u8; 7] = b"SOTTOBK";
/// The format version this implementation writes and reads.
pub const VERSION: u8 = 1;
/// Length of the random scrypt salt.
pub const SALT_LEN: usize = 32;
/// Length of the header (magic through nonce), which is also the offset of the ciphertext.
pub const HEADER_LEN: usize = 7 + 1 + 1 + 4 + 4 + SALT_LEN + AEAD_NONCE_LEN;
/// The largest encoded backup [`SealedBackup::from_bytes`] accepts (16 KiB).
pub const MAX_BACKUP_LEN: usize = 16 * 1024;
/// The largest secret [`seal`] accepts, so that every sealed blob can be parsed again.
pub const MAX_SECRET_LEN: usize = MAX_BACKUP_LEN - HEADER_LEN - AEAD_TAG_LEN;

const MIN_LOG_N: u8 = 10;
const MAX_LOG_N: u8 = 22;
const MAX_R_TIMES_P: u128 = 64;
const MAX_MEMORY: u128 = 1 << 28;
const MAX_WORK: u128 = 1 << 22;

/// Why a backup could not be sealed, parsed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// Decryption failed. AES-GCM cannot tell these apart: the password is wrong, the context
    /// differs from the one used when sealing, or the blob was altered.
    #[error("wrong password, or the backup is corrupt or belongs to another context")]
    WrongPasswordOrCorrupt,
    /// The blob is longer than [`MAX_BACKUP_LEN`].
    #[error("backup of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Length of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The blob is shorter than a header and a tag.
    #[error("backup of {0} bytes is truncated")]
    Truncated(usize),
    /// The blob does not start with [`MAGIC`].
    #[error("not a Sotto backup (bad magic)")]
    BadMagic,
    /// The blob has a version other than [`VERSION`].
    #[error("unsupported backup version {0}")]
    UnsupportedVersion(u8),
    /// The scrypt parameters are outside the accepted range (see the module documentation).
    #[error("scrypt parameters out of range (log_n {log_n}, r {r}, p {p})")]
    BadParams {
        /// The requested `log2(N)`.
        log_n: u8,
        /// The requested block size.
        r: u32,
        /// The requested parallelism.
        p: u32,
    },
    /// The secret is longer than [`MAX_SECRET_LEN`].
    #[error("secret of {0} bytes is too long to back up")]
    SecretTooLong(usize),
    /// The cryptographic backend failed (random number generator, or scrypt out of memory).
    #[error("cryptographic backend failure: {0}")]
    Crypto(#[from] CryptoError),
}

/// scrypt cost parameters, always within the bounds given in the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptParams {
    log_n: u8,
    r: u32,
    p: u32,
}

impl Default for ScryptParams {
    /// `N = 2^17`, `r = 8`, `p = 1`: 128 MiB of memory.
    fn default() -> Self {
        Self {
            log_n: 17,
            r: 8,
            p: 1,
        }
    }
}

impl ScryptParams {
    /// Checks `N = 2^log_n`, `r` and `p` against the bounds in the module documentation.
    pub fn new(log_n: u8, r: u32, p: u32) -> Result<Self, BackupError> {
        let (n, r128, p128) = (1u128 << log_n.min(127), u128::from(r), u128::from(p));
        let ok = (MIN_LOG_N..=MAX_LOG_N).contains(&log_n)
            && r >= 1
            && p >= 1
            && r128 * p128 <= MAX_R_TIMES_P
            && 128 * n * r128 <= MAX_MEMORY
            && n * r128 * p128 <= MAX_WORK;
        if ok {
            Ok(Self { log_n, r, p })
        } else {
            Err(BackupError::BadParams { log_n, r, p })
        }
    }

    /// `log2(N)`.
    pub fn log_n(&self) -> u8 {
        self.log_n
    }

    /// The block size `r`.
    pub fn r(&self) -> u32 {
        self.r
    }

    /// The parallelism `p`.
    pub fn p(&self) -> u32 {
        self.p
    }

    fn derive_key(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; AEAD_KEY_LEN]>, BackupError> {
        let mut key = Zeroizing::new([0u8; AEAD_KEY_LEN]);
        crypto::scrypt(password, salt, self.log_n, self.r, self.p, &mut key[..])?;
        Ok(key)
    }
}

/// A secret sealed under a password; see the module documentation for the format.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBackup {
    params: ScryptParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; AEAD_NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl core::fmt::Debug for SealedBackup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealedBackup")
            .field("params", &self.params)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Seals `secret` under `password` with a fresh random salt and nonce, binding `context`
/// (which must be given again to [`SealedBackup::open`]).
pub fn seal(
    secret: &[u8],
    password: &[u8],
    params: ScryptParams,
    context: &[u8],
) -> Result<SealedBackup, BackupError> {
    if secret.len() > MAX_SECRET_LEN {
        return Err(BackupError::SecretTooLong(secret.len()));
    }
    let mut backup = SealedBackup {
        params,
        salt: crypto::random_array()?,
        nonce: crypto::random_array()?,
        ciphertext: Vec::new(),
    };
    let key = params.derive_key(password, &backup.salt)?;
    backup.ciphertext = crypto::aes256gcm_seal(&key, &backup.nonce, &backup.aad(context), secret)?;
    Ok(backup)
}

impl SealedBackup {
    /// Derives the key from `password` and decrypts. The result is zeroized on drop.
    pub fn open(&self, password: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        let key = self.params.derive_key(password, &self.salt)?;
        crypto::aes256gcm_open(&key, &self.nonce, &self.aad(context), &self.ciphertext).map_err(
            |e| match e {
                CryptoError::Decrypt => BackupError::WrongPasswordOrCorrupt,
                other => BackupError::Crypto(other),
            },
        )
    }

    /// The scrypt parameters stored in the blob.
    pub fn params(&self) -> ScryptParams {
        self.params
    }

    /// The encoding described in the module documentation.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses an untrusted blob. Checks the size, magic, version and scrypt parameters; it
    /// runs no scrypt, so hostile parameters cost nothing. Authenticity is checked by
    /// [`SealedBackup::open`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BackupError> {
        if bytes.len() > MAX_BACKUP_LEN {
            return Err(BackupError::TooLong {
                len: bytes.len(),
                max: MAX_BACKUP_LEN,
            });
        }
        let truncated = BackupError::Truncated(bytes.len());
        let (header, ciphertext) = bytes.split_at_checked(HEADER_LEN).ok_or(truncated)?;
        if ciphertext.len() < AEAD_TAG_LEN {
            return Err(truncated);
        }
        let (magic, rest) = header.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(BackupError::BadMagic);
        }
        if rest[0] != VERSION {
            return Err(BackupError::UnsupportedVersion(rest[0]));
        }
        let be32 = |b: &[u8]| b.try_into().map(u32::from_be_bytes).map_err(|_| truncated);
        let params = ScryptParams::new(rest[1], be32(&rest[2..6])?, be32(&rest[6..10])?)?;
        let (salt, nonce) = rest[10..].split_at(SALT_LEN);
        Ok(Self {
            params,
            salt: salt.try_into().map_err(|_| truncated)?,
            nonce: nonce.try_into().map_err(|_| truncated)?,
            ciphertext: ciphertext.to_vec(),
        })
    }

    fn header(&self) -> Vec<u8> {
        let (log_n, r, p) = (self.params.log_n, self.params.r, self.params.p);
        let fields: [&[u8]; 6] = [
            MAGIC,
            &[VERSION, log_n],
            &r.to_be_bytes(),
            &p.to_be_bytes(),
            &self.salt,
            &self.nonce,
        ];
        fields.concat()
    }

    fn aad(&self, context: &[u8]) -> Vec<u8> {
        [&self.header(), context].concat()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn fast() -> ScryptParams {
        ScryptParams::new(10, 1, 1).unwrap()
    }

    #[test]
    fn roundtrip_through_bytes() {
        let sealed = seal(b"root key", b"pw", fast(), b"alice").unwrap();
        let bytes = sealed.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 8 + AEAD_TAG_LEN);
        let parsed = SealedBackup::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!(&parsed.open(b"pw", b"alice").unwrap()[..], b"root key");
    }

    #[test]
    fn wrong_password_or_context_fails() {
        let sealed = seal(b"root key", b"pw", fast(), b"alice").unwrap();
        assert_eq!(
            sealed.open(b"pW", b"alice"),
            Err(BackupError::WrongPasswordOrCorrupt)
        );
        assert_eq!(
            sealed.open(b"pw", b"mallory"),
            Err(BackupError::WrongPasswordOrCorrupt)
        );
        assert_eq!(
            sealed.open(b"pw", b""),
            Err(BackupError::WrongPasswordOrCorrupt)
        );
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let bytes = seal(b"k", b"pw", fast(), b"ctx").unwrap().to_bytes();
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let opened = SealedBackup::from_bytes(&bad).and_then(|b| b.open(b"pw", b"ctx"));
            assert!(opened.is_err(), "flip of bit {i} was accepted");
        }
    }

    #[test]
    fn truncation_and_oversize_are_rejected() {
        let bytes = seal(b"k", b"pw", fast(), b"").unwrap().to_bytes();
        for len in 0..HEADER_LEN + AEAD_TAG_LEN {
            assert_eq!(
                SealedBackup::from_bytes(&bytes[..len]),
                Err(BackupError::Truncated(len))
            );
        }
        // One byte short of the full blob still parses, but cannot decrypt.
        let short = SealedBackup::from_bytes(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(
            short.open(b"pw", b""),
            Err(BackupError::WrongPasswordOrCorrupt)
        );
        let huge = vec![0u8; MAX_BACKUP_LEN + 1];
        assert!(matches!(
            SealedBackup::from_bytes(&huge),
            Err(BackupError::TooLong { .. })
        ));
        let secret = vec![0u8; MAX_SECRET_LEN + 1];
        assert_eq!(
            seal(&secret, b"pw", fast(), b""),
            Err(BackupError::SecretTooLong(MAX_SECRET_LEN + 1))
        );
        let largest = seal(&secret[1..], b"pw", fast(), b"").unwrap().to_bytes();
        assert_eq!(largest.len(), MAX_BACKUP_LEN);
        assert!(SealedBackup::from_bytes(&largest).is_ok());
    }

    #[test]
    fn bad_magic_and_version() {
        let mut bytes = seal(b"k", b"pw", fast(), b"").unwrap().to_bytes();
        bytes[7] = 2;
        assert_eq!(
            SealedBackup::from_bytes(&bytes),
            Err(BackupError::UnsupportedVersion(2))
        );
        bytes[0] = b'X';
        assert_eq!(SealedBackup::from_bytes(&bytes), Err(BackupError::BadMagic));
    }

    #[test]
    fn hostile_params_are_rejected_before_scrypt() {
        let good = seal(b"k", b"pw", fast(), b"").unwrap().to_bytes();
        let with = |log_n: u8, r: u32, p: u32| {
            let mut b = good.clone();
            b[8] = log_n;
            b[9..13].copy_from_slice(&r.to_be_bytes());
            b[13..17].copy_from_slice(&p.to_be_bytes());
            SealedBackup::from_bytes(&b)
        };
        for (log_n, r, p) in [
            (255, 8, 1),
            (63, 8, 1),
            (23, 1, 1),
            (9, 8, 1),
            (21, 8, 1), // 2 GiB
            (19, 8, 1), // 512 MiB
            (20, 16, 1),
            (18, 8, 3), // work 2^23
            (10, u32::MAX, 1),
            (10, 1, u32::MAX),
            (10, u32::MAX, u32::MAX),
            (10, 8, 9), // r * p = 72
            (22, 1, 8), // work 2^25
            (10, 0, 1),
            (10, 8, 0),
        ] {
            assert_eq!(
                with(log_n, r, p),
                Err(BackupError::BadParams { log_n, r, p })
            );
        }
        assert!(with(18, 8, 1).is_ok()); // exactly 256 MiB
        assert!(with(20, 2, 1).is_ok()); // 256 MiB
        assert!(with(17, 8, 4).is_ok()); // work exactly 2^22
    }

    #[test]
    fn default_params_are_stored_in_the_blob() {
        let d = ScryptParams::default();
        assert_eq!((d.log_n(), d.r(), d.p()), (17, 8, 1));
        assert_eq!(ScryptParams::new(17, 8, 1), Ok(d));
        let bytes = seal(b"k", b"pw", d, b"").unwrap().to_bytes();
        assert_eq!(
            &bytes[..17],
            b"SOTTOBK\x01\x11\x00\x00\x00\x08\x00\x00\x00\x01"
        );
        assert_eq!(SealedBackup::from_bytes(&bytes).unwrap().params(), d);
    }

    #[test]
    fn debug_shows_no_bytes() {
        let sealed = seal(b"secret", b"pw", fast(), b"").unwrap();
        assert_eq!(
            format!("{sealed:?}"),
            "SealedBackup { params: ScryptParams { log_n: 10, r: 1, p: 1 }, ciphertext_len: 22, .. }"
        );
    }
}
