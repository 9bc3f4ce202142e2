//! The profile's storage key: how it is sealed under the passphrase, and how records are
//! encrypted and indexed with it.
//!
//! A profile's key file holds a random 32-byte storage key sealed with scrypt and
//! AES-256-GCM under the passphrase ([`sotto_core::backup`], the same format as the
//! root-key backup, bound to its own context). From the storage key, HKDF-SHA-512 derives
//! a record key (AES-256-GCM, random nonce per record, the record's table and index bound
//! as associated data, so a record cannot be moved to another row) and an index key
//! (HMAC-SHA-256 of lookup values such as usernames, so that the database holds no
//! plaintext identifiers). Both keys are zeroized on drop.

use sotto_core::backup::{self, BackupError, ScryptParams, SealedBackup};
use sotto_core::crypto::{self, AEAD_NONCE_LEN};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{ClientError, Result};

const KEY_FILE_CONTEXT: &[u8] = b"sotto profile storage key v1";
const RECORD_KEY_INFO: &[u8] = b"sotto profile record key v1";
const INDEX_KEY_INFO: &[u8] = b"sotto profile index key v1";

/// The keys that protect one profile's records.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Vault {
    record_key: [u8; 32],
    index_key: [u8; 32],
}

impl core::fmt::Debug for Vault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Vault(<redacted>)")
    }
}

impl Vault {
    /// A new storage key, and its sealed form under `passphrase` for the key file.
    pub fn create(passphrase: &[u8], params: ScryptParams) -> Result<(Self, Vec<u8>)> {
        let storage_key = Zeroizing::new(crypto::random_array::<32>()?);
        let sealed = backup::seal(&storage_key[..], passphrase, params, KEY_FILE_CONTEXT)
            .map_err(ClientError::store)?;
        Ok((Self::derive(&storage_key[..])?, sealed.to_bytes()))
    }

    /// Opens a key file's contents with `passphrase`.
    pub fn open(key_file: &[u8], passphrase: &[u8]) -> Result<Self> {
        let sealed =
            SealedBackup::from_bytes(key_file).map_err(|_| ClientError::WrongPassphrase)?;
        let storage_key = sealed
            .open(passphrase, KEY_FILE_CONTEXT)
            .map_err(|e| match e {
                BackupError::WrongPasswordOrCorrupt => ClientError::WrongPassphrase,
                other => ClientError::store(other),
            })?;
        Self::derive(&storage_key)
    }

    /// Derives the record and index keys from the storage key.
    fn derive(storage_key: &[u8]) -> Result<Self> {
        let mut vault = Self {
            record_key: [0; 32],
            index_key: [0; 32],
        };
        crypto::hkdf_sha512(&[], storage_key, RECORD_KEY_INFO, &mut vault.record_key)?;
        crypto::hkdf_sha512(&[], storage_key, INDEX_KEY_INFO, &mut vault.index_key)?;
        Ok(vault)
    }

    /// Encrypts `plaintext` for the row identified by `aad` (nonce || ciphertext || tag).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce = crypto::random_array::<AEAD_NONCE_LEN>()?;
        let mut out = nonce.to_vec();
        out.extend(crypto::aes256gcm_seal(
            &self.record_key,
            &nonce,
            aad,
            plaintext,
        )?);
        Ok(out)
    }

    /// Decrypts a value sealed by [`seal`](Self::seal) for the same `aad`. A record that was
    /// altered, truncated or moved to another row is refused.
    pub fn open_record(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (nonce, ciphertext) = sealed
            .split_first_chunk::<AEAD_NONCE_LEN>()
            .ok_or_else(|| ClientError::Store("a stored record is truncated".into()))?;
        crypto::aes256gcm_open(&self.record_key, nonce, aad, ciphertext)
            .map_err(|_| ClientError::Store("a stored record failed its integrity check".into()))
    }

    /// The keyed index of a lookup value (an HMAC): equal values give equal indexes, and
    /// the index reveals nothing about the value without the key.
    pub fn index(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut data = Zeroizing::new(Vec::new());
        for part in parts {
            // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
            data.extend_from_slice(&(part.len() as u64).to_be_bytes());
            data.extend_from_slice(part);
        }
        crypto::hmac_sha256(&self.index_key, &data)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn quick() -> ScryptParams {
        ScryptParams::new(10, 8, 1).unwrap()
    }

    #[test]
    fn key_file_opens_only_with_its_passphrase() {
        let (vault, file) = Vault::create(b"right", quick()).unwrap();
        let sealed = vault.seal(b"row", b"secret").unwrap();
        let reopened = Vault::open(&file, b"right").unwrap();
        assert_eq!(&*reopened.open_record(b"row", &sealed).unwrap(), b"secret");
        assert!(matches!(
            Vault::open(&file, b"wrong"),
            Err(ClientError::WrongPassphrase)
        ));
        assert!(matches!(
            Vault::open(b"garbage", b"right"),
            Err(ClientError::WrongPassphrase)
        ));
    }

    #[test]
    fn records_are_bound_to_their_row_and_tamper_evident() {
        let (vault, _) = Vault::create(b"pw", quick()).unwrap();
        let sealed = vault.seal(b"row 1", b"text").unwrap();
        assert!(vault.open_record(b"row 2", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(vault.open_record(b"row 1", &flipped).is_err());
        assert!(vault.open_record(b"row 1", &sealed[..5]).is_err());
        assert_ne!(vault.index(&[b"ab", b"c"]), vault.index(&[b"a", b"bc"]));
        assert_eq!(format!("{vault:?}"), "Vault(<redacted>)");
    }
}
