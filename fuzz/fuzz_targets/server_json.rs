//! The JSON request bodies the server decodes (every request type of `sotto-api`): the first
//! byte picks the type (modulo 10, see `common::server::REQUEST_TYPES`), the rest is the
//! body. No panic; axum's `Json` extractor and `serde_json::from_slice` accept the same
//! bodies with the same values; an accepted value re-encodes to JSON that decodes to it.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    common::server::check_request(selector, body);
});
