//! Decoding untrusted bytes into Sotto's wire structures.
//!
//! All Sotto structures use the TLS presentation language encoding of RFC 9420 §2.1
//! (through `mls-rs-codec`): big-endian integers, variable-length vectors with a QUIC-style
//! varint length prefix. [`decode_exact`] is the only entry point for bytes from the
//! network or disk: it enforces a size limit before parsing and refuses trailing bytes.

use mls_rs_codec::{MlsDecode, MlsEncode};

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the structure may ever be.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Length of the input.
        len: usize,
        /// The limit for this structure.
        max: usize,
    },
    /// The input is not a valid encoding of the structure.
    #[error("malformed encoding")]
    Malformed,
    /// A valid structure was followed by extra bytes.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// The structure announces a version this implementation does not know.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
}

/// Decodes a versioned structure whose first byte is its version: refuses any version but
/// `version` before parsing the rest (a future layout is reported as unsupported, not as
/// malformed), then decodes it with [`decode_canonical`].
pub fn decode_versioned<T: MlsDecode + MlsEncode>(
    bytes: &[u8],
    max_len: usize,
    version: u8,
) -> Result<T, DecodeError> {
    match bytes.first() {
        Some(v) if *v != version => Err(DecodeError::UnsupportedVersion(*v)),
        _ => decode_canonical(bytes, max_len),
    }
}

/// Like [`decode_exact`], and also refuses non-canonical encodings (e.g. a boolean byte
/// other than 0 or 1, or a length prefix longer than needed): re-encoding the value must
/// give back exactly `bytes`, so every value has one encoding.
pub fn decode_canonical<T: MlsDecode + MlsEncode>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    let value: T = decode_exact(bytes, max_len)?;
    // The copy may be plaintext (message content): wipe it after comparing.
    match value.mls_encode_to_vec().map(zeroize::Zeroizing::new) {
        Ok(again) if again.as_slice() == bytes => Ok(value),
        _ => Err(DecodeError::Malformed),
    }
}

/// Decodes one `T` that must fill `bytes` exactly, refusing inputs over `max_len` bytes.
pub fn decode_exact<T: MlsDecode>(bytes: &[u8], max_len: usize) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLong {
            len: bytes.len(),
            max: max_len,
        });
    }
    let mut reader = bytes;
    let value = T::mls_decode(&mut reader).map_err(|_| DecodeError::Malformed)?;
    if !reader.is_empty() {
        return Err(DecodeError::TrailingBytes(reader.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_trailing_bytes() {
        assert_eq!(decode_exact::<u16>(&[0, 1], 2), Ok(1));
        assert_eq!(
            decode_exact::<u16>(&[0, 1, 2], 2),
            Err(DecodeError::TooLong { len: 3, max: 2 })
        );
        assert_eq!(
            decode_exact::<u16>(&[0, 1, 2], 8),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(decode_exact::<u16>(&[0], 8), Err(DecodeError::Malformed));
    }

    #[test]
    fn canonical_and_versioned() {
        // A boolean must be 0 or 1.
        assert_eq!(decode_canonical::<bool>(&[1], 1), Ok(true));
        assert_eq!(
            decode_canonical::<bool>(&[2], 1),
            Err(DecodeError::Malformed)
        );
        // A vector length must use the shortest varint (here 1 byte, not 2).
        assert_eq!(decode_canonical::<Vec<u8>>(&[0x01, 0x07], 8), Ok(vec![7]));
        assert_eq!(
            decode_canonical::<Vec<u8>>(&[0x40, 0x01, 0x07], 8),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            decode_versioned::<(u8, u8)>(&[2, 0], 8, 1),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert_eq!(decode_versioned::<(u8, u8)>(&[1, 0], 8, 1), Ok((1, 0)));
    }
}
