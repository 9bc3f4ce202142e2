//! # sotto-server
//!
//! The service Sotto clients talk to: it publishes accounts' root public keys and device
//! certificates, relays ciphertext, serves KeyPackages, and keeps sealed root-key backups
//! that it releases only after an OPAQUE password login ([`passwords`]). It is never a
//! member of a conversation and never holds a user's secret key, password or plaintext.
//!
//! [`start`] opens the store — the data directory's SQLite database, or PostgreSQL when a
//! database URL is given — and serves the HTTP API until the shutdown future completes,
//! over TLS when [`Config::tls`] is set ([`tls`]). Plain HTTP is refused on anything but a
//! loopback address. [`config`] reads the settings from a file, the environment and flags.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod attachments;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod discovery;
pub mod hex;
pub mod http;
pub mod hub;
pub mod key_packages;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod passwords;
pub mod state;
pub mod storage;
pub mod tls;
pub mod ws;

pub use tls::TlsFiles;

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "sotto.sqlite3";

/// How to run the server. Its `Debug` hides the database password.
#[derive(Clone)]
pub struct Config {
    /// Where to listen. Plain HTTP is allowed only on loopback addresses; with [`Self::tls`]
    /// any address is.
    pub listen: SocketAddr,
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// How long undelivered ciphertext is kept, in seconds.
    pub retention_secs: u64,
    /// A PostgreSQL URL (`postgres://…`, may hold a password): when set, the server stores
    /// its data in PostgreSQL instead of SQLite in [`Self::data_dir`].
    pub database_url: Option<String>,
    /// Serve HTTPS with this certificate and key; `None` serves plain HTTP (loopback only).
    pub tls: Option<TlsFiles>,
    /// When set, the account-event log is to record a salted hash of the acting user
    /// instead of the user id (carried here; the event log applies it).
    pub privacy_profile: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            listen,
            data_dir,
            retention_secs,
            database_url,
            tls,
            privacy_profile,
        } = self;
        f.debug_struct("Config")
            .field("listen", listen)
            .field("data_dir", data_dir)
            .field("retention_secs", retention_secs)
            .field(
                "database_url",
                &database_url.as_deref().map(config::redact_database_url),
            )
            .field("tls", tls)
            .field("privacy_profile", privacy_profile)
            .finish()
    }
}

/// Default retention of undelivered ciphertext: 30 days.
pub const DEFAULT_RETENTION_SECS: u64 = 30 * 24 * 3600;
/// The shorter retention profile: 6 days.
pub const SHORT_RETENTION_SECS: u64 = 6 * 24 * 3600;
/// How often the sweeper runs.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl Config {
    /// `listen`, data in SQLite in `data_dir`, default retention, plain HTTP, no privacy
    /// profile.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            retention_secs: DEFAULT_RETENTION_SECS,
            database_url: None,
            tls: None,
            privacy_profile: false,
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
        "refusing to serve plain HTTP on {0}: use a loopback address, or set tls_cert and tls_key"
    )]
    NotLoopback(SocketAddr),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
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
    /// The server's OPAQUE key could not be loaded from the database or created.
    #[error("cannot load the password-login key: {0}")]
    PasswordKey(#[from] passwords::SetupError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
}

/// Whether the server speaks HTTPS or plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (loopback only).
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A started server: where it listens, and the task serving until shutdown.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// HTTPS or plain HTTP.
    pub scheme: Scheme,
    /// Where the data is kept.
    pub backend: storage::Backend,
    /// Completes when the server has shut down.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// The base URL, e.g. `https://192.0.2.1:8480`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
}

/// A server started by [`start_embedded`], for a program (or a test) that embeds one:
/// it shuts down gracefully when this handle is dropped.
#[derive(Debug)]
pub struct Embedded {
    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a server in this process (see [`start`]) that runs until the handle is dropped.
pub async fn start_embedded(config: Config) -> Result<Embedded, StartError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = start(config, async {
        let _ = stopped.await;
    })
    .await?;
    Ok(Embedded {
        url: running.url(),
        stop: Some(stop),
    })
}

/// Loads the TLS certificate (if any), opens the store and starts serving; the server stops
/// gracefully (finishing requests in flight) when `shutdown` completes.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let tls = match &config.tls {
        Some(files) => Some(tls::server_config(files)?),
        None if !config.listen.ip().is_loopback() => {
            return Err(StartError::NotLoopback(config.listen));
        }
        None => None,
    };
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
    let password_keys = passwords::ServerKeys::load(&store).await?;
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
    let privacy_salt = if config.privacy_profile {
        Some(
            privacy_salt(&store)
                .await
                .map_err(|source| StartError::Database {
                    backend: backend.clone(),
                    source,
                })?,
        )
    } else {
        None
    };
    let mut state = state::AppState::new(store.clone(), password_keys, privacy_salt);
    state.retention_secs = config.retention_secs;
    tokio::spawn(sweeper(
        store,
        config.retention_secs,
        std::sync::Arc::clone(&state.metrics),
    ));
    // Wake-ups announced by other server processes on the same database.
    if let Some(mut wakeups) = state.store.wakeups().await {
        let hub = state.hub.clone();
        tokio::spawn(async move {
            while let Some(wakeup) = wakeups.recv().await {
                match wakeup {
                    storage::Wakeup::Device(device) => hub.notify(&device),
                    storage::Wakeup::All => hub.notify_all(),
                }
            }
        });
    }
    // Live connections are closed first: graceful HTTP shutdown does not wait for them.
    let shutdown = state.hub.close_after(shutdown);
    let app = http::router(state);
    let (scheme, task) = match tls {
        None => (
            Scheme::Http,
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }),
        ),
        Some(tls) => (
            Scheme::Https,
            tokio::spawn(tls::serve(listener, tls, app, shutdown)),
        ),
    };
    Ok(Running {
        addr,
        scheme,
        backend,
        task,
    })
}

/// The secret salt of the privacy profile's event log: created once, kept in the store (so
/// that servers sharing a database name actors alike), never shown.
async fn privacy_salt(store: &storage::Store) -> Result<[u8; 32], storage::StoreError> {
    let fresh: [u8; 32] = sotto_core::crypto::random_array()
        .map_err(|_| storage::StoreError::Unavailable("no randomness".into()))?;
    let stored = store.setting_or_insert("privacy_salt", &fresh).await?;
    stored
        .as_slice()
        .try_into()
        .map_err(|_| storage::StoreError::Corrupt)
}

/// Deletes expired data every [`SWEEP_INTERVAL`] (see [`storage::Maintenance::sweep`]).
async fn sweeper(
    store: storage::Store,
    retention_secs: u64,
    metrics: std::sync::Arc<metrics::Metrics>,
) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let swept = store.sweep(http::now(), retention_secs).await;
        if let Ok(swept) = &swept {
            let deleted = |what| metrics.swept.get_or_create(&vec![("what", what)]).clone();
            deleted("messages").inc_by(swept.messages);
            deleted("expired").inc_by(swept.expired);
        }
        match swept {
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
