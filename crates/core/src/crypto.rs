//! The one cryptographic backend of Sotto.
//!
//! Every primitive Sotto itself uses — ECDSA P-521/SHA-512 signatures, AES-256-GCM, SHA-256,
//! SHA-512, HKDF-SHA-512, scrypt and the random number generator — is reached through this
//! module, and this module reaches all of them through AWS-LC (`aws-lc-rs`, and `aws-lc-sys`
//! for scrypt, which `aws-lc-rs` does not wrap). MLS uses the same library through
//! `mls-rs-crypto-awslc`. Swapping the backend means rewriting this file only. The one
//! exception is OPAQUE password login ([`crate::password`]): AWS-LC has no ristretto255 or
//! OPRF, so `opaque-ke` brings its own group arithmetic and hashes (it still uses scrypt
//! and the random number generator from here).
//!
//! Nothing here is hand-written cryptography: each function is a thin, typed wrapper.

use aws_lc_rs::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM},
    digest, hkdf, hmac,
    rand::{SecureRandom, SystemRandom},
    signature::{
        EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P521_SHA512_ASN1,
        ECDSA_P521_SHA512_ASN1_SIGNING,
    },
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length in bytes of an uncompressed SEC1 P-521 public key (`0x04 || X || Y`).
pub const P521_PUBLIC_KEY_LEN: usize = 133;
/// Upper bound on a DER-encoded ECDSA P-521 signature.
pub const P521_MAX_SIGNATURE_LEN: usize = 139;
/// Length of an AES-256-GCM key.
pub const AEAD_KEY_LEN: usize = 32;
/// Length of an AES-256-GCM nonce.
pub const AEAD_NONCE_LEN: usize = 12;
/// Length of an AES-256-GCM authentication tag.
pub const AEAD_TAG_LEN: usize = 16;

/// What went wrong inside the backend. Deliberately coarse: the backend's reasons are not
/// passed on, so that no error can act as an oracle on secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The signature did not verify under the given public key.
    #[error("signature verification failed")]
    BadSignature,
    /// Authenticated decryption failed: wrong key, or the ciphertext was altered.
    #[error("authenticated decryption failed (wrong key or altered data)")]
    Decrypt,
    /// A key could not be parsed or generated.
    #[error("invalid or unusable key")]
    Key,
    /// The operating system's random number generator failed.
    #[error("random number generator failure")]
    Random,
    /// The key-derivation function refused its parameters (or ran out of memory).
    #[error("key derivation failed (parameters out of range)")]
    Kdf,
}

/// An ECDSA P-521 / SHA-512 signing key (used for user root keys).
///
/// The private key is kept by AWS-LC and as a PKCS#8 document that is zeroized on drop.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Generates a fresh key from the system random number generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P521_SHA512_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| CryptoError::Key)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads a key from a PKCS#8 (v1 or v2) document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P521_SHA512_ASN1_SIGNING, pkcs8)
            .map_err(|_| CryptoError::Key)?;
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
        })
    }

    /// The PKCS#8 encoding of the private key. Handle with care: it is the secret.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The uncompressed SEC1 encoding of the public key ([`P521_PUBLIC_KEY_LEN`] bytes).
    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// Signs `message` (ECDSA P-521, SHA-512, DER-encoded signature).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CryptoError::Key)
    }
}

/// Verifies a DER-encoded ECDSA P-521/SHA-512 `signature` over `message` under the
/// uncompressed SEC1 `public_key`. This is the only signature check Sotto itself performs.
pub fn verify_p521(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    UnparsedPublicKey::new(&ECDSA_P521_SHA512_ASN1, public_key)
        .verify(message, signature)
        .map_err(|_| CryptoError::BadSignature)
}

/// Fills `out` with bytes from the system random number generator.
pub fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| CryptoError::Random)
}

/// Returns `N` random bytes.
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// AES-256-GCM encryption; returns `ciphertext || tag`.
pub fn aes256gcm_seal(
    key: &[u8; AEAD_KEY_LEN],
    nonce: &[u8; AEAD_NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::Key)?);
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(*nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| CryptoError::Key)?;
    Ok(buf)
}

/// AES-256-GCM decryption of `ciphertext || tag`. The plaintext is zeroized on drop.
pub fn aes256gcm_open(
    key: &[u8; AEAD_KEY_LEN],
    nonce: &[u8; AEAD_NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::Key)?);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| CryptoError::Decrypt)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn digest_parts<const N: usize>(algorithm: &'static digest::Algorithm, parts: &[&[u8]]) -> [u8; N] {
    let mut ctx = digest::Context::new(algorithm);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    digest_parts(&digest::SHA256, &[data])
}

/// SHA-256 of the concatenation of `parts`, without copying them together.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    digest_parts(&digest::SHA256, parts)
}

/// SHA-512 of the concatenation of `parts`.
pub fn sha512_parts(parts: &[&[u8]]) -> [u8; 64] {
    digest_parts(&digest::SHA512, parts)
}

/// HMAC-SHA-256 of `data` under `key` (RFC 2104), e.g. a keyed index that hides the
/// value it was computed from.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA-512 (RFC 5869): extract with `salt`, expand with `info` into `out`.
pub fn hkdf_sha512(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let info = [info];
    hkdf::Salt::new(hkdf::HKDF_SHA512, salt)
        .extract(ikm)
        .expand(&info, OutLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::Kdf)
}

/// Upper bound on the memory scrypt may use here (2 GiB); larger parameters are refused.
pub const SCRYPT_MAX_MEMORY: usize = 2 << 30;

/// scrypt (RFC 7914) with cost `N = 2^log_n`, block size `r`, parallelism `p`.
///
/// Parameters whose memory use (`128 * N * r` bytes plus `128 * r * p`) would exceed
/// [`SCRYPT_MAX_MEMORY`] are refused by AWS-LC and reported as [`CryptoError::Kdf`].
pub fn scrypt(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
    out: &mut [u8],
) -> Result<(), CryptoError> {
    if log_n == 0 || log_n >= 64 || r == 0 || p == 0 {
        return Err(CryptoError::Kdf);
    }
    let n: u64 = 1u64 << log_n;
    // SAFETY: every pointer comes from a live Rust slice and is passed with that slice's
    // exact length; AWS-LC reads `password` and `salt` and writes exactly `out.len()` bytes
    // to `out`, and keeps none of the pointers after returning. `c_char` and `u8` have the
    // same size and alignment.
    #[allow(unsafe_code)]
    let ok = unsafe {
        aws_lc_sys::EVP_PBE_scrypt(
            password.as_ptr().cast(),
            password.len(),
            salt.as_ptr(),
            salt.len(),
            n,
            u64::from(r),
            u64::from(p),
            SCRYPT_MAX_MEMORY,
            out.as_mut_ptr(),
            out.len(),
        )
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(CryptoError::Kdf)
    }
}

/// Constant-time equality of two byte strings (the lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_tamper() -> Result<(), CryptoError> {
        let key = SigningKey::generate()?;
        let pk = key.public_key();
        assert_eq!(pk.len(), P521_PUBLIC_KEY_LEN);
        let sig = key.sign(b"hello")?;
        assert!(sig.len() <= P521_MAX_SIGNATURE_LEN);
        verify_p521(&pk, b"hello", &sig)?;
        assert_eq!(
            verify_p521(&pk, b"hellp", &sig),
            Err(CryptoError::BadSignature)
        );
        let reloaded = SigningKey::from_pkcs8(key.pkcs8())?;
        assert_eq!(reloaded.public_key(), pk);
        Ok(())
    }

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn aead_roundtrip_and_tamper() -> Result<(), CryptoError> {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let ct = aes256gcm_seal(&key, &nonce, b"aad", b"secret")?;
        assert_eq!(&aes256gcm_open(&key, &nonce, b"aad", &ct)?[..], b"secret");
        assert_eq!(
            aes256gcm_open(&key, &nonce, b"aaD", &ct),
            Err(CryptoError::Decrypt)
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            aes256gcm_open(&key, &nonce, b"aad", &bad),
            Err(CryptoError::Decrypt)
        );
        Ok(())
    }

    #[test]
    fn debug_of_signing_key_is_redacted() -> Result<(), CryptoError> {
        assert_eq!(
            format!("{:?}", SigningKey::generate()?),
            "SigningKey(<redacted>)"
        );
        Ok(())
    }

    #[test]
    fn hkdf_rfc5869_shape() -> Result<(), CryptoError> {
        let mut a = [0u8; 42];
        let mut b = [0u8; 42];
        hkdf_sha512(b"salt", b"ikm", b"info", &mut a)?;
        hkdf_sha512(b"salt", b"ikm", b"info2", &mut b)?;
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn scrypt_refuses_nonsense_parameters() {
        let mut out = [0u8; 32];
        assert_eq!(scrypt(b"p", b"s", 0, 8, 1, &mut out), Err(CryptoError::Kdf));
        assert_eq!(
            scrypt(b"p", b"s", 40, 8, 1, &mut out),
            Err(CryptoError::Kdf)
        );
    }
}
