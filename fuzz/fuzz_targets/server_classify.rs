//! The server's MLS header classification of a send's payload
//! (`sotto_server::delivery::classify`) and the Welcome check of a send: no panic, only a
//! `PrivateMessage` of the given conversation with an epoch that fits the store is
//! accepted, with the kind and epoch of its header.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::server::check_classify(data);
});
