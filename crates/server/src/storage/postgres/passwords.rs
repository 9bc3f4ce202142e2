//! Password records, pending logins and the lockout on PostgreSQL.
//!
//! A login start makes sure its username has a lockout row, locks it (`FOR UPDATE`), and
//! only then decides and counts: concurrent starts for one username, on any number of
//! servers, are counted one after the other, so no more than the policy allows get
//! through. A pending login is taken by a `DELETE … RETURNING`: of two concurrent
//! finishes with the same login id, the second finds nothing.

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{record, PostgresStore, Transaction};
use crate::storage::{
    to_i64, to_u64, Event, LoginGate, LoginLimit, Passwords, PendingLogin, StoreError, LOCKOUT,
};

/// Everything a password registration stores.
struct NewPassword<'a> {
    username: &'a str,
    record: &'a [u8],
    backup: &'a [u8],
    now: i64,
}

async fn put_password(tx: &Transaction<'_>, p: &NewPassword<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO passwords (username, record, backup, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO UPDATE
         SET record = EXCLUDED.record, backup = EXCLUDED.backup, updated_at = EXCLUDED.updated_at",
        &[&p.username, &p.record, &p.backup, &p.now],
    )
    .await?;
    tx.execute(
        "DELETE FROM login_states WHERE username = $1",
        &[&p.username],
    )
    .await?;
    Ok(())
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn limit_of(row: &tokio_postgres::Row) -> Result<LoginLimit, StoreError> {
    Ok(LoginLimit {
        failures: to_u32(row.try_get(0)?),
        window_start: to_u64(row.try_get(1)?),
        locked_until: to_u64(row.try_get(2)?),
        lockouts: to_u32(row.try_get(3)?),
    })
}

async fn begin_login(
    tx: &Transaction<'_>,
    (username, now): &(&str, u64),
) -> Result<LoginGate, StoreError> {
    tx.execute(
        "INSERT INTO login_limits (username, failures, window_start, locked_until, lockouts)
         VALUES ($1, 0, 0, 0, 0) ON CONFLICT (username) DO NOTHING",
        &[username],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT failures, window_start, locked_until, lockouts FROM login_limits
             WHERE username = $1 FOR UPDATE",
            &[username],
        )
        .await?;
    let next = match LOCKOUT.attempt(limit_of(&row)?, *now) {
        Ok(next) => next,
        Err(until) => return Ok(LoginGate::Locked { until }),
    };
    tx.execute(
        "UPDATE login_limits SET failures = $2, window_start = $3, locked_until = $4,
         lockouts = $5 WHERE username = $1",
        &[
            username,
            &i64::from(next.failures),
            &to_i64(next.window_start),
            &to_i64(next.locked_until),
            &i64::from(next.lockouts),
        ],
    )
    .await?;
    let record = tx
        .query_opt(
            "SELECT record FROM passwords WHERE username = $1",
            &[username],
        )
        .await?
        .map(|r| r.try_get::<_, Vec<u8>>(0).map(Zeroizing::new))
        .transpose()?;
    Ok(LoginGate::Open(record))
}

async fn complete_login(
    tx: &Transaction<'_>,
    (username, actor, now): &(&str, &str, u64),
) -> Result<Option<Vec<u8>>, StoreError> {
    tx.execute("DELETE FROM login_limits WHERE username = $1", &[username])
        .await?;
    let backup = tx
        .query_opt(
            "SELECT backup FROM passwords WHERE username = $1",
            &[username],
        )
        .await?
        .map(|r| r.try_get::<_, Vec<u8>>(0))
        .transpose()?;
    if backup.is_some() {
        record(tx, Event::PasswordLogin, actor, *now).await?;
    }
    Ok(backup)
}

#[async_trait]
impl Passwords for PostgresStore {
    async fn put_password(
        &self,
        username: &str,
        record: &[u8],
        backup: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        let p = NewPassword {
            username,
            record,
            backup,
            now: to_i64(now),
        };
        self.transact(&p, |tx, p| Box::pin(put_password(tx, p)))
            .await
    }

    async fn put_backup(&self, username: &str, backup: &[u8], now: u64) -> Result<(), StoreError> {
        let updated = self
            .client()
            .await?
            .execute(
                "UPDATE passwords SET backup = $2, updated_at = $3 WHERE username = $1",
                &[&username, &backup, &to_i64(now)],
            )
            .await?;
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn begin_login(&self, username: &str, now: u64) -> Result<LoginGate, StoreError> {
        self.transact(&(username, now), |tx, args| Box::pin(begin_login(tx, args)))
            .await
    }

    async fn put_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO login_states (id_hash, username, state, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &login.id_hash,
                    &login.username,
                    &login.state,
                    &to_i64(login.expires_at),
                ],
            )
            .await?;
        Ok(())
    }

    async fn take_login(
        &self,
        id_hash: &[u8],
        now: u64,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM login_states WHERE id_hash = $1
                 RETURNING username, state, expires_at",
                &[&id_hash],
            )
            .await?;
        let login = row
            .map(|r| {
                Ok::<_, StoreError>(PendingLogin {
                    id_hash: id_hash.to_vec(),
                    username: r.try_get(0)?,
                    state: r.try_get(1)?,
                    expires_at: to_u64(r.try_get(2)?),
                })
            })
            .transpose()?;
        Ok(login.filter(|login| login.expires_at > now))
    }

    async fn complete_login(
        &self,
        username: &str,
        actor: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.transact(&(username, actor, now), |tx, args| {
            Box::pin(complete_login(tx, args))
        })
        .await
    }

    async fn login_limit(&self, username: &str) -> Result<Option<LoginLimit>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT failures, window_start, locked_until, lockouts FROM login_limits
                 WHERE username = $1",
                &[&username],
            )
            .await?;
        row.as_ref().map(limit_of).transpose()
    }
}
