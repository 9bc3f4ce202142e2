//! The KeyPackage pool on SQLite.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::storage::{
    to_i64, ClaimLimits, Claimed, DeviceRef, KeyPackages, PoolStatus, StoreError,
};

fn add(
    conn: &mut Connection,
    device: &DeviceRef,
    one_time: &[Vec<u8>],
    last_resort: Option<&[u8]>,
    max_pool: u64,
    now: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let have: u64 = tx.query_row(
        "SELECT COUNT(*) FROM key_packages WHERE username = ?1 AND device_id = ?2
         AND last_resort = 0",
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
            params![device.username, device.device_id, kp, to_i64(now)],
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
            params![device.username, device.device_id, kp, to_i64(now)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn status(conn: &mut Connection, device: &DeviceRef) -> Result<PoolStatus, StoreError> {
    let tx = conn.transaction()?;
    let count = |last_resort: i64| -> Result<u64, rusqlite::Error> {
        tx.query_row(
            "SELECT COUNT(*) FROM key_packages WHERE username = ?1 AND device_id = ?2
             AND last_resort = ?3",
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

fn claim(
    conn: &mut Connection,
    requester: &str,
    target: &str,
    limits: ClaimLimits,
    now: u64,
) -> Result<Vec<Claimed>, StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM claims WHERE at < ?1",
        [to_i64(limits.window_start)],
    )?;
    let recent: u64 = tx.query_row(
        "SELECT COUNT(*) FROM claims WHERE requester = ?1 AND target = ?2",
        params![requester, target],
        |row| row.get(0),
    )?;
    if recent >= limits.per_requester {
        return Err(StoreError::RateLimited);
    }
    let crowded = tx.query_row(
        "SELECT COUNT(*) FROM claims WHERE target = ?1",
        [target],
        |row| row.get::<_, u64>(0),
    )? >= limits.one_time_per_target;
    tx.execute(
        "INSERT INTO claims (requester, target, at) VALUES (?1, ?2, ?3)",
        params![requester, target, to_i64(now)],
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
                 WHERE username = ?1 AND device_id = ?2 AND last_resort >= ?3
                 ORDER BY last_resort, id LIMIT 1",
                params![target, device_id, crowded],
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

#[async_trait]
impl KeyPackages for SqliteStore {
    async fn add_key_packages(
        &self,
        device: &DeviceRef,
        one_time: &[Vec<u8>],
        last_resort: Option<&[u8]>,
        max_pool: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let (device, one_time) = (device.clone(), one_time.to_vec());
        let last_resort = last_resort.map(<[u8]>::to_vec);
        self.run(move |c| add(c, &device, &one_time, last_resort.as_deref(), max_pool, now))
            .await
    }

    async fn pool_status(&self, device: &DeviceRef) -> Result<PoolStatus, StoreError> {
        let device = device.clone();
        self.run(move |c| status(c, &device)).await
    }

    async fn claim_key_packages(
        &self,
        requester: &str,
        target: &str,
        limits: ClaimLimits,
        now: u64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (requester, target) = (requester.to_owned(), target.to_owned());
        self.run(move |c| claim(c, &requester, &target, limits, now))
            .await
    }
}
