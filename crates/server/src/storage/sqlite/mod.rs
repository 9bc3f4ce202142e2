//! The embedded SQLite back-end.
//!
//! One database file in the data directory, migrated with `PRAGMA user_version`, in WAL
//! mode with `synchronous = FULL` (a write is on disk before it is acknowledged) and
//! `secure_delete` on (deleted rows are overwritten, not left in free pages). One writer
//! connection, on a thread of its own, serialises writes, which SQLite does anyway, and
//! commits concurrent appends and acknowledgements together; reads run beside it on
//! reader connections ([`connections`]). The async workers never wait on the disk.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, Connection};

use super::{to_i64, to_u64, EventRow, Events, Maintenance, StoreError, Swept};

mod accounts;
mod connections;
mod delivery;
mod directory;
mod key_packages;
mod passwords;

/// The schema, one entry per version; `user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: accounts and their devices.
    "CREATE TABLE accounts (
         username        TEXT PRIMARY KEY,
         root_public_key BLOB NOT NULL,
         created_at      INTEGER NOT NULL
     );
     CREATE TABLE devices (
         username    TEXT NOT NULL REFERENCES accounts(username),
         device_id   BLOB NOT NULL,
         certificate BLOB NOT NULL,
         created_at  INTEGER NOT NULL,
         PRIMARY KEY (username, device_id)
     );",
    // 2: device authentication: one-use challenges and sessions (tokens stored hashed).
    "CREATE TABLE challenges (
         challenge  BLOB PRIMARY KEY,
         username   TEXT NOT NULL,
         device_id  BLOB NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE TABLE sessions (
         token_hash BLOB PRIMARY KEY,
         username   TEXT NOT NULL,
         device_id  BLOB NOT NULL,
         expires_at INTEGER NOT NULL
     );",
    // 3: the KeyPackage pool, the last-resort notice, and the claim log for rate limits.
    "CREATE TABLE key_packages (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         username    TEXT NOT NULL,
         device_id   BLOB NOT NULL,
         key_package BLOB NOT NULL,
         last_resort INTEGER NOT NULL,
         created_at  INTEGER NOT NULL
     );
     CREATE INDEX key_packages_by_device ON key_packages (username, device_id, last_resort);
     CREATE TABLE last_resort_used (
         username  TEXT NOT NULL,
         device_id BLOB NOT NULL,
         PRIMARY KEY (username, device_id)
     );
     CREATE TABLE claims (
         requester TEXT NOT NULL,
         target    TEXT NOT NULL,
         at        INTEGER NOT NULL
     );
     CREATE INDEX claims_by_pair ON claims (requester, target, at);",
    // 4: delivery: each conversation's ordered log, and per-device mailboxes pointing
    // into it. A log entry is deleted once no mailbox refers to it any more.
    "CREATE TABLE conversations (
         id    BLOB PRIMARY KEY,
         epoch INTEGER NOT NULL,
         next  INTEGER NOT NULL
     );
     CREATE TABLE log (
         conversation BLOB NOT NULL,
         seq          INTEGER NOT NULL,
         kind         INTEGER NOT NULL,
         message_id   BLOB NOT NULL,
         payload      BLOB NOT NULL,
         created_at   INTEGER NOT NULL,
         PRIMARY KEY (conversation, seq),
         UNIQUE (conversation, message_id)
     );
     CREATE TABLE mailbox (
         id           INTEGER PRIMARY KEY AUTOINCREMENT,
         username     TEXT NOT NULL,
         device_id    BLOB NOT NULL,
         conversation BLOB NOT NULL,
         seq          INTEGER NOT NULL
     );
     CREATE INDEX mailbox_by_device ON mailbox (username, device_id, id);
     CREATE INDEX mailbox_by_entry ON mailbox (conversation, seq);",
    // 5: revoked device ids, never registered again.
    "CREATE TABLE revoked (
         username  TEXT NOT NULL,
         device_id BLOB NOT NULL,
         PRIMARY KEY (username, device_id)
     );",
    // 6: the account-event log: time, kind and the acting user only — never a client
    // address, never a recipient. Kept EVENT_RETENTION_SECS.
    "CREATE TABLE events (
         at     INTEGER NOT NULL,
         kind   TEXT NOT NULL,
         sender TEXT NOT NULL
     );
     CREATE INDEX events_by_time ON events (at);",
    // 7: the devices of each conversation, from its latest commit: only they may post.
    "CREATE TABLE members (
         conversation BLOB NOT NULL,
         username     TEXT NOT NULL,
         device_id    BLOB NOT NULL,
         PRIMARY KEY (conversation, username, device_id)
     );",
    // 8: settings the server creates once; published contact hashes and the daily
    // look-up allowance (looked-up hashes are never stored); attachment blobs.
    "CREATE TABLE settings (
         name  TEXT PRIMARY KEY,
         value BLOB NOT NULL
     );
     CREATE TABLE contacts (
         hash     BLOB NOT NULL,
         username TEXT NOT NULL,
         PRIMARY KEY (hash, username)
     );
     CREATE INDEX contacts_by_user ON contacts (username);
     CREATE TABLE discovery_quota (
         username TEXT NOT NULL,
         day      INTEGER NOT NULL,
         used     INTEGER NOT NULL,
         PRIMARY KEY (username, day)
     );
     CREATE TABLE attachments (
         id         BLOB PRIMARY KEY,
         owner      TEXT NOT NULL,
         token_hash BLOB NOT NULL,
         blob       BLOB NOT NULL,
         size       INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE INDEX attachments_by_owner ON attachments (owner);
     CREATE INDEX attachments_by_expiry ON attachments (expires_at);",
    // 9: message ids seen per conversation, kept for the retention so that a resend of a
    // message already delivered and acknowledged (its log entry deleted) is still
    // recognised as a duplicate rather than delivered again.
    "CREATE TABLE message_ids (
         conversation BLOB NOT NULL,
         message_id   BLOB NOT NULL,
         seq          INTEGER NOT NULL,
         created_at   INTEGER NOT NULL,
         PRIMARY KEY (conversation, message_id)
     );
     CREATE INDEX message_ids_by_time ON message_ids (created_at);",
    // 10: password login: each account's OPAQUE record and sealed root-key backup; logins
    // between start and finish (server state encrypted, by the hash of the login id);
    // the per-username lockout (also for usernames that have no account).
    "CREATE TABLE passwords (
         username   TEXT PRIMARY KEY REFERENCES accounts(username),
         record     BLOB NOT NULL,
         backup     BLOB NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE TABLE login_states (
         id_hash    BLOB PRIMARY KEY,
         username   TEXT NOT NULL,
         state      BLOB NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE INDEX login_states_by_user ON login_states (username);
     CREATE INDEX login_states_by_expiry ON login_states (expires_at);
     CREATE TABLE login_limits (
         username     TEXT PRIMARY KEY,
         failures     INTEGER NOT NULL,
         window_start INTEGER NOT NULL,
         locked_until INTEGER NOT NULL,
         lockouts     INTEGER NOT NULL
     );",
];

/// The SQLite store: the writer thread's queue and the reader connections, shared.
#[derive(Clone)]
pub struct SqliteStore {
    writer: connections::Writer,
    readers: Arc<connections::Readers>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        connections::stable_plans(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&conn)?;
        Ok(Self {
            writer: connections::Writer::start(conn)?,
            readers: Arc::new(connections::Readers::new(path)),
        })
    }

    /// Runs `f` alone on the writer connection (it may open its own transaction).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.exclusive(f).await
    }

    /// Runs the write `f` in the writer's next group commit: inside a savepoint of a
    /// transaction shared with other writes, rolled back alone if `f` fails; answers once
    /// that transaction is committed. `f` must not open or end transactions.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.batched(f).await
    }

    /// Runs the read `f` in one read transaction on a reader connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.readers.read(f).await
    }
}

/// One process owns a SQLite database: the hub's direct wake-ups are all there is.
#[async_trait]
impl super::Wakeups for SqliteStore {
    async fn announce(&self, _devices: &[super::DeviceRef]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<super::Wakeup>> {
        None
    }
}

#[async_trait]
impl Events for SqliteStore {
    async fn events(&self) -> Result<Vec<EventRow>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT at, kind, sender FROM events ORDER BY at, rowid")?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(EventRow {
                        at: to_u64(row.get(0)?),
                        kind: row.get(1)?,
                        actor: row.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

#[async_trait]
impl Maintenance for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn sweep(&self, now: u64, retention_secs: u64) -> Result<Swept, StoreError> {
        self.run(move |conn| sweep(conn, now, retention_secs)).await
    }
}

/// Records an account event inside the transaction open on `tx`.
fn record(tx: &Connection, event: super::Event, actor: &str, now: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events (at, kind, sender) VALUES (?1, ?2, ?3)",
        params![to_i64(now), event.as_str(), actor],
    )?;
    Ok(())
}

fn sweep(conn: &mut Connection, now: u64, retention_secs: u64) -> Result<Swept, StoreError> {
    let cutoff = to_i64(now.saturating_sub(retention_secs));
    let now = to_i64(now);
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM mailbox WHERE EXISTS (SELECT 1 FROM log l WHERE l.conversation =
         mailbox.conversation AND l.seq = mailbox.seq AND l.created_at < ?1)",
        [cutoff],
    )?;
    let messages = tx.execute("DELETE FROM log WHERE created_at < ?1", [cutoff])?;
    tx.execute("DELETE FROM message_ids WHERE created_at < ?1", [cutoff])?;
    let mut expired = tx.execute("DELETE FROM challenges WHERE expires_at <= ?1", [now])?;
    expired += tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
    expired += tx.execute(
        "DELETE FROM claims WHERE at < ?1",
        [now.saturating_sub(3600)],
    )?;
    expired += tx.execute("DELETE FROM attachments WHERE expires_at <= ?1", [now])?;
    expired += tx.execute("DELETE FROM login_states WHERE expires_at <= ?1", [now])?;
    let lockout = &super::LOCKOUT;
    expired += tx.execute(
        "DELETE FROM login_limits WHERE window_start + ?2 <= ?1 AND locked_until + ?3 <= ?1",
        params![
            now,
            to_i64(lockout.window_secs),
            to_i64(lockout.memory_secs)
        ],
    )?;
    expired += tx.execute(
        "DELETE FROM discovery_quota WHERE day < ?1",
        [now / super::SECS_PER_DAY],
    )?;
    let event_cutoff = now.saturating_sub(to_i64(super::EVENT_RETENTION_SECS));
    expired += tx.execute("DELETE FROM events WHERE at < ?1", [event_cutoff])?;
    tx.commit()?;
    Ok(Swept {
        messages: messages as u64,
        expired: expired as u64,
    })
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version > known {
        return Err(StoreError::TooNew(version));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
