//! The load generator works end to end: about two seconds of load on an in-process SQLite
//! server, every message delivered, no error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sotto_load::{run, Backend, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_on_sqlite_delivers_everything() {
    let options = Options {
        backend: Backend::Sqlite,
        conversations: 3,
        group_size: 3,
        rate: Some(40.0),
        duration: 1.5,
        warmup: 0.5,
        drain: 20.0,
        pool: 4,
        setup_concurrency: 4,
        server_threads: Some(2),
        ..Options::defaults()
    };
    let report = run(&options).await.unwrap();
    println!("{report}");
    assert_eq!(report.connections, 6);
    assert_eq!(report.errors.total(), 0, "{:?}", report.error_samples);
    assert!(report.sends > 0, "{report}");
    // Every message sent in the window reached both of its recipients.
    assert_eq!(report.expected_deliveries, 2 * report.sends);
    assert_eq!(report.undelivered, 0, "{report}");
    assert_eq!(report.latency_ms.samples, report.expected_deliveries);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.max);
}

#[tokio::test]
async fn bad_options_and_non_loopback_servers_are_refused() {
    let zero = Options {
        group_size: 1,
        ..Options::defaults()
    };
    assert!(run(&zero)
        .await
        .unwrap_err()
        .to_string()
        .contains("--group-size"));
    let unique_without_rate = Options {
        pool: 0,
        ..Options::defaults()
    };
    assert!(run(&unique_without_rate)
        .await
        .unwrap_err()
        .to_string()
        .contains("--rate"));
    let remote = Options {
        server: Some("http://192.0.2.1:8480".into()),
        ..Options::defaults()
    };
    assert!(run(&remote)
        .await
        .unwrap_err()
        .to_string()
        .contains("loopback"));
}
