//! Settings, contact discovery and attachments on PostgreSQL.
//!
//! A setting is inserted with `ON CONFLICT DO NOTHING` and read back, so servers racing
//! to create one all use the first stored. A look-up locks its requester's allowance row
//! for the day, so concurrent look-ups are charged one by one; an attachment upload locks
//! its owner's allowance the same way (an advisory lock on the owner), so the per-user
//! cap holds under concurrent uploads.

use async_trait::async_trait;

use super::{PostgresStore, Transaction};
use crate::storage::{to_i64, to_u64, AttachmentRow, Attachments, Discovery, Settings, StoreError};

/// The first key of the advisory locks on attachment owners.
const ATTACHMENT_LOCK_CLASS: i32 = 0x5341_5454; // "SATT"

async fn setting(
    tx: &Transaction<'_>,
    (name, fresh): &(&str, &[u8]),
) -> Result<Vec<u8>, StoreError> {
    tx.execute(
        "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[name, fresh],
    )
    .await?;
    Ok(tx
        .query_one("SELECT value FROM settings WHERE name = $1", &[name])
        .await?
        .try_get(0)?)
}

#[async_trait]
impl Settings for PostgresStore {
    async fn setting_or_insert(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.transact(&(name, fresh), |tx, args| Box::pin(setting(tx, args)))
            .await
    }
}

async fn publish(
    tx: &Transaction<'_>,
    (username, hashes): &(&str, &[Vec<u8>]),
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM contacts WHERE username = $1", &[username])
        .await?;
    tx.execute(
        "INSERT INTO contacts (hash, username) SELECT DISTINCT h, $2::text
         FROM unnest($1::bytea[]) AS t (h) ON CONFLICT DO NOTHING",
        &[hashes, username],
    )
    .await?;
    Ok(())
}

/// Everything a look-up needs.
struct Lookup<'a> {
    requester: &'a str,
    hashes: &'a [Vec<u8>],
    day: i64,
    max_per_day: u64,
}

type Matches = (Vec<(Vec<u8>, String)>, u64);

async fn lookup(tx: &Transaction<'_>, q: &Lookup<'_>) -> Result<Matches, StoreError> {
    tx.execute(
        "INSERT INTO discovery_quota (username, day, used) VALUES ($1, $2, 0)
         ON CONFLICT (username, day) DO NOTHING",
        &[&q.requester, &q.day],
    )
    .await?;
    let used: i64 = tx
        .query_one(
            "SELECT used FROM discovery_quota WHERE username = $1 AND day = $2 FOR UPDATE",
            &[&q.requester, &q.day],
        )
        .await?
        .try_get(0)?;
    let total = to_u64(used).saturating_add(q.hashes.len() as u64);
    if total > q.max_per_day {
        return Err(StoreError::RateLimited);
    }
    tx.execute(
        "UPDATE discovery_quota SET used = $3 WHERE username = $1 AND day = $2",
        &[&q.requester, &q.day, &to_i64(total)],
    )
    .await?;
    // In the order looked up; the looked-up hashes live only in this query.
    let rows = tx
        .query(
            "SELECT c.hash, c.username FROM unnest($1::bytea[]) WITH ORDINALITY AS t (h, n)
             JOIN contacts c ON c.hash = t.h ORDER BY t.n, c.username",
            &[&q.hashes],
        )
        .await?;
    let matches = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((matches, q.max_per_day - total))
}

#[async_trait]
impl Discovery for PostgresStore {
    async fn publish_contacts(&self, username: &str, hashes: &[Vec<u8>]) -> Result<(), StoreError> {
        self.transact(&(username, hashes), |tx, args| Box::pin(publish(tx, args)))
            .await
    }

    async fn lookup_contacts(
        &self,
        requester: &str,
        hashes: &[Vec<u8>],
        day: u64,
        max_per_day: u64,
    ) -> Result<Matches, StoreError> {
        let q = Lookup {
            requester,
            hashes,
            day: to_i64(day),
            max_per_day,
        };
        self.transact(&q, |tx, q| Box::pin(lookup(tx, q))).await
    }
}

/// Everything an upload needs.
struct Upload<'a> {
    id: &'a [u8],
    owner: &'a str,
    row: &'a AttachmentRow,
    max_owner_bytes: u64,
}

async fn put(tx: &Transaction<'_>, u: &Upload<'_>) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&ATTACHMENT_LOCK_CLASS, &u.owner],
    )
    .await?;
    let stored: i64 = tx
        .query_one(
            "SELECT COALESCE(SUM(size), 0)::bigint FROM attachments WHERE owner = $1",
            &[&u.owner],
        )
        .await?
        .try_get(0)?;
    if to_u64(stored).saturating_add(u.row.blob.len() as u64) > u.max_owner_bytes {
        return Err(StoreError::RateLimited);
    }
    tx.execute(
        "INSERT INTO attachments (id, owner, token_hash, blob, size, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &u.id,
            &u.owner,
            &u.row.token_hash,
            &u.row.blob,
            &to_i64(u.row.blob.len() as u64),
            &to_i64(u.row.expires_at),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Attachments for PostgresStore {
    async fn put_attachment(
        &self,
        id: &[u8],
        owner: &str,
        row: &AttachmentRow,
        max_owner_bytes: u64,
    ) -> Result<(), StoreError> {
        let upload = Upload {
            id,
            owner,
            row,
            max_owner_bytes,
        };
        self.transact(&upload, |tx, u| Box::pin(put(tx, u))).await
    }

    async fn attachment(&self, id: &[u8], now: u64) -> Result<Option<AttachmentRow>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT token_hash, blob, expires_at FROM attachments
                 WHERE id = $1 AND expires_at > $2",
                &[&id, &to_i64(now)],
            )
            .await?;
        row.map(|r| {
            Ok(AttachmentRow {
                token_hash: r.try_get(0)?,
                blob: r.try_get(1)?,
                expires_at: to_u64(r.try_get(2)?),
            })
        })
        .transpose()
    }

    async fn delete_attachment(&self, id: &[u8]) -> Result<bool, StoreError> {
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM attachments WHERE id = $1", &[&id])
            .await?;
        Ok(deleted == 1)
    }
}
