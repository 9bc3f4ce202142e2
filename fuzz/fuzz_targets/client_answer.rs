//! The typed answers of the HTTP API as the client decodes them (`api::decode_answer`),
//! and error bodies (`api::answer_error`). The first byte picks the type (mod 13).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, body)) = data.split_first() {
        common::client::check_answer(selector, body);
    }
});
