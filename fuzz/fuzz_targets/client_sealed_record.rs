//! A sealed record of the profile store (`Vault::open_record`): first byte even, edits
//! of a real sealed record; odd, raw bytes. Only the unaltered record opens, and only for
//! its own row.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::client::check_sealed_record(data);
});
