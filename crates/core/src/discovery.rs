//! Contact-discovery hashes of phone numbers and email addresses.
//!
//! # Normalisation
//!
//! * **Phone** (to E.164): remove whitespace and the characters `- . ( )`; replace a leading
//!   `00` with `+`; the result must be `+` followed by 8 to 15 ASCII digits, the first not `0`.
//! * **Email**: trim surrounding whitespace and lowercase (Unicode lowercase); the result must
//!   contain exactly one `@` with a non-empty part on each side, the domain must contain a
//!   `.`, and it must be at most 254 bytes of UTF-8.
//!
//! A string containing `@` is taken as an email address, anything else as a phone number.
//!
//! # Hash (version 1)
//!
//! With `salt` the deployment salt (at least 16 bytes; its length as a u32, big-endian),
//! `kind` the byte `0x01` for a phone number or `0x02` for an email address, and `id` the
//! normalised UTF-8 identifier:
//!
//! ```text
//! h_0     = SHA-256("sotto-contact-v1" || len(salt) || salt || kind || id)
//! h_{i+1} = SHA-256(h_i || salt)                        for i = 0 .. 4998
//! hash    = h_4999                                      (5000 SHA-256 calls in all)
//! ```
//!
//! Errors never contain the identifier, so they can be logged.

use crate::crypto;

/// Number of SHA-256 invocations per contact hash.
pub const CONTACT_HASH_ITERATIONS: u32 = 5000;
/// Shortest deployment salt accepted, in bytes.
pub const MIN_SALT_LEN: usize = 16;
/// Longest normalised email address accepted, in bytes.
pub const MAX_EMAIL_LEN: usize = 254;
const DOMAIN: &[u8] = b"sotto-contact-v1";

/// Why an identifier could not be normalised or hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The phone number has no international prefix (`+` or `00`).
    #[error("phone number must start with + or 00 and a country code")]
    PhoneNotInternational,
    /// The phone number contains a character other than digits and separators.
    #[error("phone number contains an invalid character")]
    PhoneCharacter,
    /// The phone number does not have 8 to 15 digits.
    #[error("phone number has {0} digits, expected 8 to 15")]
    PhoneLength(usize),
    /// The country code starts with 0.
    #[error("phone number country code starts with 0")]
    PhoneLeadingZero,
    /// The email address does not contain exactly one `@`.
    #[error("email address must contain exactly one @")]
    EmailAt,
    /// The part before or after the `@` is empty.
    #[error("email address has an empty local part or domain")]
    EmailEmptyPart,
    /// The domain has no `.`.
    #[error("email domain contains no dot")]
    EmailDomain,
    /// The normalised address is longer than [`MAX_EMAIL_LEN`] bytes.
    #[error("email address of {0} bytes exceeds {MAX_EMAIL_LEN} bytes")]
    EmailLength(usize),
    /// The deployment salt is shorter than [`MIN_SALT_LEN`] bytes (or absurdly long).
    #[error("deployment salt of {0} bytes is invalid (at least {MIN_SALT_LEN} bytes)")]
    SaltLength(usize),
}

/// A contact identifier as entered, before normalisation.
#[derive(Clone, PartialEq, Eq)]
pub enum Identifier {
    /// A phone number in international form.
    Phone(String),
    /// An email address.
    Email(String),
}

impl core::fmt::Debug for Identifier {
    /// Identifiers are personal data: the value is not shown.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Phone(_) => f.write_str("Phone(<redacted>)"),
            Self::Email(_) => f.write_str("Email(<redacted>)"),
        }
    }
}

impl Identifier {
    /// Classifies `raw`: an email address if it contains `@`, otherwise a phone number.
    pub fn detect(raw: &str) -> Self {
        if raw.contains('@') {
            Self::Email(raw.to_owned())
        } else {
            Self::Phone(raw.to_owned())
        }
    }

    /// The normalised form described in the module documentation.
    pub fn normalized(&self) -> Result<String, DiscoveryError> {
        match self {
            Self::Phone(raw) => normalize_phone(raw),
            Self::Email(raw) => normalize_email(raw),
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Self::Phone(_) => 1,
            Self::Email(_) => 2,
        }
    }
}

/// Normalises a phone number to E.164 (`+` and 8 to 15 digits).
pub fn normalize_phone(raw: &str) -> Result<String, DiscoveryError> {
    let kept: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    let digits = match (kept.strip_prefix('+'), kept.strip_prefix("00")) {
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => return Err(DiscoveryError::PhoneNotInternational),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DiscoveryError::PhoneCharacter);
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(DiscoveryError::PhoneLength(digits.len()));
    }
    if digits.starts_with('0') {
        return Err(DiscoveryError::PhoneLeadingZero);
    }
    Ok(format!("+{digits}"))
}

/// Normalises an email address (trimmed, lowercased, minimally checked).
pub fn normalize_email(raw: &str) -> Result<String, DiscoveryError> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@').ok_or(DiscoveryError::EmailAt)?;
    if domain.contains('@') {
        return Err(DiscoveryError::EmailAt);
    }
    if local.is_empty() || domain.is_empty() {
        return Err(DiscoveryError::EmailEmptyPart);
    }
    if !domain.contains('.') {
        return Err(DiscoveryError::EmailDomain);
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(DiscoveryError::EmailLength(email.len()));
    }
    Ok(email)
}

/// The contact hash of `identifier`, classified by [`Identifier::detect`].
pub fn contact_hash(identifier: &str, deployment_salt: &[u8]) -> Result<[u8; 32], DiscoveryError> {
    contact_hash_of(&Identifier::detect(identifier), deployment_salt)
}

/// The contact hash of an already classified `identifier`.
pub fn contact_hash_of(
    identifier: &Identifier,
    deployment_salt: &[u8],
) -> Result<[u8; 32], DiscoveryError> {
    let bad_salt = DiscoveryError::SaltLength(deployment_salt.len());
    if deployment_salt.len() < MIN_SALT_LEN {
        return Err(bad_salt);
    }
    let salt_len = u32::try_from(deployment_salt.len()).map_err(|_| bad_salt)?;
    let normalized = identifier.normalized()?;
    let mut h = crypto::sha256_parts(&[
        DOMAIN,
        &salt_len.to_be_bytes(),
        deployment_salt,
        &[identifier.kind()],
        normalized.as_bytes(),
    ]);
    for _ in 1..CONTACT_HASH_ITERATIONS {
        h = crypto::sha256_parts(&[&h, deployment_salt]);
    }
    Ok(h)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SALT: &[u8] = b"0123456789abcdef";

    #[test]
    fn normalisation_table() {
        for (raw, normal) in [
            ("+44 20 7946 0958", "+442079460958"),
            ("0044-20-7946-0958", "+442079460958"),
            ("+1 (555) 010.0199", "+15550100199"),
            ("\t+4915123456789\n", "+4915123456789"),
            ("Alice@Example.ORG ", "alice@example.org"),
            ("  ÉLODIE@exemple.fr", "élodie@exemple.fr"),
        ] {
            assert_eq!(
                Identifier::detect(raw).normalized().as_deref(),
                Ok(normal),
                "{raw}"
            );
        }
        let h = |s| contact_hash(s, SALT).unwrap();
        assert_eq!(h("+44 20 7946 0958"), h("0044-20-7946-0958"));
        assert_eq!(h("Alice@Example.ORG "), h("alice@example.org"));
    }

    #[test]
    fn rejections() {
        use DiscoveryError::*;
        for (raw, err) in [
            ("02079460958", PhoneNotInternational),
            ("", PhoneNotInternational),
            ("+44 20 7946 095x", PhoneCharacter),
            ("++442079460958", PhoneCharacter),
            ("+1234567", PhoneLength(7)),
            ("+1234567890123456", PhoneLength(16)),
            ("+0442079460958", PhoneLeadingZero),
            ("000442079460958", PhoneLeadingZero),
            ("a@b@c.org", EmailAt),
            ("@example.org", EmailEmptyPart),
            ("alice@", EmailEmptyPart),
            ("alice@localhost", EmailDomain),
        ] {
            assert_eq!(Identifier::detect(raw).normalized(), Err(err), "{raw:?}");
        }
        let long = format!("{}@example.org", "a".repeat(243));
        assert_eq!(normalize_email(&long), Err(EmailLength(255)));
        assert!(normalize_email(&long[1..]).is_ok());
        assert_eq!(
            contact_hash("+442079460958", &SALT[1..]),
            Err(SaltLength(15))
        );
    }

    #[test]
    fn salt_and_identifier_matter() {
        let a = contact_hash("+442079460958", SALT).unwrap();
        assert_ne!(
            a,
            contact_hash("+442079460958", b"0123456789abcdeF").unwrap()
        );
        assert_ne!(a, contact_hash("+442079460959", SALT).unwrap());
        let typed = Identifier::Phone("+44 20 7946 0958".into());
        assert_eq!(a, contact_hash_of(&typed, SALT).unwrap());
    }

    #[test]
    fn debug_is_redacted() {
        let id = Identifier::detect("alice@example.org");
        assert_eq!(format!("{id:?}"), "Email(<redacted>)");
        assert_eq!(
            format!("{:?}", Identifier::detect("+1")),
            "Phone(<redacted>)"
        );
    }
}
