//! The KeyPackage pool on PostgreSQL.
//!
//! Concurrent claims never serve one one-time KeyPackage twice: each claim deletes the
//! row it serves, picking it with `FOR UPDATE SKIP LOCKED` so that a claim passes over a
//! KeyPackage another claim is taking instead of waiting for it. The claim rate limit
//! counts and records in one transaction holding an advisory lock on the
//! (requester, target) pair, so concurrent claims of one pair are counted one by one.
//! Uploads lock the device's row, so the pool cap holds under concurrent uploads and an
//! upload cannot outlive the device's revocation.

use async_trait::async_trait;

use super::{PostgresStore, Transaction};
use crate::storage::{
    to_i64, to_u64, ClaimLimits, Claimed, DeviceRef, KeyPackages, PoolStatus, StoreError,
};

/// The first key of the advisory locks on claimed users; the second is a hash of the
/// user id. (Two-key advisory locks never collide with the one-key lock the
/// migrations take.)
const CLAIM_LOCK_CLASS: i32 = 0x534b_5043; // "SKPC"

/// Everything `add` needs.
struct Upload<'a> {
    device: &'a DeviceRef,
    one_time: &'a [Vec<u8>],
    last_resort: Option<&'a [u8]>,
    max_pool: u64,
    now: u64,
}

async fn add(tx: &Transaction<'_>, upload: &Upload<'_>) -> Result<(), StoreError> {
    let device = upload.device;
    let now = to_i64(upload.now);
    let locked = tx
        .query_opt(
            "SELECT 1 FROM devices WHERE username = $1 AND device_id = $2 FOR UPDATE",
            &[&device.username, &device.device_id],
        )
        .await?;
    if locked.is_none() {
        return Err(StoreError::NotFound);
    }
    let have: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM key_packages WHERE username = $1 AND device_id = $2
             AND NOT last_resort",
            &[&device.username, &device.device_id],
        )
        .await?
        .try_get(0)?;
    if to_u64(have).saturating_add(upload.one_time.len() as u64) > upload.max_pool {
        return Err(StoreError::Conflict);
    }
    // In upload order, so claims serve the oldest first.
    tx.execute(
        "INSERT INTO key_packages (username, device_id, key_package, last_resort, created_at)
         SELECT $1::text, $2::bytea, kp, FALSE, $4::bigint FROM unnest($3::bytea[]) WITH ORDINALITY AS t (kp, n)
         ORDER BY n",
        &[&device.username, &device.device_id, &upload.one_time, &now],
    )
    .await?;
    if let Some(kp) = upload.last_resort {
        tx.execute(
            "DELETE FROM key_packages WHERE username = $1 AND device_id = $2 AND last_resort",
            &[&device.username, &device.device_id],
        )
        .await?;
        tx.execute(
            "INSERT INTO key_packages (username, device_id, key_package, last_resort, created_at)
             VALUES ($1, $2, $3, TRUE, $4)",
            &[&device.username, &device.device_id, &kp, &now],
        )
        .await?;
    }
    Ok(())
}

async fn status(tx: &Transaction<'_>, device: &DeviceRef) -> Result<PoolStatus, StoreError> {
    let row = tx
        .query_one(
            "SELECT COUNT(*) FILTER (WHERE NOT last_resort), COUNT(*) FILTER (WHERE last_resort)
             FROM key_packages WHERE username = $1 AND device_id = $2",
            &[&device.username, &device.device_id],
        )
        .await?;
    let (available, last): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let used = tx
        .execute(
            "DELETE FROM last_resort_used WHERE username = $1 AND device_id = $2",
            &[&device.username, &device.device_id],
        )
        .await?;
    Ok(PoolStatus {
        available: to_u64(available),
        has_last_resort: last > 0,
        last_resort_used: used > 0,
    })
}

/// Everything `claim` needs.
struct Claim<'a> {
    requester: &'a str,
    target: &'a str,
    limits: ClaimLimits,
    now: u64,
}

async fn claim(tx: &Transaction<'_>, c: &Claim<'_>) -> Result<Vec<Claimed>, StoreError> {
    let (requester, target) = (c.requester, c.target);
    // Claims of one target are counted one at a time (both limits depend on them).
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2::text))",
        &[&CLAIM_LOCK_CLASS, &target],
    )
    .await?;
    tx.execute(
        "DELETE FROM claims WHERE target = $1 AND at < $2",
        &[&target, &to_i64(c.limits.window_start)],
    )
    .await?;
    let recent: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM claims WHERE requester = $1 AND target = $2",
            &[&requester, &target],
        )
        .await?
        .try_get(0)?;
    if to_u64(recent) >= c.limits.per_requester {
        return Err(StoreError::RateLimited);
    }
    let crowded: i64 = tx
        .query_one("SELECT COUNT(*) FROM claims WHERE target = $1", &[&target])
        .await?
        .try_get(0)?;
    let crowded = to_u64(crowded) >= c.limits.one_time_per_target;
    tx.execute(
        "INSERT INTO claims (requester, target, at) VALUES ($1, $2, $3)",
        &[&requester, &target, &to_i64(c.now)],
    )
    .await?;
    let devices = tx
        .query(
            "SELECT device_id FROM devices WHERE username = $1 ORDER BY device_id",
            &[&target],
        )
        .await?;
    let mut out = Vec::with_capacity(devices.len());
    for row in devices {
        let device_id: Vec<u8> = row.try_get(0)?;
        let one_time = if crowded {
            None
        } else {
            tx.query_opt(
                "DELETE FROM key_packages WHERE id = (
                     SELECT id FROM key_packages
                     WHERE username = $1 AND device_id = $2 AND NOT last_resort
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING key_package",
                &[&target, &device_id],
            )
            .await?
        };
        let (key_package, last_resort) = match one_time {
            Some(row) => (row.try_get(0)?, false),
            None => {
                let last = tx
                    .query_opt(
                        "SELECT key_package FROM key_packages
                         WHERE username = $1 AND device_id = $2 AND last_resort
                         ORDER BY id LIMIT 1",
                        &[&target, &device_id],
                    )
                    .await?;
                let Some(row) = last else {
                    continue;
                };
                tx.execute(
                    "INSERT INTO last_resort_used (username, device_id) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&target, &device_id],
                )
                .await?;
                (row.try_get(0)?, true)
            }
        };
        out.push(Claimed {
            device_id,
            key_package,
            last_resort,
        });
    }
    Ok(out)
}

#[async_trait]
impl KeyPackages for PostgresStore {
    async fn add_key_packages(
        &self,
        device: &DeviceRef,
        one_time: &[Vec<u8>],
        last_resort: Option<&[u8]>,
        max_pool: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let upload = Upload {
            device,
            one_time,
            last_resort,
            max_pool,
            now,
        };
        self.transact(&upload, |tx, upload| Box::pin(add(tx, upload)))
            .await
    }

    async fn pool_status(&self, device: &DeviceRef) -> Result<PoolStatus, StoreError> {
        self.transact(device, |tx, device| Box::pin(status(tx, device)))
            .await
    }

    async fn claim_key_packages(
        &self,
        requester: &str,
        target: &str,
        limits: ClaimLimits,
        now: u64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let request = Claim {
            requester,
            target,
            limits,
            now,
        };
        self.transact(&request, |tx, c| Box::pin(claim(tx, c)))
            .await
    }
}
