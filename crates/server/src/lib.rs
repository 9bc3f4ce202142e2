//! # sotto-server
//!
//! The service Sotto clients talk to: it publishes accounts' root public keys and device
//! certificates, and (as issue 3 proceeds) relays ciphertext, serves KeyPackages and keeps
//! sealed backups. It is never a member of a conversation and never holds a secret key or
//! plaintext.
//!
//! [`start`] opens the store — the data directory's SQLite database, or PostgreSQL when a
//! database URL is given — and serves the HTTP API until the shutdown future completes.
//! Plain HTTP is refused on anything but a loopback address.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod auth;
pub mod delivery;
pub mod hex;
pub mod http;
pub mod hub;
pub mod key_packages;
pub mod state;
pub mod storage;
pub mod ws;

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "sotto.sqlite3";

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Plain HTTP is allowed only on loopback addresses.
    pub listen: SocketAddr,
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// How long undelivered ciphertext is kept, in seconds.
    pub retention_secs: u64,
    /// PostgreSQL instead of SQLite, by connection URL (it may hold a password: never
    /// log it).
    pub database_url: Option<String>,
}

/// Default retention of undelivered ciphertext: 30 days.
pub const DEFAULT_RETENTION_SECS: u64 = 30 * 24 * 3600;
/// The shorter retention profile: 6 days.
pub const SHORT_RETENTION_SECS: u64 = 6 * 24 * 3600;
/// How often the sweeper runs.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl Config {
    /// Loopback on `listen`, data in `data_dir`, default retention.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            retention_secs: DEFAULT_RETENTION_SECS,
            database_url: None,
        }
    }

    /// Where the data is kept: PostgreSQL if a URL is set, else SQLite in the data
    /// directory.
    pub fn backend(&self) -> storage::Backend {
        match &self.database_url {
            Some(url) => storage::Backend::Postgres(url.clone()),
            None => storage::Backend::Sqlite(self.data_dir.join(DATABASE_FILE)),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A non-loopback address without TLS.
    #[error(
        "refusing to serve plain HTTP on {0}: use a loopback address (TLS is not available yet)"
    )]
    NotLoopback(SocketAddr),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("cannot open the database ({backend:?}): {source}")]
    Database {
        /// Which database.
        backend: storage::Backend,
        /// The reason.
        source: storage::StoreError,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
}

/// A started server: where it listens, and the task serving until shutdown.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Where the data is kept.
    pub backend: storage::Backend,
    /// Completes when the server has shut down.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the store and starts serving; the server stops gracefully (finishing requests in
/// flight) when `shutdown` completes.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    if !config.listen.ip().is_loopback() {
        return Err(StartError::NotLoopback(config.listen));
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let backend = config.backend();
    let store = storage::open(&backend)
        .await
        .map_err(|source| StartError::Database {
            backend: backend.clone(),
            source,
        })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    tokio::spawn(sweeper(store.clone(), config.retention_secs));
    let state = state::AppState::new(store, None);
    // Live connections are closed first: graceful HTTP shutdown does not wait for them.
    let shutdown = state.hub.close_after(shutdown);
    let app = http::router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok(Running {
        addr,
        backend,
        task,
    })
}

/// Deletes expired data every [`SWEEP_INTERVAL`] (see [`storage::Maintenance::sweep`]).
async fn sweeper(store: storage::Store, retention_secs: u64) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match store.sweep(http::now(), retention_secs).await {
            Ok(swept) if swept.messages > 0 => {
                tracing::info!(
                    event = "retention_sweep",
                    messages = swept.messages,
                    "expired ciphertext deleted"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
    }
}
