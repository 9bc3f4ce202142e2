//! Accounts, devices, challenges and sessions on PostgreSQL.
//!
//! A user id is taken by the first `INSERT` to reach the primary key: a concurrent one
//! waits for it and then inserts nothing. Registering and revoking a device both lock
//! the account row first, so a certificate cannot slip in between a revocation's delete
//! and its bar on the device id.

use async_trait::async_trait;

use super::{delivery, record, PostgresStore, Transaction};
use crate::storage::{to_i64, AccountRow, Accounts, DeviceRef, Event, Put, Sessions, StoreError};

async fn create_account(
    tx: &Transaction<'_>,
    username: &str,
    root: &[u8],
    actor: &str,
    now: u64,
) -> Result<(), StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO accounts (username, root_public_key, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (username) DO NOTHING",
            &[&username, &root, &to_i64(now)],
        )
        .await?;
    if inserted != 1 {
        return Err(StoreError::Conflict);
    }
    record(tx, Event::Registration, actor, now).await
}

/// Locks the account row of `username` until the transaction ends; false if there is no
/// such account.
async fn lock_account(tx: &Transaction<'_>, username: &str) -> Result<bool, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM accounts WHERE username = $1 FOR UPDATE",
            &[&username],
        )
        .await?
        .is_some())
}

async fn put_device(
    tx: &Transaction<'_>,
    username: &str,
    device_id: &[u8],
    certificate: &[u8],
    now: u64,
) -> Result<Put, StoreError> {
    if !lock_account(tx, username).await? {
        return Err(StoreError::NotFound);
    }
    let revoked: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM revoked WHERE username = $1 AND device_id = $2)",
            &[&username, &device_id],
        )
        .await?
        .try_get(0)?;
    if revoked {
        return Err(StoreError::Conflict);
    }
    let existing = tx
        .query_opt(
            "SELECT certificate FROM devices WHERE username = $1 AND device_id = $2",
            &[&username, &device_id],
        )
        .await?;
    match existing {
        Some(row) if row.try_get::<_, &[u8]>(0)? == certificate => Ok(Put::Unchanged),
        Some(_) => Err(StoreError::Conflict),
        None => {
            tx.execute(
                "INSERT INTO devices (username, device_id, certificate, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[&username, &device_id, &certificate, &to_i64(now)],
            )
            .await?;
            Ok(Put::Created)
        }
    }
}

async fn revoke_device(tx: &Transaction<'_>, device: &DeviceRef) -> Result<(), StoreError> {
    let (username, device_id) = (device.username.as_str(), device.device_id.as_slice());
    if !lock_account(tx, username).await? {
        return Err(StoreError::NotFound);
    }
    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&username, &device_id];
    if tx
        .execute(
            "DELETE FROM devices WHERE username = $1 AND device_id = $2",
            &p,
        )
        .await?
        == 0
    {
        return Err(StoreError::NotFound);
    }
    tx.execute(
        "INSERT INTO revoked (username, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &p,
    )
    .await?;
    // The counter goes first: an append to this device in flight holds it, so the
    // mailbox delete below runs after that append commits and sees its rows.
    for table in [
        "mailbox_counters",
        "sessions",
        "challenges",
        "key_packages",
        "last_resort_used",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE username = $1 AND device_id = $2"),
            &p,
        )
        .await?;
    }
    let entries = tx
        .query(
            "DELETE FROM mailbox WHERE username = $1 AND device_id = $2
             RETURNING conversation, seq",
            &p,
        )
        .await?;
    delivery::drop_orphans(tx, &entries).await
}

#[async_trait]
impl Accounts for PostgresStore {
    async fn create_account(
        &self,
        username: &str,
        root: &[u8],
        actor: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        self.transact(
            &(username, root, actor, now),
            |tx, &(username, root, actor, now)| {
                Box::pin(create_account(tx, username, root, actor, now))
            },
        )
        .await
    }

    async fn account(&self, username: &str) -> Result<Option<AccountRow>, StoreError> {
        // One statement, so one snapshot: the key and the devices agree.
        let rows = self
            .client()
            .await?
            .query(
                "SELECT a.root_public_key, d.device_id, d.certificate FROM accounts a
                 LEFT JOIN devices d ON d.username = a.username
                 WHERE a.username = $1 ORDER BY d.device_id",
                &[&username],
            )
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut devices = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Option<Vec<u8>> = row.try_get(1)?;
            let certificate: Option<Vec<u8>> = row.try_get(2)?;
            if let (Some(id), Some(certificate)) = (id, certificate) {
                devices.push((id, certificate));
            }
        }
        Ok(Some(AccountRow {
            root_public_key: first.try_get(0)?,
            devices,
        }))
    }

    async fn put_device(
        &self,
        username: &str,
        device_id: &[u8],
        certificate: &[u8],
        now: u64,
    ) -> Result<Put, StoreError> {
        self.transact(
            &(username, device_id, certificate, now),
            |tx, &(username, id, certificate, now)| {
                Box::pin(put_device(tx, username, id, certificate, now))
            },
        )
        .await
    }

    async fn device_certificate(&self, device: &DeviceRef) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT certificate FROM devices WHERE username = $1 AND device_id = $2",
                &[&device.username, &device.device_id],
            )
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    async fn first_unknown_device(
        &self,
        devices: &[DeviceRef],
    ) -> Result<Option<DeviceRef>, StoreError> {
        if devices.is_empty() {
            return Ok(None);
        }
        let users: Vec<&str> = devices.iter().map(|d| d.username.as_str()).collect();
        let ids: Vec<&[u8]> = devices.iter().map(|d| d.device_id.as_slice()).collect();
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT n FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS t (u, d, n)
                 WHERE NOT EXISTS (SELECT 1 FROM devices WHERE username = u AND device_id = d)
                 ORDER BY n LIMIT 1",
                &[&users, &ids],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        // WITH ORDINALITY counts from 1.
        let n: i64 = row.try_get(0)?;
        let index = usize::try_from(n - 1).map_err(|_| StoreError::Corrupt)?;
        devices
            .get(index)
            .cloned()
            .map(Some)
            .ok_or(StoreError::Corrupt)
    }

    async fn revoke_device(&self, device: &DeviceRef) -> Result<(), StoreError> {
        self.transact(device, |tx, device| Box::pin(revoke_device(tx, device)))
            .await
    }
}

#[async_trait]
impl Sessions for PostgresStore {
    async fn put_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO challenges (challenge, username, device_id, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &challenge,
                    &device.username,
                    &device.device_id,
                    &to_i64(expires_at),
                ],
            )
            .await?;
        Ok(())
    }

    async fn take_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        now: u64,
    ) -> Result<bool, StoreError> {
        // Of two concurrent takes, the second waits for the first's delete and then
        // finds nothing.
        let deleted = self
            .client()
            .await?
            .execute(
                "DELETE FROM challenges WHERE challenge = $1 AND username = $2
                 AND device_id = $3 AND expires_at > $4",
                &[
                    &challenge,
                    &device.username,
                    &device.device_id,
                    &to_i64(now),
                ],
            )
            .await?;
        Ok(deleted == 1)
    }

    async fn put_session(
        &self,
        token_hash: &[u8],
        device: &DeviceRef,
        expires_at: u64,
        actor: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        self.transact(
            &(token_hash, device, expires_at, actor, now),
            |tx, &(hash, device, expires_at, actor, now)| {
                Box::pin(async move {
                    tx.execute(
                        "INSERT INTO sessions (token_hash, username, device_id, expires_at)
                         VALUES ($1, $2, $3, $4)",
                        &[
                            &hash,
                            &device.username,
                            &device.device_id,
                            &to_i64(expires_at),
                        ],
                    )
                    .await?;
                    record(tx, Event::Login, actor, now).await
                })
            },
        )
        .await
    }

    async fn session(&self, token_hash: &[u8], now: u64) -> Result<Option<DeviceRef>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT username, device_id FROM sessions WHERE token_hash = $1
                 AND expires_at > $2",
                &[&token_hash, &to_i64(now)],
            )
            .await?;
        row.map(|row| {
            Ok(DeviceRef {
                username: row.try_get(0)?,
                device_id: row.try_get(1)?,
            })
        })
        .transpose()
    }
}
