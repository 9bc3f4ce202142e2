//! # sotto-load
//!
//! A load generator for `sotto-server`. It drives many device connections through a real
//! server over loopback, the way clients use it:
//!
//! 1. **Setup.** It registers one account per device (root key, device certificate signed
//!    by it), logs every device in (a challenge signed with the device key) and, per
//!    conversation, lets the sending device create a real MLS group with `sotto-core` and
//!    encrypt a pool of application messages of `--payload-bytes` of text. The server reads
//!    each message's MLS header (conversation, epoch, content type) and accepts it; the
//!    recipients are not MLS members (they never decrypt: that is client work, not the
//!    server's), which the server cannot tell. A pool entry is reused with a fresh message
//!    id each time — the server deduplicates by message id, not by payload — or, with
//!    `--pool 0`, every message gets a ciphertext of its own.
//! 2. **Load.** Every recipient device holds a WebSocket (`GET /v1/ws`), subscribes, and
//!    acknowledges what it receives, in batches of whatever arrived together. Senders post
//!    over HTTP, either open-loop at `--rate` sends per second (a send's latency counts from
//!    when it was *due*, so a slow server cannot hide behind a generator that waits for it:
//!    no coordinated omission) or, without `--rate`, as fast as `--in-flight` concurrent
//!    sends per conversation allow.
//! 3. **Report.** Over the measured window (after `--warmup`, for `--duration`): sends per
//!    second, deliveries (message × recipient device) per second, and the delivery latency
//!    from the start of a send to the frame's arrival at a recipient — p50, p90, p99, max.
//!    The send time lives in the generator, keyed by the message (not in the payload). Then
//!    errors, messages not delivered within `--drain`, and the CPU time of the server's and
//!    the generator's threads.
//! 4. **Errors.** Over the whole run (warm-up included), every message must reach every
//!    recipient device exactly once: the report counts failed sends, WebSockets that
//!    failed or were closed, duplicates (a device receiving a mailbox cursor, or a
//!    message's conversation and sequence number, twice), frames no device should have
//!    received, and deliveries still missing when the drain ends. [`Report::problems`]
//!    lists them; the `sotto-load` binary exits with status 1 unless the run was
//!    error-free. With `--ring` every device both sends (in its own conversation) and
//!    receives (in the `--group-size - 1` conversations before it) on a WebSocket of its
//!    own — a soak of hundreds of connected devices is
//!    `sotto-load --ring --conversations 300 --group-size 3 --rate 150 --duration 600 --warmup 0`.
//!
//! By default the server runs in-process (`sotto_server::start`) on its own runtime, with
//! SQLite in a fresh temporary data directory, or with `--backend postgres` in a fresh
//! schema of `--database-url` that is dropped afterwards; `--server URL` drives a server
//! already running on a loopback address instead.

use std::time::Duration;

pub mod cpu;
mod drive;
pub mod limits;
pub mod report;
mod setup;
mod target;

pub use report::Report;

/// Where the in-process server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite in a fresh temporary data directory.
    Sqlite,
    /// A fresh schema of the PostgreSQL database named by `--database-url`.
    Postgres,
}

/// What to run; the command-line flags of `sotto-load`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "sotto-load",
    version,
    about = "Drives many device connections through a Sotto server and reports throughput and delivery latency"
)]
pub struct Options {
    /// Store of the in-process server.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    pub backend: Backend,
    /// PostgreSQL database for `--backend postgres` (trust or password in the URL): a fresh
    /// schema is created in it for the run and dropped afterwards.
    #[arg(
        long,
        env = "SOTTO_LOAD_DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// Drive the server already running at this base URL (`http://127.0.0.1:8480`; loopback
    /// addresses only) instead of starting one; `--backend` is then only a label.
    #[arg(long)]
    pub server: Option<String>,
    /// Conversations, each with one sending device.
    #[arg(long, default_value_t = 100)]
    pub conversations: usize,
    /// Devices per conversation, the sender included: 2 for one-to-one conversations, G
    /// for a fan-out of each message to G-1 recipient devices.
    #[arg(long, default_value_t = 2)]
    pub group_size: usize,
    /// Every device sends and receives: N conversations use N devices, each holding a
    /// WebSocket; conversation c's sender is device c and its recipients are the next
    /// group-size - 1 devices, wrapping around. Without it, senders and recipients are
    /// separate devices (N × group-size of them) and senders hold no WebSocket.
    #[arg(long)]
    pub ring: bool,
    /// Target sends per second over all conversations, open-loop; without it, as fast as
    /// the server answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Without `--rate`: concurrent sends per conversation.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before the measured window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds to wait after the window for the messages sent in it to be delivered.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Bytes of text in each message (the MLS ciphertext is about 380 bytes larger).
    #[arg(long, default_value_t = 1024)]
    pub payload_bytes: usize,
    /// Ciphertexts encrypted per conversation before the run and reused, each time with a
    /// fresh message id; 0: one ciphertext per message (needs `--rate`).
    #[arg(long, default_value_t = 16)]
    pub pool: usize,
    /// Most sends in flight at once (open-loop sends beyond it wait, and their latency
    /// includes the wait).
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Concurrent requests while setting up accounts, devices and sessions.
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,
    /// Worker threads of the in-process server's runtime (default: one per core).
    #[arg(long)]
    pub server_threads: Option<usize>,
    /// Worker threads of the generator's own runtime (default: one per core; used by the
    /// `sotto-load` binary, which builds that runtime).
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Options {
    /// The defaults, as with no flags.
    pub fn defaults() -> Self {
        <Self as clap::Parser>::parse_from(["sotto-load"])
    }

    /// Devices that hold a WebSocket in a run of these options.
    pub fn receiving_devices(&self) -> usize {
        if self.ring {
            self.conversations
        } else {
            self.conversations
                .saturating_mul(self.group_size.saturating_sub(1))
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.conversations == 0 {
            return Err(Error::new("--conversations must be at least 1"));
        }
        if self.ring && self.group_size > self.conversations {
            return Err(Error::new(format!(
                "--ring needs at least --group-size ({}) conversations, one per device of a \
                 conversation; --conversations is {}",
                self.group_size, self.conversations
            )));
        }
        if self.group_size < 2 {
            return Err(Error::new(
                "--group-size must be at least 2 (a sender and a recipient)",
            ));
        }
        if self.group_size > sotto_server::delivery::MAX_RECIPIENTS + 1 {
            return Err(Error::new(format!(
                "--group-size is at most {} (the server's recipient limit plus the sender)",
                sotto_server::delivery::MAX_RECIPIENTS + 1
            )));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(Error::new("--rate must be a positive number"));
            }
        } else if self.pool == 0 {
            return Err(Error::new(
                "--pool 0 (a ciphertext per message) needs --rate, to know how many to make",
            ));
        }
        for (name, v) in [
            ("--duration", self.duration),
            ("--warmup", self.warmup),
            ("--drain", self.drain),
        ] {
            if !(v.is_finite() && (0.0..86_400.0).contains(&v)) {
                return Err(Error::new(format!(
                    "{name} must be between 0 and 86400 seconds"
                )));
            }
        }
        if self.duration <= 0.0 {
            return Err(Error::new("--duration must be more than 0 seconds"));
        }
        if self.in_flight == 0 || self.max_in_flight == 0 || self.setup_concurrency == 0 {
            return Err(Error::new(
                "--in-flight, --max-in-flight and --setup-concurrency must be at least 1",
            ));
        }
        if self.payload_bytes > 64 * 1024 {
            return Err(Error::new(
                "--payload-bytes is at most 65536 (application messages are capped at 128 KiB)",
            ));
        }
        Ok(())
    }

    fn secs(v: f64) -> Duration {
        Duration::from_secs_f64(v)
    }
}

/// Why a run failed: a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Adds what was being done to an error.
pub(crate) trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Error>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Error> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }
}

/// An error and its sources, `: `-separated, with a hint if it says the process ran out
/// of file descriptors.
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    let hint = limits::hint(&text);
    text.push_str(hint);
    text
}

/// Runs the load described by `options` and reports; starts and stops the in-process
/// server (and creates and drops its PostgreSQL schema) unless `--server` names one.
/// Raises the process's soft limit on open files first (see [`limits`]), and refuses a run
/// that would not fit under it.
///
/// A run that completes returns its report even if it had errors: see
/// [`Report::problems`].
pub async fn run(options: &Options) -> Result<Report, Error> {
    options.check()?;
    limits::check(options)?;
    let target = target::Target::start(options).await?;
    let outcome = async {
        let world = setup::World::build(options, target.url()).await?;
        drive::drive(options, std::sync::Arc::new(world), target.label()).await
    }
    .await;
    let stopped = target.stop().await;
    let report = outcome?;
    stopped?;
    Ok(report)
}
