//! The server's storage on embedded SQLite.
//!
//! One database file in the data directory, migrated with `PRAGMA user_version`, in WAL
//! mode with `secure_delete` on (deleted rows are overwritten, not left in free pages).
//! It holds only public material: user ids, root public keys and device certificates.
//! Calls are synchronous; the HTTP layer runs them on the blocking pool.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};

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
];

/// How long account events are kept: 7 days.
pub const EVENT_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// Kinds of account events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An account was registered.
    Registration,
    /// A device logged in.
    Login,
    /// A message was sent.
    MessageSent,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Registration => "registration",
            Event::Login => "login",
            Event::MessageSent => "message_sent",
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row already exists with other contents.
    #[error("already exists")]
    Conflict,
    /// The named account does not exist.
    #[error("not found")]
    NotFound,
    /// The acting device may not do this.
    #[error("forbidden")]
    Forbidden,
    /// A stored value is not one this server writes.
    #[error("corrupt row in the database")]
    Corrupt,
    /// Too many requests of this kind in the current window.
    #[error("rate limited")]
    RateLimited,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database was written by a newer version of the server.
    #[error("database schema version {0} is newer than this server understands")]
    TooNew(i64),
}

/// An account as stored: its root key and devices `(device id, certificate)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// The user's root public key.
    pub root_public_key: Vec<u8>,
    /// `(device id, certificate)`, ordered by device id.
    pub devices: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Whether [`Store::put_device`] stored something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// A new row.
    Created,
    /// The same row was already there.
    Unchanged,
}

/// The SQLite store.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every write is one
        // transaction), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks that the database answers.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Registers an account, and records the registration event in the same transaction;
    /// [`StoreError::Conflict`] if the user id is taken.
    pub fn create_account(&self, username: &str, root: &[u8], now: u64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO accounts (username, root_public_key, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (username) DO NOTHING",
            params![username, root, now_i64(now)],
        )?;
        if inserted != 1 {
            return Err(StoreError::Conflict);
        }
        tx.execute(
            "INSERT INTO events (at, kind, sender) VALUES (?1, ?2, ?3)",
            params![now_i64(now), Event::Registration.as_str(), username],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// An account and its devices, if it exists.
    pub fn account(&self, username: &str) -> Result<Option<AccountRow>, StoreError> {
        let conn = self.conn();
        let Some(root_public_key) = conn
            .query_row(
                "SELECT root_public_key FROM accounts WHERE username = ?1",
                [username],
                |row| row.get::<_, Vec<u8>>(0),
            )
            .optional()?
        else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT device_id, certificate FROM devices WHERE username = ?1 ORDER BY device_id",
        )?;
        let devices = stmt
            .query_map([username], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(AccountRow {
            root_public_key,
            devices,
        }))
    }

    /// Stores a device certificate (already verified by the caller). The same certificate
    /// again is [`Put::Unchanged`]; another certificate for the same device id is a conflict.
    pub fn put_device(
        &self,
        username: &str,
        device_id: &[u8],
        certificate: &[u8],
        now: u64,
    ) -> Result<Put, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: Option<Vec<u8>> = tx
            .query_row(
                "SELECT certificate FROM devices WHERE username = ?1 AND device_id = ?2",
                params![username, device_id],
                |row| row.get(0),
            )
            .optional()?;
        let revoked: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM revoked WHERE username = ?1 AND device_id = ?2)",
            params![username, device_id],
            |row| row.get(0),
        )?;
        if revoked {
            return Err(StoreError::Conflict);
        }
        let put = match existing {
            Some(stored) if stored == certificate => Put::Unchanged,
            Some(_) => return Err(StoreError::Conflict),
            None => {
                tx.execute(
                    "INSERT INTO devices (username, device_id, certificate, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![username, device_id, certificate, now_i64(now)],
                )?;
                Put::Created
            }
        };
        tx.commit()?;
        Ok(put)
    }
}

/// A device, as named in challenges and sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    /// The user id.
    pub username: String,
    /// The device id.
    pub device_id: Vec<u8>,
}

impl Store {
    /// The certificate registered for a device, if any.
    pub fn device_certificate(&self, device: &DeviceRef) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT certificate FROM devices WHERE username = ?1 AND device_id = ?2",
                params![device.username, device.device_id],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Stores a fresh challenge for `device`, valid until `expires_at` (the sweeper deletes
    /// expired ones).
    pub fn put_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO challenges (challenge, username, device_id, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                challenge,
                device.username,
                device.device_id,
                now_i64(expires_at)
            ],
        )?;
        Ok(())
    }

    /// Takes (deletes and returns) a challenge issued to `device` that has not expired: a
    /// challenge can be answered once.
    pub fn take_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        now: u64,
    ) -> Result<bool, StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM challenges WHERE challenge = ?1 AND username = ?2 AND device_id = ?3
             AND expires_at > ?4",
            params![challenge, device.username, device.device_id, now_i64(now)],
        )?;
        Ok(deleted == 1)
    }

    /// Records a session under the hash of its token.
    pub fn put_session(
        &self,
        token_hash: &[u8],
        device: &DeviceRef,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO sessions (token_hash, username, device_id, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                token_hash,
                device.username,
                device.device_id,
                now_i64(expires_at)
            ],
        )?;
        Ok(())
    }

    /// The device of an unexpired session, by the hash of its token.
    pub fn session(&self, token_hash: &[u8], now: u64) -> Result<Option<DeviceRef>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT username, device_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, now_i64(now)],
                |row| {
                    Ok(DeviceRef {
                        username: row.get(0)?,
                        device_id: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }
}

/// A KeyPackage handed out by [`Store::claim_key_packages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The device it belongs to.
    pub device_id: Vec<u8>,
    /// The KeyPackage.
    pub key_package: Vec<u8>,
    /// Whether it is the device's last-resort KeyPackage (served again until replaced).
    pub last_resort: bool,
}

/// A device's view of its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// One-time KeyPackages left.
    pub available: u64,
    /// Whether a last-resort KeyPackage is on file.
    pub has_last_resort: bool,
    /// Whether the last-resort KeyPackage was served since the device last looked.
    pub last_resort_used: bool,
}

impl Store {
    /// Adds one-time KeyPackages (and optionally replaces the last-resort one) for a
    /// device, refusing to grow its pool beyond `max_pool`.
    pub fn add_key_packages(
        &self,
        device: &DeviceRef,
        one_time: &[Vec<u8>],
        last_resort: Option<&[u8]>,
        max_pool: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let have: u64 = tx.query_row(
            "SELECT COUNT(*) FROM key_packages WHERE username = ?1 AND device_id = ?2 AND last_resort = 0",
            params![device.username, device.device_id],
            |row| row.get(0),
        )?;
        if have + one_time.len() as u64 > max_pool {
            return Err(StoreError::Conflict);
        }
        for kp in one_time {
            tx.execute(
                "INSERT INTO key_packages (username, device_id, key_package, last_resort, created_at)
                 VALUES (?1, ?2, ?3, 0, ?4)",
                params![device.username, device.device_id, kp, now_i64(now)],
            )?;
        }
        if let Some(kp) = last_resort {
            tx.execute(
                "DELETE FROM key_packages WHERE username = ?1 AND device_id = ?2 AND last_resort = 1",
                params![device.username, device.device_id],
            )?;
            tx.execute(
                "INSERT INTO key_packages (username, device_id, key_package, last_resort, created_at)
                 VALUES (?1, ?2, ?3, 1, ?4)",
                params![device.username, device.device_id, kp, now_i64(now)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The pool of a device; reading it clears the last-resort notice.
    pub fn pool_status(&self, device: &DeviceRef) -> Result<PoolStatus, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let count = |last_resort: i64| -> Result<u64, rusqlite::Error> {
            tx.query_row(
                "SELECT COUNT(*) FROM key_packages WHERE username = ?1 AND device_id = ?2 AND last_resort = ?3",
                params![device.username, device.device_id, last_resort],
                |row| row.get(0),
            )
        };
        let (available, last) = (count(0)?, count(1)?);
        let used = tx.execute(
            "DELETE FROM last_resort_used WHERE username = ?1 AND device_id = ?2",
            params![device.username, device.device_id],
        )?;
        tx.commit()?;
        Ok(PoolStatus {
            available,
            has_last_resort: last > 0,
            last_resort_used: used > 0,
        })
    }

    /// Hands out one KeyPackage for each device of `target`, for `requester`: a one-time
    /// KeyPackage, deleted in the same transaction so it is never served twice, or else the
    /// device's last-resort KeyPackage (and the device is told). Refused with
    /// [`StoreError::RateLimited`] if `requester` already claimed `max_claims` times for
    /// `target` since `window_start`.
    pub fn claim_key_packages(
        &self,
        requester: &str,
        target: &str,
        max_claims: u64,
        window_start: u64,
        now: u64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM claims WHERE at < ?1", [now_i64(window_start)])?;
        let recent: u64 = tx.query_row(
            "SELECT COUNT(*) FROM claims WHERE requester = ?1 AND target = ?2",
            params![requester, target],
            |row| row.get(0),
        )?;
        if recent >= max_claims {
            return Err(StoreError::RateLimited);
        }
        tx.execute(
            "INSERT INTO claims (requester, target, at) VALUES (?1, ?2, ?3)",
            params![requester, target, now_i64(now)],
        )?;
        let devices: Vec<Vec<u8>> = tx
            .prepare("SELECT device_id FROM devices WHERE username = ?1 ORDER BY device_id")?
            .query_map([target], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(devices.len());
        for device_id in devices {
            let pick = tx
                .query_row(
                    "SELECT id, key_package, last_resort FROM key_packages
                     WHERE username = ?1 AND device_id = ?2 ORDER BY last_resort, id LIMIT 1",
                    params![target, device_id],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Vec<u8>>(1)?,
                            row.get::<_, bool>(2)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, key_package, last_resort)) = pick else {
                continue;
            };
            if last_resort {
                tx.execute(
                    "INSERT OR IGNORE INTO last_resort_used (username, device_id) VALUES (?1, ?2)",
                    params![target, device_id],
                )?;
            } else {
                tx.execute("DELETE FROM key_packages WHERE id = ?1", [id])?;
            }
            out.push(Claimed {
                device_id,
                key_package,
                last_resort,
            });
        }
        tx.commit()?;
        Ok(out)
    }
}

impl Store {
    /// Records an account event: its time, kind and the acting user, nothing else.
    pub fn record(&self, event: Event, sender: &str, now: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO events (at, kind, sender) VALUES (?1, ?2, ?3)",
            params![now_i64(now), event.as_str(), sender],
        )?;
        Ok(())
    }

    /// All account events `(at, kind, sender)`, oldest first (for audits and tests).
    pub fn events(&self) -> Result<Vec<(u64, String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT at, kind, sender FROM events ORDER BY at, rowid")?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(at, kind, sender)| (u64::try_from(at).unwrap_or(0), kind, sender))
            .collect())
    }

    /// Revokes a device: removes its certificate, sessions, challenges, KeyPackages and
    /// undelivered mail, and bars its id for good. [`StoreError::NotFound`] if unknown.
    pub fn revoke_device(&self, device: &DeviceRef) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let p = params![device.username, device.device_id];
        if tx.execute(
            "DELETE FROM devices WHERE username = ?1 AND device_id = ?2",
            p,
        )? == 0
        {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "INSERT OR IGNORE INTO revoked (username, device_id) VALUES (?1, ?2)",
            p,
        )?;
        for table in [
            "sessions",
            "challenges",
            "key_packages",
            "last_resort_used",
            "mailbox",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE username = ?1 AND device_id = ?2"),
                p,
            )?;
        }
        tx.execute(
            "DELETE FROM log WHERE NOT EXISTS (SELECT 1 FROM mailbox m
             WHERE m.conversation = log.conversation AND m.seq = log.seq)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }
}

fn now_i64(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
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
