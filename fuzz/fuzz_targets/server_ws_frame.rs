//! A WebSocket frame from a client (`ClientFrame`): no panic, `from_str` (as the server
//! reads text frames), `from_slice` and axum's `Json` agree, and an accepted frame
//! round-trips.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::server::check_frame(data);
});
