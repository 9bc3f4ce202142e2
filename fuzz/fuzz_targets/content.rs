//! `Content::from_bytes`: no panic, typed errors, canonical encoding.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(content) = common::check_content(data) {
        // Derived values must not overflow either.
        let _ = content.expires_at_ms(common::NOW_MS);
        let _ = content.expires_at_ms(u64::MAX);
    }
});
