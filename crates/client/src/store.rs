//! The profile store: one SQLite database per profile, every record encrypted.
//!
//! A profile directory holds `profile.key` (the storage key sealed under the passphrase,
//! see [`crate::vault`]) and `profile.db`. The database has one table of records: a kind
//! (`"message"`, `"contact"`, `"mls_group"`, …), a keyed index of the record's logical key,
//! an optional keyed index of the group it belongs to (its conversation), a sort number,
//! an optional expiry time, and the value sealed with AES-256-GCM. Only kinds, counts,
//! sizes, sort numbers and expiry times are visible without the passphrase; see
//! `docs/development.md` ("Client profile store") for why this and not SQLCipher.
//!
//! SQLite runs with `secure_delete` (deleted records are overwritten in the file), in WAL
//! mode with `synchronous=FULL`, and with `temp_store=MEMORY` so that it never writes
//! temporary files. After deleting expired or burnt messages the WAL is checkpointed and
//! truncated, so their (encrypted) pages leave the log at once.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{de::DeserializeOwned, Serialize};
use sotto_core::backup::ScryptParams;
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};
use crate::vault::Vault;

/// File name of the sealed storage key.
pub const KEY_FILE: &str = "profile.key";
/// File name of the database.
pub const DB_FILE: &str = "profile.db";
/// Largest key file accepted.
const MAX_KEY_FILE: u64 = 16 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    grp BLOB,
    sort INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER,
    value BLOB NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_group ON records (kind, grp, sort);
CREATE INDEX IF NOT EXISTS records_by_expiry ON records (expires_at)
    WHERE expires_at IS NOT NULL;
PRAGMA user_version = 1;
";

/// Where a record lives: its kind, its logical key and (optionally) its group.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The kind of record.
    pub kind: &'static str,
    /// The parts of its logical key.
    pub key: &'a [&'a [u8]],
    /// The parts of the group it belongs to, for listing.
    pub group: Option<&'a [&'a [u8]]>,
}

impl<'a> Slot<'a> {
    /// A record with no group.
    pub fn new(kind: &'static str, key: &'a [&'a [u8]]) -> Self {
        Self {
            kind,
            key,
            group: None,
        }
    }

    /// A record that belongs to `group`.
    pub fn in_group(kind: &'static str, key: &'a [&'a [u8]], group: &'a [&'a [u8]]) -> Self {
        Self {
            kind,
            key,
            group: Some(group),
        }
    }
}

/// File name of the lock that keeps a profile to one process at a time.
pub const LOCK_FILE: &str = "profile.lock";

/// An open, unlocked profile store. While it is open, no other process can open the
/// profile: two processes would each hold MLS state in memory and overwrite the other's,
/// reusing message keys (messages then fail to decrypt at the receivers).
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    conn: Mutex<Connection>,
    vault: Vault,
    _lock: std::fs::File,
}

/// Takes the profile's lock, or explains who holds it.
fn lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    fs4::FileExt::try_lock(&file).map_err(|_| {
        ClientError::Store(format!(
            "the profile {} is in use by another sotto (a running `sotto chat` or `sync \
             --wait`, say); close it, or use that one",
            dir.display()
        ))
    })?;
    Ok(file)
}

impl Store {
    /// Creates a new profile in `dir` (created if missing) under `passphrase`.
    pub fn create(dir: &Path, passphrase: &[u8], params: ScryptParams) -> Result<Self> {
        let key_path = dir.join(KEY_FILE);
        if key_path.exists() {
            return Err(ClientError::ProfileExists(dir.display().to_string()));
        }
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        restrict_dir(dir)?;
        let lock = lock(dir)?;
        let (vault, sealed) = Vault::create(passphrase, params)?;
        // A database without a key file is a leftover of an interrupted creation, whose
        // records no key can open any more.
        for leftover in [DB_FILE, "profile.db-wal", "profile.db-shm"] {
            let path = dir.join(leftover);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            }
        }
        let conn = open_db(&dir.join(DB_FILE))?;
        // The key file is written last, through a temporary name: a profile exists
        // exactly when its key file does.
        let tmp = dir.join(format!("{KEY_FILE}.new"));
        std::fs::write(&tmp, &sealed).map_err(|e| io_error(&tmp, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&tmp, e))?;
        std::fs::rename(&tmp, &key_path).map_err(|e| io_error(&key_path, e))?;
        Ok(Self {
            dir: dir.to_owned(),
            conn: Mutex::new(conn),
            vault,
            _lock: lock,
        })
    }

    /// Opens the profile in `dir`. A wrong passphrase fails before anything is written.
    pub fn open(dir: &Path, passphrase: &[u8]) -> Result<Self> {
        let key_path = dir.join(KEY_FILE);
        let Ok(meta) = std::fs::metadata(&key_path) else {
            return Err(ClientError::NoProfile(dir.display().to_string()));
        };
        if meta.len() > MAX_KEY_FILE {
            return Err(ClientError::WrongPassphrase);
        }
        let sealed = Zeroizing::new(std::fs::read(&key_path).map_err(|e| io_error(&key_path, e))?);
        let vault = Vault::open(&sealed, passphrase)?;
        let lock = lock(dir)?;
        let conn = open_db(&dir.join(DB_FILE))?;
        Ok(Self {
            dir: dir.to_owned(),
            conn: Mutex::new(conn),
            vault,
            _lock: lock,
        })
    }

    /// True if `dir` holds a profile.
    pub fn exists(dir: &Path) -> bool {
        dir.join(KEY_FILE).exists()
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database connection, locked: pass it to the record functions, and hold it
    /// only briefly (every other user of the store waits).
    pub fn conn(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| ClientError::Store("the store lock was poisoned".into()))
    }

    fn index(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.vault.index(parts)
    }

    fn aad(kind: &str, key: &[u8; 32]) -> Vec<u8> {
        let mut aad = kind.as_bytes().to_vec();
        aad.push(0);
        aad.extend_from_slice(key);
        aad
    }

    /// Stores raw bytes in `slot`, replacing what was there.
    pub fn put_raw(
        &self,
        conn: &Connection,
        slot: Slot<'_>,
        sort: i64,
        expires_at: Option<u64>,
        value: &[u8],
    ) -> Result<()> {
        let key = self.index(slot.key);
        let group = slot.group.map(|g| self.index(g).to_vec());
        let sealed = self.vault.seal(&Self::aad(slot.kind, &key), value)?;
        let expires = expires_at.map(to_i64);
        conn.execute(
            "INSERT INTO records (kind, key, grp, sort, expires_at, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (kind, key) DO UPDATE SET grp = ?3, sort = ?4, expires_at = ?5, value = ?6",
            params![slot.kind, &key[..], group, sort, expires, sealed],
        )?;
        Ok(())
    }

    /// Stores `value` (as JSON) in `slot`.
    pub fn put<T: Serialize>(
        &self,
        conn: &Connection,
        slot: Slot<'_>,
        sort: i64,
        expires_at: Option<u64>,
        value: &T,
    ) -> Result<()> {
        let json = Zeroizing::new(serde_json::to_vec(value).map_err(ClientError::store)?);
        self.put_raw(conn, slot, sort, expires_at, &json)
    }

    /// The raw bytes in `slot`, if any.
    pub fn get_raw(&self, conn: &Connection, slot: Slot<'_>) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let key = self.index(slot.key);
        let sealed: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM records WHERE kind = ?1 AND key = ?2",
                params![slot.kind, &key[..]],
                |row| row.get(0),
            )
            .optional()?;
        sealed
            .map(|s| self.vault.open_record(&Self::aad(slot.kind, &key), &s))
            .transpose()
    }

    /// The value (JSON) in `slot`, if any.
    pub fn get<T: DeserializeOwned>(&self, conn: &Connection, slot: Slot<'_>) -> Result<Option<T>> {
        self.get_raw(conn, slot)?
            .map(|bytes| decode_record(&bytes))
            .transpose()
    }

    /// Deletes `slot`; true if it existed.
    pub fn delete(&self, conn: &Connection, slot: Slot<'_>) -> Result<bool> {
        let key = self.index(slot.key);
        let n = conn.execute(
            "DELETE FROM records WHERE kind = ?1 AND key = ?2",
            params![slot.kind, &key[..]],
        )?;
        Ok(n > 0)
    }

    /// Every record of `kind` (in `group`, if given), by sort number.
    pub fn list<T: DeserializeOwned>(
        &self,
        conn: &Connection,
        kind: &'static str,
        group: Option<&[&[u8]]>,
    ) -> Result<Vec<T>> {
        let group = group.map(|g| self.index(g).to_vec());
        let mut stmt = conn.prepare_cached(
            "SELECT key, value FROM records WHERE kind = ?1 AND (?2 IS NULL OR grp = ?2)
             ORDER BY sort, key",
        )?;
        let rows = stmt.query_map(params![kind, group], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, sealed) = row?;
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| ClientError::Store("a stored record has a malformed key".into()))?;
            let bytes = self.vault.open_record(&Self::aad(kind, &key), &sealed)?;
            out.push(decode_record(&bytes)?);
        }
        Ok(out)
    }

    /// Deletes every record of `kind` in `group`; returns how many.
    pub fn delete_group(
        &self,
        conn: &Connection,
        kind: &'static str,
        group: &[&[u8]],
    ) -> Result<usize> {
        let group = self.index(group);
        Ok(conn.execute(
            "DELETE FROM records WHERE kind = ?1 AND grp = ?2",
            params![kind, &group[..]],
        )?)
    }

    /// Deletes records of `kind` in `group` whose sort number is at most `max_sort`.
    pub fn delete_group_up_to(
        &self,
        conn: &Connection,
        kind: &'static str,
        group: &[&[u8]],
        max_sort: i64,
    ) -> Result<usize> {
        let group = self.index(group);
        Ok(conn.execute(
            "DELETE FROM records WHERE kind = ?1 AND grp = ?2 AND sort <= ?3",
            params![kind, &group[..], max_sort],
        )?)
    }

    /// The largest sort number of `kind` in `group`.
    pub fn max_sort(
        &self,
        conn: &Connection,
        kind: &'static str,
        group: &[&[u8]],
    ) -> Result<Option<i64>> {
        let group = self.index(group);
        Ok(conn.query_row(
            "SELECT MAX(sort) FROM records WHERE kind = ?1 AND grp = ?2",
            params![kind, &group[..]],
            |row| row.get(0),
        )?)
    }

    /// Deletes every record whose expiry time is at or before `now_ms`, then truncates the
    /// write-ahead log so the deleted pages leave it. Returns how many records went.
    pub fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        let conn = self.conn()?;
        let n = conn.execute(
            "DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            params![to_i64(now_ms)],
        )?;
        if n > 0 {
            checkpoint(&conn)?;
        }
        Ok(n)
    }

    /// The earliest expiry time in the store, if any record expires.
    pub fn next_expiry(&self) -> Result<Option<u64>> {
        let conn = self.conn()?;
        let next: Option<i64> =
            conn.query_row("SELECT MIN(expires_at) FROM records", [], |row| row.get(0))?;
        Ok(next.map(|n| u64::try_from(n).unwrap_or(0)))
    }

    /// Truncates the write-ahead log (after deletions) and compacts the database.
    pub fn compact(&self) -> Result<()> {
        let conn = self.conn()?;
        checkpoint(&conn)?;
        conn.execute_batch("VACUUM")?;
        checkpoint(&conn)
    }
}

/// Copies the WAL into the database and truncates it to zero bytes.
pub(crate) fn checkpoint(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Decodes an opened record's JSON (a [`crate::model`] value): malformed bytes are a
/// [`ClientError::Store`], never a panic. Public for the fuzz targets and property tests.
#[doc(hidden)]
pub fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|_| ClientError::Store("a stored record could not be decoded".into()))
}

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn open_db(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;",
    )?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = FULL;")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > 1 {
        return Err(ClientError::Store(format!(
            "the profile was written by a newer Sotto (schema {version}); upgrade sotto"
        )));
    }
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn io_error(path: &Path, e: std::io::Error) -> ClientError {
    ClientError::Store(format!("{}: {e}", path.display()))
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io_error(dir, e))
}

#[cfg(not(unix))]
fn restrict_dir(_dir: &Path) -> Result<()> {
    Ok(())
}
