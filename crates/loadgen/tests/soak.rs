//! A soak: hundreds of devices, each holding a WebSocket to an in-process SQLite server,
//! each sending in a conversation of its own and receiving in the two before it (`--ring`),
//! under open-loop load for a bounded time. The run must be error-free: no failed request,
//! no dropped connection, and every message delivered exactly once to every recipient
//! device.
//!
//! Short by default (300 devices, 6 s of load at 100 sends/s: what CI runs). Longer, as in
//! `docs/performance.md`:
//!
//! ```sh
//! SOTTO_SOAK_SECS=300 SOTTO_SOAK_DEVICES=500 SOTTO_SOAK_RATE=250 \
//!     cargo test --release -p sotto-load --test soak -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sotto_load::report::Errors;
use sotto_load::{limits, run, Backend, Options};

/// A number from the environment variable `name`, or `default`.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
        Err(_) => default,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_connected_devices_lose_and_duplicate_nothing() {
    let devices: usize = setting("SOTTO_SOAK_DEVICES", 300);
    let secs: f64 = setting("SOTTO_SOAK_SECS", 6.0);
    let rate: f64 = setting("SOTTO_SOAK_RATE", 100.0);
    let options = Options {
        backend: Backend::Sqlite,
        ring: true,
        conversations: devices,
        group_size: 3,
        rate: Some(rate),
        duration: secs,
        warmup: 0.0,
        drain: 60.0,
        pool: 4,
        setup_concurrency: 16,
        server_threads: Some(2),
        ..Options::defaults()
    };
    // Both ends of every WebSocket are in this process; `run` raises the soft limit on
    // open files to the hard one and would refuse a run that does not fit under it.
    let limit = limits::raise_open_files();
    println!(
        "{devices} devices need at least {} open files; the limit is {}",
        limits::needed(&options),
        limit.map_or("unknown".into(), |l| l.to_string())
    );

    let report = run(&options).await.unwrap();
    println!("{report}");
    assert!(
        report.is_clean(),
        "the soak was not error-free: {:?}\n{report}",
        report.problems()
    );
    assert_eq!(
        report.errors,
        Errors::default(),
        "{:?}",
        report.error_samples
    );
    // Every device was connected, sent and received.
    assert_eq!(report.devices, devices);
    assert_eq!(report.connections, devices);
    // Every due send was made and answered, and each reached both its recipients once.
    let due = (rate * secs).ceil() as u64;
    let t = report.total;
    assert!(
        t.sends + 1 >= due && t.sends <= due + 1,
        "{} sends of {due}",
        t.sends
    );
    assert_eq!(t.expected_deliveries, 2 * t.sends);
    assert_eq!(t.delivered, t.expected_deliveries);
    assert_eq!(t.lost, 0);
    assert_eq!(report.latency_ms.samples, t.delivered);
}
