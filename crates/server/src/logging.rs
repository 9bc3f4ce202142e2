//! The server's log: the operator's filter (the `log` setting, `EnvFilter` syntax), with
//! caps on the dependencies that would otherwise write what the log must never hold.
//!
//! The server's own events name no user, device, token, address or payload. Some
//! dependencies do, at their most detailed levels, and a filter such as `trace` or
//! `tokio_postgres=debug` would let them through; [`CAPS`] holds them back whatever the
//! filter says (they are applied as a second filter that every event must also pass, so
//! no directive of the operator's, however specific, lifts them). Checked end to end by
//! `crates/server/tests/privacy.rs`, which runs the binary at `--log trace`.

use tracing_subscriber::filter::{FilterExt as _, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The most detailed level each of these targets (and their submodules) may log at.
pub const CAPS: &[(&str, LevelFilter)] = &[
    // axum's accept loop logs every connection's client address and port at TRACE.
    ("axum::serve", LevelFilter::DEBUG),
    // tokio-postgres logs every statement's parameters at DEBUG: user names, recipients,
    // challenges, contact hashes, ciphertext.
    ("tokio_postgres", LevelFilter::INFO),
    // tungstenite logs every WebSocket frame, payload included, at TRACE.
    ("tungstenite", LevelFilter::DEBUG),
    ("tokio_tungstenite", LevelFilter::DEBUG),
];

/// The filter of [`CAPS`]: everything else passes.
pub fn caps() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPS.iter().copied())
}

/// Installs the process's log subscriber (to stdout): `directives`, which
/// [`crate::config::load`] has checked (the default filter if they do not parse), capped by
/// [`caps`]. Does nothing if a subscriber is already installed.
pub fn init(directives: &str) {
    init_with_writer(directives, std::io::stdout);
}

/// As [`init`], writing to `writer` (tests capture the log this way, through the very
/// filter the binary uses).
pub fn init_with_writer<W>(directives: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(directives)
        .unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(filter.and(caps()));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn caps_hold_back_what_would_leak_and_nothing_else() {
        let caps = caps();
        assert!(!caps.would_enable("axum::serve", &Level::TRACE));
        assert!(!caps.would_enable("tokio_postgres::query", &Level::DEBUG));
        assert!(caps.would_enable("tokio_postgres::connection", &Level::INFO));
        assert!(!caps.would_enable("tungstenite::protocol::frame", &Level::TRACE));
        assert!(!caps.would_enable("tokio_tungstenite::compat", &Level::TRACE));
        assert!(caps.would_enable("sotto_server::delivery", &Level::TRACE));
        assert!(caps.would_enable("axum::rejection", &Level::TRACE));
    }
}
