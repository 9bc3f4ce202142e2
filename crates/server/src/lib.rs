//! # sotto-server
//!
//! The service Sotto clients talk to: it publishes accounts' root public keys and device
//! certificates, and (as issue 3 proceeds) relays ciphertext, serves KeyPackages and keeps
//! sealed backups. It is never a member of a conversation and never holds a secret key or
//! plaintext.
//!
//! [`start`] opens the data directory's SQLite database and serves the HTTP API until the
//! shutdown future completes. Plain HTTP is refused on anything but a loopback address.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub mod auth;
pub mod delivery;
pub mod delivery_store;
pub mod hex;
pub mod http;
pub mod key_packages;
pub mod store;

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
    #[error("cannot open database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// The reason.
        source: store::StoreError,
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
    /// The database file.
    pub database: PathBuf,
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
    let database = config.data_dir.join(DATABASE_FILE);
    let store = store::Store::open(&database).map_err(|source| StartError::Database {
        path: database.clone(),
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
    let store = Arc::new(store);
    tokio::spawn(sweeper(Arc::clone(&store), config.retention_secs));
    let app = http::router(store);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok(Running {
        addr,
        database,
        task,
    })
}

/// Deletes expired data every [`SWEEP_INTERVAL`] (see [`store::Store::sweep`]).
async fn sweeper(store: Arc<store::Store>, retention_secs: u64) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let store = Arc::clone(&store);
        let now = http::now();
        match tokio::task::spawn_blocking(move || store.sweep(now, retention_secs)).await {
            Ok(Ok(swept)) if swept.messages > 0 => {
                tracing::info!(
                    event = "retention_sweep",
                    messages = swept.messages,
                    "expired ciphertext deleted"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
            Err(_) => tracing::error!("retention sweep task failed"),
        }
    }
}
