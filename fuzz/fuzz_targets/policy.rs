//! `Policy::from_extensions` on an extension list holding the input under
//! `POLICY_EXTENSION`: no panic, typed errors, canonical encoding.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(policy) = common::check_policy(data) {
        let _ = policy.check_message(u32::MAX, false);
        let _ = policy.check_message(1, true);
    }
});
