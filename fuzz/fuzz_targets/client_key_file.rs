//! The key file `profile.key` (`Vault::open`, scrypt `N = 2^10`): first byte even, edits
//! of a real key file; odd, raw bytes. Only the unaltered file opens with the passphrase.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::client::check_key_file(data);
});
