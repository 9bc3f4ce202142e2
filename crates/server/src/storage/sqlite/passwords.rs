//! Password records, pending logins and the lockout on SQLite.
//!
//! The one connection serialises transactions, so a login start reads and updates its
//! username's lockout row without interference.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use zeroize::Zeroizing;

use super::{record, SqliteStore};
use crate::storage::{
    to_i64, to_u64, Event, LoginGate, LoginLimit, Passwords, PendingLogin, StoreError, LOCKOUT,
};

fn put_password(
    conn: &mut Connection,
    username: &str,
    record: &[u8],
    backup: &[u8],
    now: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO passwords (username, record, backup, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (username) DO UPDATE
         SET record = excluded.record, backup = excluded.backup, updated_at = excluded.updated_at",
        params![username, record, backup, to_i64(now)],
    )?;
    tx.execute("DELETE FROM login_states WHERE username = ?1", [username])?;
    tx.commit()?;
    Ok(())
}

fn limit(tx: &Transaction<'_>, username: &str) -> Result<Option<LoginLimit>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT failures, window_start, locked_until, lockouts FROM login_limits
             WHERE username = ?1",
            [username],
            |r| {
                Ok(LoginLimit {
                    failures: r.get(0)?,
                    window_start: to_u64(r.get(1)?),
                    locked_until: to_u64(r.get(2)?),
                    lockouts: r.get(3)?,
                })
            },
        )
        .optional()?)
}

fn begin_login(conn: &mut Connection, username: &str, now: u64) -> Result<LoginGate, StoreError> {
    let tx = conn.transaction()?;
    let current = limit(&tx, username)?.unwrap_or_default();
    let next = match LOCKOUT.attempt(current, now) {
        Ok(next) => next,
        Err(until) => return Ok(LoginGate::Locked { until }),
    };
    tx.execute(
        "INSERT INTO login_limits (username, failures, window_start, locked_until, lockouts)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (username) DO UPDATE SET failures = ?2, window_start = ?3,
         locked_until = ?4, lockouts = ?5",
        params![
            username,
            next.failures,
            to_i64(next.window_start),
            to_i64(next.locked_until),
            next.lockouts
        ],
    )?;
    let record = tx
        .query_row(
            "SELECT record FROM passwords WHERE username = ?1",
            [username],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()?
        .map(Zeroizing::new);
    tx.commit()?;
    Ok(LoginGate::Open(record))
}

fn take_login(
    conn: &mut Connection,
    id_hash: &[u8],
    now: u64,
) -> Result<Option<PendingLogin>, StoreError> {
    let tx = conn.transaction()?;
    let row = tx
        .query_row(
            "DELETE FROM login_states WHERE id_hash = ?1
             RETURNING username, state, expires_at",
            [id_hash],
            |r| {
                Ok(PendingLogin {
                    id_hash: id_hash.to_vec(),
                    username: r.get(0)?,
                    state: r.get(1)?,
                    expires_at: to_u64(r.get(2)?),
                })
            },
        )
        .optional()?;
    tx.commit()?;
    Ok(row.filter(|login| login.expires_at > now))
}

fn complete_login(
    conn: &mut Connection,
    username: &str,
    actor: &str,
    now: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM login_limits WHERE username = ?1", [username])?;
    let backup = tx
        .query_row(
            "SELECT backup FROM passwords WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()?;
    if backup.is_some() {
        record(&tx, Event::PasswordLogin, actor, now)?;
    }
    tx.commit()?;
    Ok(backup)
}

#[async_trait]
impl Passwords for SqliteStore {
    async fn put_password(
        &self,
        username: &str,
        record: &[u8],
        backup: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        let (username, record, backup) = (
            username.to_owned(),
            Zeroizing::new(record.to_vec()),
            backup.to_vec(),
        );
        self.run(move |c| put_password(c, &username, &record, &backup, now))
            .await
    }

    async fn put_backup(&self, username: &str, backup: &[u8], now: u64) -> Result<(), StoreError> {
        let (username, backup) = (username.to_owned(), backup.to_vec());
        self.run(move |c| {
            let updated = c.execute(
                "UPDATE passwords SET backup = ?2, updated_at = ?3 WHERE username = ?1",
                params![username, backup, to_i64(now)],
            )?;
            if updated == 1 {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
    }

    async fn begin_login(&self, username: &str, now: u64) -> Result<LoginGate, StoreError> {
        let username = username.to_owned();
        self.run(move |c| begin_login(c, &username, now)).await
    }

    async fn put_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        let login = login.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO login_states (id_hash, username, state, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    login.id_hash,
                    login.username,
                    login.state,
                    to_i64(login.expires_at)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_login(
        &self,
        id_hash: &[u8],
        now: u64,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let id_hash = id_hash.to_vec();
        self.run(move |c| take_login(c, &id_hash, now)).await
    }

    async fn complete_login(
        &self,
        username: &str,
        actor: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (username, actor) = (username.to_owned(), actor.to_owned());
        self.run(move |c| complete_login(c, &username, &actor, now))
            .await
    }

    async fn login_limit(&self, username: &str) -> Result<Option<LoginLimit>, StoreError> {
        let username = username.to_owned();
        self.run(move |c| {
            let tx = c.transaction()?;
            let found = limit(&tx, &username)?;
            tx.commit()?;
            Ok(found)
        })
        .await
    }
}
