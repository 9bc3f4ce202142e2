//! The records of the profile store, once opened: the JSON of each model record
//! (`decode_record`) and the KeyPackage secrets (`KeyPackageData`). The first byte picks the
//! type (mod 6); no panic, a `ClientError::Store` or a value that round-trips.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, body)) = data.split_first() {
        common::client::check_record(selector, body);
    }
});
