//! The Sotto policy extension: who manages a conversation and its ephemerality policy.
//!
//! The policy lives in the MLS group context, so every member holds the same copy (MLS
//! confirms agreement on the group context at every epoch) and it can change only through
//! a commit, signed by its committer, that every member checks with
//! [`crate::rules::SottoMlsRules`]: only a manager may change it.

use mls_rs_codec::{MlsDecode, MlsEncode, MlsSize};
use mls_rs_core::extension::{ExtensionList, ExtensionType, MlsCodecExtension};

use crate::codec::{decode_versioned, DecodeError};
use crate::identity::RootFingerprint;

/// The group-context extension type of the Sotto policy (private-use range of RFC 9420).
pub const POLICY_EXTENSION: ExtensionType = ExtensionType::new(0xF5D1);
/// Version of the policy encoding produced by this library.
pub const POLICY_VERSION: u8 = 1;
/// Most managers a conversation may have.
pub const MAX_MANAGERS: usize = 64;
/// Largest encoded policy accepted.
pub const MAX_POLICY_LEN: usize = 4096;
/// Longest time-to-live any policy may allow: 365 days, in seconds.
pub const MAX_TTL_SECONDS: u32 = 365 * 24 * 3600;

/// Why a policy, or a message against a policy, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The group context has no Sotto policy extension.
    #[error("the conversation has no Sotto policy")]
    Missing,
    /// The extension could not be decoded.
    #[error("the conversation's policy is malformed")]
    Malformed,
    /// The extension has a version this library does not know.
    #[error("unsupported policy version {0}")]
    UnsupportedVersion(u8),
    /// No managers, too many, or duplicates.
    #[error("a policy needs 1 to 64 distinct managers")]
    BadManagers,
    /// The maximum TTL is zero or above [`MAX_TTL_SECONDS`].
    #[error("a policy's maximum time-to-live must be between 1 second and 365 days")]
    BadMaxTtl,
    /// A message's TTL is zero or above the policy's maximum.
    #[error("message time-to-live of {ttl} s is outside the conversation's limit of 1 to {max} s")]
    TtlOutOfRange {
        /// The message's TTL, in seconds.
        ttl: u32,
        /// The policy's maximum, in seconds.
        max: u32,
    },
    /// The policy requires burn-on-read and the message is not.
    #[error("this conversation requires burn-on-read messages")]
    BurnOnReadRequired,
}

/// Whether messages must be deleted once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
#[repr(u8)]
pub enum BurnOnRead {
    /// Each sender chooses per message.
    Allowed = 1,
    /// Every message must be burn-on-read.
    Required = 2,
}

/// The policy of a conversation. Construct with [`Policy::new`], which validates.
#[derive(Debug, Clone, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
pub struct Policy {
    version: u8,
    managers: Vec<RootFingerprint>,
    max_ttl_seconds: u32,
    burn_on_read: BurnOnRead,
}

impl MlsCodecExtension for Policy {
    fn extension_type() -> ExtensionType {
        POLICY_EXTENSION
    }
}

impl Policy {
    /// A validated policy. Managers are kept sorted and must be distinct.
    pub fn new(
        managers: Vec<RootFingerprint>,
        max_ttl_seconds: u32,
        burn_on_read: BurnOnRead,
    ) -> Result<Self, PolicyError> {
        let mut managers = managers;
        managers.sort();
        let policy = Self {
            version: POLICY_VERSION,
            managers,
            max_ttl_seconds,
            burn_on_read,
        };
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.version != POLICY_VERSION {
            return Err(PolicyError::UnsupportedVersion(self.version));
        }
        let sorted_distinct = self.managers.windows(2).all(|w| w[0] < w[1]);
        if self.managers.is_empty() || self.managers.len() > MAX_MANAGERS || !sorted_distinct {
            return Err(PolicyError::BadManagers);
        }
        if self.max_ttl_seconds == 0 || self.max_ttl_seconds > MAX_TTL_SECONDS {
            return Err(PolicyError::BadMaxTtl);
        }
        Ok(())
    }

    /// Reads and validates the policy from a group context's extensions.
    pub fn from_extensions(extensions: &ExtensionList) -> Result<Self, PolicyError> {
        let extension = extensions
            .get(POLICY_EXTENSION)
            .ok_or(PolicyError::Missing)?;
        let policy: Self =
            decode_versioned(&extension.extension_data, MAX_POLICY_LEN, POLICY_VERSION).map_err(
                |e| match e {
                    DecodeError::UnsupportedVersion(v) => PolicyError::UnsupportedVersion(v),
                    _ => PolicyError::Malformed,
                },
            )?;
        policy.validate()?;
        Ok(policy)
    }

    /// The extension list holding this policy, for creating a conversation.
    pub fn to_extensions(&self) -> Result<ExtensionList, PolicyError> {
        let mut list = ExtensionList::new();
        list.set_from(self.clone())
            .map_err(|_| PolicyError::Malformed)?;
        Ok(list)
    }

    /// The managers' root-key fingerprints, sorted.
    pub fn managers(&self) -> &[RootFingerprint] {
        &self.managers
    }

    /// True if the user with this root-key fingerprint manages the conversation.
    pub fn is_manager(&self, user: &RootFingerprint) -> bool {
        self.managers.binary_search(user).is_ok()
    }

    /// The longest time-to-live a message may have, in seconds.
    pub fn max_ttl_seconds(&self) -> u32 {
        self.max_ttl_seconds
    }

    /// The burn-on-read rule.
    pub fn burn_on_read(&self) -> BurnOnRead {
        self.burn_on_read
    }

    /// Checks a message's TTL and burn-on-read flag against the policy.
    pub fn check_message(&self, ttl_seconds: u32, burn_on_read: bool) -> Result<(), PolicyError> {
        if ttl_seconds == 0 || ttl_seconds > self.max_ttl_seconds {
            return Err(PolicyError::TtlOutOfRange {
                ttl: ttl_seconds,
                max: self.max_ttl_seconds,
            });
        }
        if self.burn_on_read == BurnOnRead::Required && !burn_on_read {
            return Err(PolicyError::BurnOnReadRequired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fp(b: u8) -> RootFingerprint {
        RootFingerprint([b; 32])
    }

    #[test]
    fn validates_managers_and_ttl() {
        assert_eq!(
            Policy::new(vec![], 60, BurnOnRead::Allowed),
            Err(PolicyError::BadManagers)
        );
        assert_eq!(
            Policy::new(vec![fp(1), fp(1)], 60, BurnOnRead::Allowed),
            Err(PolicyError::BadManagers)
        );
        assert_eq!(
            Policy::new(vec![fp(1)], 0, BurnOnRead::Allowed),
            Err(PolicyError::BadMaxTtl)
        );
        assert_eq!(
            Policy::new(vec![fp(1)], MAX_TTL_SECONDS + 1, BurnOnRead::Allowed),
            Err(PolicyError::BadMaxTtl)
        );
        let p = Policy::new(vec![fp(2), fp(1)], 60, BurnOnRead::Allowed).unwrap();
        assert!(p.is_manager(&fp(1)) && p.is_manager(&fp(2)) && !p.is_manager(&fp(3)));
    }

    #[test]
    fn checks_messages() {
        let p = Policy::new(vec![fp(1)], 60, BurnOnRead::Required).unwrap();
        assert_eq!(p.check_message(60, true), Ok(()));
        assert_eq!(
            p.check_message(61, true),
            Err(PolicyError::TtlOutOfRange { ttl: 61, max: 60 })
        );
        assert_eq!(
            p.check_message(0, true),
            Err(PolicyError::TtlOutOfRange { ttl: 0, max: 60 })
        );
        assert_eq!(
            p.check_message(10, false),
            Err(PolicyError::BurnOnReadRequired)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_valid_policy_roundtrips(
            managers in proptest::collection::btree_set(
                proptest::array::uniform32(proptest::num::u8::ANY), 1..=MAX_MANAGERS),
            ttl in 1..=MAX_TTL_SECONDS,
            required in proptest::bool::ANY,
        ) {
            let managers: Vec<RootFingerprint> = managers.into_iter().map(RootFingerprint).collect();
            let burn = if required { BurnOnRead::Required } else { BurnOnRead::Allowed };
            let p = Policy::new(managers, ttl, burn).unwrap();
            proptest::prop_assert_eq!(Policy::from_extensions(&p.to_extensions().unwrap()).unwrap(), p);
        }
    }

    #[test]
    fn roundtrips_through_extensions_and_rejects_missing() {
        let p = Policy::new(vec![fp(1)], 60, BurnOnRead::Allowed).unwrap();
        assert_eq!(Policy::from_extensions(&p.to_extensions().unwrap()), Ok(p));
        assert_eq!(
            Policy::from_extensions(&ExtensionList::new()),
            Err(PolicyError::Missing)
        );
    }
}
