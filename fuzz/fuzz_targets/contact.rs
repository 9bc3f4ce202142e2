//! Contact discovery: `normalize_phone`, `normalize_email` and `contact_hash`. Input: one
//! byte giving the salt length (mod 48), the salt, then the identifier (UTF-8, lossily).
//! Normalisation must be idempotent and produce the documented shapes, and the hash must
//! depend only on the normalised form.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sotto_core::discovery::{self, DiscoveryError};

fuzz_target!(|data: &[u8]| {
    let Some((&salt_len, rest)) = data.split_first() else {
        return;
    };
    let (salt, id) = rest.split_at((usize::from(salt_len) % 48).min(rest.len()));
    let raw = String::from_utf8_lossy(id);

    let phone = discovery::normalize_phone(&raw);
    if let Ok(p) = &phone {
        let digits = p.strip_prefix('+').expect("E.164 starts with +");
        assert!((8..=15).contains(&digits.len()), "{p:?}");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
        assert_eq!(
            discovery::normalize_phone(p).as_ref(),
            Ok(p),
            "not idempotent"
        );
    }
    let email = discovery::normalize_email(&raw);
    if let Ok(e) = &email {
        assert!(e.len() <= discovery::MAX_EMAIL_LEN);
        assert_eq!(e.matches('@').count(), 1);
        assert_eq!(
            discovery::normalize_email(e).as_ref(),
            Ok(e),
            "email normalisation not idempotent for {}",
            common::hex(id)
        );
    }

    let hash = discovery::contact_hash(&raw, salt);
    if salt.len() < discovery::MIN_SALT_LEN {
        assert_eq!(hash, Err(DiscoveryError::SaltLength(salt.len())));
        return;
    }
    let normalised = if raw.contains('@') { email } else { phone };
    match (hash, normalised) {
        (Ok(h), Ok(n)) => assert_eq!(discovery::contact_hash(&n, salt), Ok(h)),
        (Err(e), Err(n)) => assert_eq!(e, n),
        (h, n) => panic!("hash {h:?} disagrees with normalisation {n:?}"),
    }
});
