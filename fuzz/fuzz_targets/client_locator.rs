//! An attachment locator from another member (`messaging::parse_locator`): accepted
//! exactly when it names a blob id and capability, never a path or query.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::client::check_locator(data);
});
