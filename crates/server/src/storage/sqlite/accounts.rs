//! Accounts, devices, challenges and sessions on SQLite.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{record, SqliteStore};
use crate::storage::{to_i64, AccountRow, Accounts, DeviceRef, Event, Put, Sessions, StoreError};

fn create_account(
    conn: &mut Connection,
    username: &str,
    root: &[u8],
    actor: &str,
    now: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let inserted = tx.execute(
        "INSERT INTO accounts (username, root_public_key, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (username) DO NOTHING",
        params![username, root, to_i64(now)],
    )?;
    if inserted != 1 {
        return Err(StoreError::Conflict);
    }
    record(&tx, Event::Registration, actor, now)?;
    tx.commit()?;
    Ok(())
}

fn account(conn: &Connection, username: &str) -> Result<Option<AccountRow>, StoreError> {
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

fn put_device(
    conn: &mut Connection,
    username: &str,
    device_id: &[u8],
    certificate: &[u8],
    now: u64,
) -> Result<Put, StoreError> {
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
                params![username, device_id, certificate, to_i64(now)],
            )?;
            Put::Created
        }
    };
    tx.commit()?;
    Ok(put)
}

fn device_certificate(
    conn: &Connection,
    device: &DeviceRef,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT certificate FROM devices WHERE username = ?1 AND device_id = ?2")?
        .query_row(params![device.username, device.device_id], |row| row.get(0))
        .optional()?)
}

fn revoke_device(conn: &mut Connection, device: &DeviceRef) -> Result<(), StoreError> {
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

#[async_trait]
impl Accounts for SqliteStore {
    async fn create_account(
        &self,
        username: &str,
        root: &[u8],
        actor: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let (username, root, actor) = (username.to_owned(), root.to_vec(), actor.to_owned());
        self.run(move |c| create_account(c, &username, &root, &actor, now))
            .await
    }

    async fn account(&self, username: &str) -> Result<Option<AccountRow>, StoreError> {
        let username = username.to_owned();
        self.read(move |c| account(c, &username)).await
    }

    async fn put_device(
        &self,
        username: &str,
        device_id: &[u8],
        certificate: &[u8],
        now: u64,
    ) -> Result<Put, StoreError> {
        let (username, id, cert) = (
            username.to_owned(),
            device_id.to_vec(),
            certificate.to_vec(),
        );
        self.run(move |c| put_device(c, &username, &id, &cert, now))
            .await
    }

    async fn device_certificate(&self, device: &DeviceRef) -> Result<Option<Vec<u8>>, StoreError> {
        let device = device.clone();
        self.read(move |c| device_certificate(c, &device)).await
    }

    async fn first_unknown_device(
        &self,
        devices: &[DeviceRef],
    ) -> Result<Option<DeviceRef>, StoreError> {
        let devices = devices.to_vec();
        self.read(move |c| {
            for device in devices {
                if device_certificate(c, &device)?.is_none() {
                    return Ok(Some(device));
                }
            }
            Ok(None)
        })
        .await
    }

    async fn revoke_device(&self, device: &DeviceRef) -> Result<(), StoreError> {
        let device = device.clone();
        self.run(move |c| revoke_device(c, &device)).await
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn put_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let (challenge, device) = (challenge.to_vec(), device.clone());
        self.run(move |c| {
            c.execute(
                "INSERT INTO challenges (challenge, username, device_id, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    challenge,
                    device.username,
                    device.device_id,
                    to_i64(expires_at)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_challenge(
        &self,
        challenge: &[u8],
        device: &DeviceRef,
        now: u64,
    ) -> Result<bool, StoreError> {
        let (challenge, device) = (challenge.to_vec(), device.clone());
        self.run(move |c| {
            let deleted = c.execute(
                "DELETE FROM challenges WHERE challenge = ?1 AND username = ?2
                 AND device_id = ?3 AND expires_at > ?4",
                params![challenge, device.username, device.device_id, to_i64(now)],
            )?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn put_session(
        &self,
        token_hash: &[u8],
        device: &DeviceRef,
        expires_at: u64,
        actor: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let (hash, device, actor) = (token_hash.to_vec(), device.clone(), actor.to_owned());
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO sessions (token_hash, username, device_id, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![hash, device.username, device.device_id, to_i64(expires_at)],
            )?;
            record(&tx, Event::Login, &actor, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &[u8], now: u64) -> Result<Option<DeviceRef>, StoreError> {
        let hash = token_hash.to_vec();
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT username, device_id FROM sessions WHERE token_hash = ?1
                 AND expires_at > ?2",
            )?
            .query_row(params![hash, to_i64(now)], |row| {
                Ok(DeviceRef {
                    username: row.get(0)?,
                    device_id: row.get(1)?,
                })
            })
            .optional()?)
        })
        .await
    }
}
