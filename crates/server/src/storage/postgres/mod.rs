//! The PostgreSQL back-end (for deployments larger than one machine's SQLite).
//!
//! [`PostgresStore`] keeps a pool of connections ([`deadpool_postgres`]) to the database
//! named by a connection URL; its tables live in the first schema of the connection's
//! `search_path` (set it with `?options=-csearch_path%3D<schema>` to share a database).
//! Connecting migrates the schema: [`MIGRATIONS`] are applied in order, each in its own
//! transaction under an advisory lock, so servers starting at once never both migrate,
//! and a schema written by a newer server is refused ([`StoreError::TooNew`]).
//!
//! TLS to the database is not supported yet: connections are plain TCP (or a Unix
//! socket), so keep the database on the same host or a trusted network. A URL asking for
//! `sslmode=require` is refused rather than silently downgraded.
//!
//! Unlike SQLite's one connection, PostgreSQL runs transactions concurrently. Every
//! transaction here is `READ COMMITTED` and takes explicit row or advisory locks where a
//! decision depends on what it read (see each module); a transaction that deadlocks or
//! fails to serialise anyway is retried from the start a few times.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};

use super::{to_i64, to_u64, Event, EventRow, Events, Maintenance, StoreError, Swept};

mod accounts;
mod delivery;
mod directory;
mod key_packages;
mod passwords;
mod wakeups;

/// The transaction type the back-end's statements run in.
type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// Connections the pool holds at most, unless [`PostgresStore::connect_with_pool_size`]
/// says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a request waits for a free pooled connection, and how long opening a new one
/// may take, before the store answers [`StoreError::Unavailable`].
const POOL_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times a transaction is attempted when it deadlocks or fails to serialise.
const MAX_ATTEMPTS: u32 = 5;

/// The schema, one entry per version; `schema_version` records how many have run.
///
/// Tables and columns are named as in the SQLite back-end. Two things differ: a device's
/// mailbox positions (`mailbox.id`, the cursor of the API) are counted per device in
/// `mailbox_counters` rather than by one global sequence, and ciphertext columns are not
/// compressed (it would not shrink).
pub const MIGRATIONS: &[&str] = &[
    // 1: the whole schema of the first PostgreSQL release.
    "CREATE TABLE accounts (
         username        TEXT PRIMARY KEY,
         root_public_key BYTEA NOT NULL,
         created_at      BIGINT NOT NULL
     );
     CREATE TABLE devices (
         username    TEXT NOT NULL REFERENCES accounts (username),
         device_id   BYTEA NOT NULL,
         certificate BYTEA NOT NULL,
         created_at  BIGINT NOT NULL,
         PRIMARY KEY (username, device_id)
     );
     CREATE TABLE revoked (
         username  TEXT NOT NULL,
         device_id BYTEA NOT NULL,
         PRIMARY KEY (username, device_id)
     );
     CREATE TABLE challenges (
         challenge  BYTEA PRIMARY KEY,
         username   TEXT NOT NULL,
         device_id  BYTEA NOT NULL,
         expires_at BIGINT NOT NULL
     );
     CREATE TABLE sessions (
         token_hash BYTEA PRIMARY KEY,
         username   TEXT NOT NULL,
         device_id  BYTEA NOT NULL,
         expires_at BIGINT NOT NULL
     );
     CREATE INDEX sessions_by_device ON sessions (username, device_id);
     CREATE TABLE key_packages (
         id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         username    TEXT NOT NULL,
         device_id   BYTEA NOT NULL,
         key_package BYTEA NOT NULL,
         last_resort BOOLEAN NOT NULL,
         created_at  BIGINT NOT NULL
     );
     CREATE INDEX key_packages_by_device ON key_packages (username, device_id, last_resort, id);
     CREATE TABLE last_resort_used (
         username  TEXT NOT NULL,
         device_id BYTEA NOT NULL,
         PRIMARY KEY (username, device_id)
     );
     CREATE TABLE claims (
         requester TEXT NOT NULL,
         target    TEXT NOT NULL,
         at        BIGINT NOT NULL
     );
     CREATE INDEX claims_by_pair ON claims (requester, target, at);
     CREATE TABLE conversations (
         id    BYTEA PRIMARY KEY,
         epoch BIGINT NOT NULL,
         next  BIGINT NOT NULL
     );
     CREATE TABLE members (
         conversation BYTEA NOT NULL,
         username     TEXT NOT NULL,
         device_id    BYTEA NOT NULL,
         PRIMARY KEY (conversation, username, device_id)
     );
     CREATE TABLE log (
         conversation BYTEA NOT NULL,
         seq          BIGINT NOT NULL,
         kind         SMALLINT NOT NULL,
         message_id   BYTEA NOT NULL,
         payload      BYTEA NOT NULL,
         created_at   BIGINT NOT NULL,
         PRIMARY KEY (conversation, seq),
         UNIQUE (conversation, message_id)
     );
     ALTER TABLE log ALTER COLUMN payload SET STORAGE EXTERNAL;
     CREATE INDEX log_by_time ON log (created_at);
     CREATE TABLE mailbox_counters (
         username  TEXT NOT NULL,
         device_id BYTEA NOT NULL,
         last      BIGINT NOT NULL,
         PRIMARY KEY (username, device_id)
     );
     CREATE TABLE mailbox (
         username     TEXT NOT NULL,
         device_id    BYTEA NOT NULL,
         id           BIGINT NOT NULL,
         conversation BYTEA NOT NULL,
         seq          BIGINT NOT NULL,
         PRIMARY KEY (username, device_id, id)
     );
     CREATE INDEX mailbox_by_entry ON mailbox (conversation, seq);
     CREATE TABLE events (
         at     BIGINT NOT NULL,
         kind   TEXT NOT NULL,
         sender TEXT NOT NULL
     );
     CREATE INDEX events_by_time ON events (at);",
    // 2: settings the server creates once; published contact hashes and the daily
    // look-up allowance (looked-up hashes are never stored); attachment blobs.
    "CREATE TABLE settings (
         name  TEXT PRIMARY KEY,
         value BYTEA NOT NULL
     );
     CREATE TABLE contacts (
         hash     BYTEA NOT NULL,
         username TEXT NOT NULL,
         PRIMARY KEY (hash, username)
     );
     CREATE INDEX contacts_by_user ON contacts (username);
     CREATE TABLE discovery_quota (
         username TEXT NOT NULL,
         day      BIGINT NOT NULL,
         used     BIGINT NOT NULL,
         PRIMARY KEY (username, day)
     );
     CREATE TABLE attachments (
         id         BYTEA PRIMARY KEY,
         owner      TEXT NOT NULL,
         token_hash BYTEA NOT NULL,
         blob       BYTEA NOT NULL,
         size       BIGINT NOT NULL,
         expires_at BIGINT NOT NULL
     );
     ALTER TABLE attachments ALTER COLUMN blob SET STORAGE EXTERNAL;
     CREATE INDEX attachments_by_owner ON attachments (owner);
     CREATE INDEX attachments_by_expiry ON attachments (expires_at);",
    // 3: message ids seen per conversation, kept for the retention so that a resend of a
    // message already delivered and acknowledged (its log entry deleted) is still
    // recognised as a duplicate rather than delivered again.
    "CREATE TABLE message_ids (
         conversation BYTEA NOT NULL,
         message_id   BYTEA NOT NULL,
         seq          BIGINT NOT NULL,
         created_at   BIGINT NOT NULL,
         PRIMARY KEY (conversation, message_id)
     );
     CREATE INDEX message_ids_by_time ON message_ids (created_at);",
    // 4: password login: each account's OPAQUE record and sealed root-key backup; logins
    // between start and finish (server state encrypted, by the hash of the login id);
    // the per-username lockout (also for usernames that have no account).
    "CREATE TABLE passwords (
         username   TEXT PRIMARY KEY REFERENCES accounts (username),
         record     BYTEA NOT NULL,
         backup     BYTEA NOT NULL,
         updated_at BIGINT NOT NULL
     );
     CREATE TABLE login_states (
         id_hash    BYTEA PRIMARY KEY,
         username   TEXT NOT NULL,
         state      BYTEA NOT NULL,
         expires_at BIGINT NOT NULL
     );
     CREATE INDEX login_states_by_user ON login_states (username);
     CREATE INDEX login_states_by_expiry ON login_states (expires_at);
     CREATE TABLE login_limits (
         username     TEXT PRIMARY KEY,
         failures     BIGINT NOT NULL,
         window_start BIGINT NOT NULL,
         locked_until BIGINT NOT NULL,
         lockouts     BIGINT NOT NULL
     );",
];

/// The schema version this server writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The PostgreSQL store: a pool of connections to one database schema.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// How to open the dedicated connection that listens for wake-ups.
    config: tokio_postgres::Config,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.write_str("PostgresStore")
    }
}

impl PostgresStore {
    /// Connects to the database at `url` with a pool of up to [`DEFAULT_POOL_SIZE`]
    /// connections, and migrates its schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// Connects with a pool of up to `pool_size` connections (at least one), and migrates
    /// the schema.
    pub async fn connect_with_pool_size(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        // The parser's messages can quote the URL; say only that it is wrong.
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            StoreError::Unavailable(
                "the database URL is not a valid PostgreSQL connection string".into(),
            )
        })?;
        if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
            return Err(StoreError::Unavailable(
                "TLS to the database is not supported yet: drop sslmode from the URL".into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("sotto-server");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let store = Self { pool, config };
        store.migrate().await?;
        Ok(store)
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs `work` on `args` in a `READ COMMITTED` transaction and commits it; on a
    /// deadlock or serialisation failure the transaction is rolled back and run again,
    /// up to [`MAX_ATTEMPTS`] times. An error from `work` rolls the transaction back.
    async fn transact<A, T>(
        &self,
        args: &A,
        work: for<'t> fn(&'t Transaction<'t>, &'t A) -> BoxFuture<'t, Result<T, StoreError>>,
    ) -> Result<T, StoreError>
    where
        A: Sync + ?Sized,
        T: Send,
    {
        let mut attempt = 1;
        loop {
            let outcome = async {
                let mut client = self.client().await?;
                let tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::ReadCommitted)
                    .start()
                    .await?;
                let out = work(&tx, args).await?;
                tx.commit().await?;
                Ok(out)
            }
            .await;
            match outcome {
                Err(StoreError::Postgres(e)) if attempt < MAX_ATTEMPTS && transient(&e) => {
                    tracing::debug!(error = %e, attempt, "transaction retried");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Applies the missing migrations, one transaction each; see [`MIGRATIONS`].
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        loop {
            let tx = client.transaction().await?;
            // Held until this transaction ends: a second server starting on the same
            // schema waits here, then finds the work done.
            tx.execute(
                "SELECT pg_advisory_xact_lock(
                     hashtextextended('sotto-schema:' || coalesce(current_schema(), ''), 0))",
                &[],
            )
            .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (
                     only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
                     version  BIGINT NOT NULL
                 )",
            )
            .await?;
            let version: i64 = match tx
                .query_opt("SELECT version FROM schema_version", &[])
                .await?
            {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            if version > SCHEMA_VERSION {
                return Err(StoreError::TooNew(version));
            }
            let pending = usize::try_from(version)
                .ok()
                .and_then(|v| MIGRATIONS.get(v));
            let Some(sql) = pending else {
                tx.commit().await?;
                return Ok(());
            };
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)
                 ON CONFLICT (only_row) DO UPDATE SET version = EXCLUDED.version",
                &[&(version + 1)],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version = version + 1, "database schema migrated");
        }
    }
}

/// Whether running the transaction again may succeed: a deadlock or serialisation
/// failure.
fn transient(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Records an account event inside `tx`.
async fn record(
    tx: &Transaction<'_>,
    event: Event,
    actor: &str,
    now: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events (at, kind, sender) VALUES ($1, $2, $3)",
        &[&to_i64(now), &event.as_str(), &actor],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Events for PostgresStore {
    async fn events(&self) -> Result<Vec<EventRow>, StoreError> {
        // Events of the same second come in no particular order.
        let rows = self
            .client()
            .await?
            .query("SELECT at, kind, sender FROM events ORDER BY at", &[])
            .await?;
        rows.iter()
            .map(|row| {
                Ok(EventRow {
                    at: to_u64(row.try_get(0)?),
                    kind: row.try_get(1)?,
                    actor: row.try_get(2)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Maintenance for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn sweep(&self, now: u64, retention_secs: u64) -> Result<Swept, StoreError> {
        self.transact(&(now, retention_secs), |tx, &(now, retention)| {
            Box::pin(sweep(tx, now, retention))
        })
        .await
    }
}

async fn sweep(tx: &Transaction<'_>, now: u64, retention_secs: u64) -> Result<Swept, StoreError> {
    let cutoff = to_i64(now.saturating_sub(retention_secs));
    let now = to_i64(now);
    tx.execute(
        "DELETE FROM mailbox m USING log l WHERE l.conversation = m.conversation
         AND l.seq = m.seq AND l.created_at < $1",
        &[&cutoff],
    )
    .await?;
    let messages = tx
        .execute("DELETE FROM log WHERE created_at < $1", &[&cutoff])
        .await?;
    tx.execute("DELETE FROM message_ids WHERE created_at < $1", &[&cutoff])
        .await?;
    let mut expired = tx
        .execute("DELETE FROM challenges WHERE expires_at <= $1", &[&now])
        .await?;
    expired += tx
        .execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
        .await?;
    expired += tx
        .execute(
            "DELETE FROM claims WHERE at < $1",
            &[&now.saturating_sub(3600)],
        )
        .await?;
    expired += tx
        .execute("DELETE FROM attachments WHERE expires_at <= $1", &[&now])
        .await?;
    expired += tx
        .execute("DELETE FROM login_states WHERE expires_at <= $1", &[&now])
        .await?;
    let lockout = &super::LOCKOUT;
    expired += tx
        .execute(
            "DELETE FROM login_limits WHERE window_start + $2 <= $1 AND locked_until + $3 <= $1",
            &[
                &now,
                &to_i64(lockout.window_secs),
                &to_i64(lockout.memory_secs),
            ],
        )
        .await?;
    expired += tx
        .execute(
            "DELETE FROM discovery_quota WHERE day < $1",
            &[&(now / super::SECS_PER_DAY)],
        )
        .await?;
    let event_cutoff = now.saturating_sub(to_i64(super::EVENT_RETENTION_SECS));
    expired += tx
        .execute("DELETE FROM events WHERE at < $1", &[&event_cutoff])
        .await?;
    Ok(Swept { messages, expired })
}
