//! The server under load: started in-process on a runtime of its own (SQLite in a fresh
//! temporary directory, or a fresh PostgreSQL schema), or one already running.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use tokio::sync::oneshot;

use crate::{Backend, Context, Error, Options};

/// Thread name of the in-process server's runtime (see [`crate::cpu`]).
pub const SERVER_THREAD: &str = "sotto-server";

/// A server to drive, and what to clean up after it.
pub(crate) struct Target {
    url: String,
    label: String,
    local: Option<Local>,
}

struct Local {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), String>>,
    data_dir: PathBuf,
    /// `(admin URL, schema)` on PostgreSQL.
    schema: Option<(String, String)>,
}

fn random_hex(bytes: usize) -> Result<String, Error> {
    let random: [u8; 16] = sotto_core::crypto::random_array().context("no randomness")?;
    Ok(random
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A run-unique lower-case hex tag (names of schemas, directories and users).
pub(crate) fn run_tag() -> Result<String, Error> {
    random_hex(4)
}

async fn pg_admin(url: &str) -> Result<tokio_postgres::Client, Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("cannot connect to PostgreSQL at --database-url")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// Refuses a `--server` that is not on a loopback address: load goes nowhere else.
fn check_loopback(url: &str) -> Result<String, Error> {
    let parsed = reqwest::Url::parse(url).context(format!("--server {url} is not a URL"))?;
    if parsed.scheme() != "http" {
        return Err(Error::new(
            "--server must be an http:// URL (the generator does not speak TLS)",
        ));
    }
    let loopback = match parsed.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    if !loopback {
        return Err(Error::new(format!(
            "--server {url}: only loopback addresses (127.0.0.0/8, [::1], localhost) are driven"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Target {
    /// Starts the in-process server described by `options`, or checks `--server`.
    pub async fn start(options: &Options) -> Result<Self, Error> {
        let label = match options.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        if let Some(url) = &options.server {
            return Ok(Self {
                url: check_loopback(url)?,
                label: format!("{label} (external server)"),
                local: None,
            });
        }
        let tag = run_tag()?;
        let data_dir = std::env::temp_dir().join(format!("sotto-load-{tag}"));
        let schema = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let schema = format!("sotto_load_{tag}");
                pg_admin(&options.database_url)
                    .await?
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .context("cannot create a schema for the run")?;
                Some((options.database_url.clone(), schema))
            }
        };
        let mut config = sotto_server::Config::new(
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0),
            data_dir.clone(),
        );
        config.database_url = schema.as_ref().map(|(url, s)| with_schema(url, s));
        let threads = options.server_threads.unwrap_or_else(cores);
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, started) = oneshot::channel::<Result<SocketAddr, String>>();
        let thread = std::thread::Builder::new()
            .name(SERVER_THREAD.into())
            .spawn(move || serve(config, threads, stopped, ready))
            .context("cannot start the server's thread")?;
        let local = Local {
            stop,
            thread,
            data_dir,
            schema,
        };
        let addr = match started.await {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => {
                let _ = cleanup(local).await;
                return Err(Error::new(format!("the server did not start: {e}")));
            }
            Err(_) => {
                let _ = cleanup(local).await;
                return Err(Error::new("the server's thread ended before it started"));
            }
        };
        Ok(Self {
            url: format!("http://{addr}"),
            label: label.into(),
            local: Some(local),
        })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The back-end, for the report.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Stops the in-process server and removes its data.
    pub async fn stop(self) -> Result<(), Error> {
        match self.local {
            Some(local) => cleanup(local).await,
            None => Ok(()),
        }
    }
}

async fn cleanup(local: Local) -> Result<(), Error> {
    let Local {
        stop,
        thread,
        data_dir,
        schema,
    } = local;
    let _ = stop.send(());
    let joined = tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|_| Error::new("cannot wait for the server's thread"))?;
    let _ = std::fs::remove_dir_all(&data_dir);
    if let Some((url, schema)) = schema {
        pg_admin(&url)
            .await?
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .context(format!("cannot drop the run's schema {schema}"))?;
    }
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::new(format!("the server failed: {e}"))),
        Err(_) => Err(Error::new("the server's thread panicked")),
    }
}

/// Cores of this machine (the default number of worker threads).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The server's thread: its own runtime, so that it gets its own workers as a separate
/// server process would.
fn serve(
    config: sotto_server::Config,
    threads: usize,
    stopped: oneshot::Receiver<()>,
    ready: oneshot::Sender<Result<SocketAddr, String>>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the server's runtime: {e}"))?;
    runtime.block_on(async move {
        let running = sotto_server::start(config, async {
            let _ = stopped.await;
        })
        .await;
        let running = match running {
            Ok(running) => running,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return Ok(());
            }
        };
        let _ = ready.send(Ok(running.addr));
        match running.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("serving failed: {e}")),
            Err(e) => Err(format!("the serving task failed: {e}")),
        }
    })
}
