//! Settings, contact discovery and attachments on SQLite.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::storage::{to_i64, to_u64, AttachmentRow, Attachments, Discovery, Settings, StoreError};

#[async_trait]
impl Settings for SqliteStore {
    async fn setting_or_insert(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, fresh) = (name.to_owned(), fresh.to_vec());
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, fresh],
            )?;
            let value =
                tx.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }
}

#[async_trait]
impl Discovery for SqliteStore {
    async fn publish_contacts(&self, username: &str, hashes: &[Vec<u8>]) -> Result<(), StoreError> {
        let (username, hashes) = (username.to_owned(), hashes.to_vec());
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM contacts WHERE username = ?1", [&username])?;
            for hash in &hashes {
                tx.execute(
                    "INSERT OR IGNORE INTO contacts (hash, username) VALUES (?1, ?2)",
                    params![hash, username],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn lookup_contacts(
        &self,
        requester: &str,
        hashes: &[Vec<u8>],
        day: u64,
        max_per_day: u64,
    ) -> Result<(Vec<(Vec<u8>, String)>, u64), StoreError> {
        let (requester, hashes) = (requester.to_owned(), hashes.to_vec());
        self.run(move |c| {
            let tx = c.transaction()?;
            let used: u64 = tx
                .query_row(
                    "SELECT used FROM discovery_quota WHERE username = ?1 AND day = ?2",
                    params![requester, to_i64(day)],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map(to_u64)
                .unwrap_or(0);
            let total = used.saturating_add(hashes.len() as u64);
            if total > max_per_day {
                return Err(StoreError::RateLimited);
            }
            tx.execute(
                "INSERT INTO discovery_quota (username, day, used) VALUES (?1, ?2, ?3)
                 ON CONFLICT (username, day) DO UPDATE SET used = ?3",
                params![requester, to_i64(day), to_i64(total)],
            )?;
            let mut matches = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT username FROM contacts WHERE hash = ?1 ORDER BY username",
                )?;
                for hash in &hashes {
                    let users = stmt
                        .query_map([hash], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()?;
                    matches.extend(users.into_iter().map(|u| (hash.clone(), u)));
                }
            }
            tx.commit()?;
            Ok((matches, max_per_day - total))
        })
        .await
    }
}

#[async_trait]
impl Attachments for SqliteStore {
    async fn put_attachment(
        &self,
        id: &[u8],
        owner: &str,
        row: &AttachmentRow,
        max_owner_bytes: u64,
    ) -> Result<(), StoreError> {
        let (id, owner, row) = (id.to_vec(), owner.to_owned(), row.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            let stored: i64 = tx.query_row(
                "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE owner = ?1",
                [&owner],
                |r| r.get(0),
            )?;
            if to_u64(stored).saturating_add(row.blob.len() as u64) > max_owner_bytes {
                return Err(StoreError::RateLimited);
            }
            tx.execute(
                "INSERT INTO attachments (id, owner, token_hash, blob, size, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    owner,
                    row.token_hash,
                    row.blob,
                    to_i64(row.blob.len() as u64),
                    to_i64(row.expires_at)
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn attachment(&self, id: &[u8], now: u64) -> Result<Option<AttachmentRow>, StoreError> {
        let id = id.to_vec();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT token_hash, blob, expires_at FROM attachments
                 WHERE id = ?1 AND expires_at > ?2",
                params![id, to_i64(now)],
                |r| {
                    Ok(AttachmentRow {
                        token_hash: r.get(0)?,
                        blob: r.get(1)?,
                        expires_at: to_u64(r.get(2)?),
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn delete_attachment(&self, id: &[u8]) -> Result<bool, StoreError> {
        let id = id.to_vec();
        self.run(move |c| Ok(c.execute("DELETE FROM attachments WHERE id = ?1", [id])? == 1))
            .await
    }
}
