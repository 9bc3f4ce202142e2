//! A text frame of the live WebSocket, as the client reads it (`live::decode_frame`):
//! an entry that round-trips, the server's error, or a protocol error.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::client::check_live_frame(data);
});
