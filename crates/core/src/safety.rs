//! Safety numbers: the string two users compare to verify each other's root keys.
//!
//! # Derivation (version 1)
//!
//! For each user, with `root_pk` the uncompressed SEC1 P-521 root public key and `user_id`
//! the UTF-8 user id (lengths as u32, big-endian):
//!
//! ```text
//! h_0     = SHA-512(0x0001 || len(root_pk) || root_pk || len(user_id) || user_id)
//! h_{i+1} = SHA-512(h_i || root_pk)                     for i = 0 .. 5198
//! fingerprint = first 30 bytes of h_5199                (5200 SHA-512 calls in all)
//! ```
//!
//! The fingerprint is read as six 5-byte big-endian integers; each, reduced modulo 100000
//! and zero-padded, gives 5 decimal digits: 30 digits per user. The safety number is the two
//! users' 30-digit strings sorted (ASCII order) and concatenated, so both users see the same
//! 60 digits. It is shown as 12 groups of 5 digits. The QR code payload is the byte `0x01`
//! followed by the two 30-byte fingerprints in the same order as their digits.

use crate::crypto::{self, P521_PUBLIC_KEY_LEN};
use core::fmt::Write as _;

/// Number of SHA-512 invocations per fingerprint.
pub const ITERATIONS: u32 = 5200;
/// Length of a per-user fingerprint, in bytes.
pub const FINGERPRINT_LEN: usize = 30;
/// Length of a per-user half of the safety number, in digits.
const HALF_DIGITS: usize = 30;
/// The derivation version hashed into every fingerprint.
const FINGERPRINT_VERSION: u16 = 1;
/// The version byte that starts the QR payload.
const QR_VERSION: u8 = 1;
/// Longest user id accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 1024;

/// Why a safety number could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    /// A root key is not an uncompressed SEC1 P-521 point (133 bytes starting with `0x04`).
    #[error("root public key is not an uncompressed P-521 point")]
    RootKey,
    /// A user id is empty or longer than [`MAX_USER_ID_LEN`] bytes.
    #[error("user id is empty or longer than {MAX_USER_ID_LEN} bytes")]
    UserId,
}

/// A 60-digit safety number for a pair of users; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
    fingerprints: [[u8; FINGERPRINT_LEN]; 2],
}

/// Computes the safety number of users `a` and `b`. Swapping `a` and `b` gives the same
/// number.
pub fn safety_number(
    a_user: &str,
    a_root_pk: &[u8],
    b_user: &str,
    b_root_pk: &[u8],
) -> Result<SafetyNumber, SafetyError> {
    let a = fingerprint(a_user, a_root_pk)?;
    let b = fingerprint(b_user, b_root_pk)?;
    let mut halves = [(digits_of(&a), a), (digits_of(&b), b)];
    halves.sort();
    let [(d0, f0), (d1, f1)] = halves;
    Ok(SafetyNumber {
        digits: d0 + &d1,
        fingerprints: [f0, f1],
    })
}

impl SafetyNumber {
    /// The 60 digits, without spaces.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The payload for a QR code: `0x01`, then both fingerprints in the order of the digits.
    pub fn qr_payload(&self) -> Vec<u8> {
        [
            &[QR_VERSION][..],
            &self.fingerprints[0],
            &self.fingerprints[1],
        ]
        .concat()
    }

    /// Whether `other_text` (typically typed or read out by the user) is this number.
    /// Whitespace anywhere is ignored; the comparison is in constant time.
    pub fn matches(&self, other_text: &str) -> bool {
        let other: String = other_text.split_whitespace().collect();
        crypto::ct_eq(self.digits.as_bytes(), other.as_bytes())
    }
}

impl core::fmt::Display for SafetyNumber {
    /// Twelve groups of five digits separated by single spaces.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, digit) in self.digits.chars().enumerate() {
            if i > 0 && i % 5 == 0 {
                f.write_char(' ')?;
            }
            f.write_char(digit)?;
        }
        Ok(())
    }
}

fn fingerprint(user_id: &str, root_pk: &[u8]) -> Result<[u8; FINGERPRINT_LEN], SafetyError> {
    if root_pk.len() != P521_PUBLIC_KEY_LEN || root_pk.first() != Some(&0x04) {
        return Err(SafetyError::RootKey);
    }
    let id_len = u32::try_from(user_id.len()).map_err(|_| SafetyError::UserId)?;
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(SafetyError::UserId);
    }
    let pk_len = (P521_PUBLIC_KEY_LEN as u32).to_be_bytes();
    let mut h = crypto::sha512_parts(&[
        &FINGERPRINT_VERSION.to_be_bytes(),
        &pk_len,
        root_pk,
        &id_len.to_be_bytes(),
        user_id.as_bytes(),
    ]);
    for _ in 1..ITERATIONS {
        h = crypto::sha512_parts(&[&h, root_pk]);
    }
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&h[..FINGERPRINT_LEN]);
    Ok(out)
}

fn digits_of(fingerprint: &[u8; FINGERPRINT_LEN]) -> String {
    let mut digits = String::with_capacity(HALF_DIGITS);
    for chunk in fingerprint.chunks_exact(5) {
        let value = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        digits.push_str(&format!("{:05}", value % 100_000));
    }
    digits
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn key(fill: u8) -> Vec<u8> {
        let mut k = vec![fill; P521_PUBLIC_KEY_LEN];
        k[0] = 0x04;
        k
    }

    fn number(a: &str, ka: u8, b: &str, kb: u8) -> SafetyNumber {
        safety_number(a, &key(ka), b, &key(kb)).unwrap()
    }

    #[test]
    fn symmetric_and_deterministic() {
        let ab = number("alice", 1, "bob", 2);
        assert_eq!(ab, number("bob", 2, "alice", 1));
        assert_eq!(ab, number("alice", 1, "bob", 2));
    }

    #[test]
    fn changes_with_any_input() {
        let base = number("alice", 1, "bob", 2);
        for other in [
            number("alicf", 1, "bob", 2),
            number("alice", 3, "bob", 2),
            number("alice", 1, "bob2", 2),
            number("alice", 1, "bob", 3),
        ] {
            assert_ne!(base.digits(), other.digits());
            assert_ne!(base.qr_payload(), other.qr_payload());
        }
    }

    #[test]
    fn format() {
        let n = number("alice", 1, "bob", 2);
        assert_eq!(n.digits().len(), 60);
        assert!(n.digits().bytes().all(|b| b.is_ascii_digit()));
        let shown = n.to_string();
        assert_eq!(shown.len(), 71);
        assert_eq!(shown.split(' ').count(), 12);
        assert!(shown.split(' ').all(|g| g.len() == 5));
        assert_eq!(shown.replace(' ', ""), n.digits());
        let qr = n.qr_payload();
        assert_eq!((qr.len(), qr[0]), (61, 1));
        assert!(n.digits()[..30] <= n.digits()[30..]);
    }

    #[test]
    fn matches_ignores_whitespace_only() {
        let n = number("alice", 1, "bob", 2);
        assert!(n.matches(&n.to_string()));
        assert!(n.matches(&format!(" {}\n", n.digits())));
        let mut wrong = n.digits().to_string();
        wrong.replace_range(59.., if wrong.ends_with('0') { "1" } else { "0" });
        assert!(!n.matches(&wrong));
        assert!(!n.matches(&n.digits()[..59]));
        assert!(!n.matches(""));
    }

    #[test]
    fn rejects_bad_inputs() {
        let bad = |user: &str, pk: &[u8]| safety_number(user, pk, "bob", &key(2));
        assert_eq!(bad("alice", &key(1)[..132]), Err(SafetyError::RootKey));
        let mut compressed = key(1);
        compressed[0] = 0x02;
        assert_eq!(bad("alice", &compressed), Err(SafetyError::RootKey));
        assert_eq!(bad("", &key(1)), Err(SafetyError::UserId));
        let long = "x".repeat(MAX_USER_ID_LEN + 1);
        assert_eq!(bad(&long, &key(1)), Err(SafetyError::UserId));
    }
}
