//! Support code of the `faults_server` tests, one module per job, and two small helpers.

use std::net::TcpListener;
use std::time::Instant;

pub mod cut;
pub mod disk;
pub mod exchange;
pub mod postgres;
pub mod server;

/// Prints how long a test took when dropped.
pub struct Timer(&'static str, Instant);

impl Timer {
    pub fn start(test: &'static str) -> Self {
        Self(test, Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        eprintln!("{}: {:.1} s", self.0, self.1.elapsed().as_secs_f64());
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
