//! The KeyPackage pool (the prekey pool of promise 2).
//!
//! Each device publishes one-time KeyPackages and one last-resort KeyPackage. A claim hands
//! out one KeyPackage per device of the target user: a one-time one, deleted in the same
//! transaction so it is never served twice, or, when the pool is empty, the last-resort one
//! (and the owner is told at its next look at the pool). Claims are limited per requester
//! and target ([`MAX_CLAIMS_PER_HOUR`]) so that no one can drain a pool. Every uploaded
//! KeyPackage is validated as an MLS add would, and must be of the uploading device.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sotto_api::{
    Bytes, ClaimedKeyPackage, ClaimedKeyPackages, ErrorCode, KeyPackagePool, UploadKeyPackages,
};
use sotto_core::device::expect_key_package;
use sotto_core::identity::{RootPublicKey, UserId};

use crate::auth::Session;
use crate::http::{now, Failure};
use crate::state::AppState;
use crate::storage::{ClaimLimits, DeviceRef, PoolStatus, StoreError};

/// Most KeyPackages in one upload.
pub const MAX_UPLOAD: usize = 100;
/// Most one-time KeyPackages a device may have on file.
pub const MAX_POOL: u64 = 200;
/// At or below this many one-time KeyPackages, the device is told to upload more.
pub const LOW_WATER: u64 = 10;
/// Most claims one user may make for one target user per hour.
pub const MAX_CLAIMS_PER_HOUR: u64 = 30;
/// Claims of one user per hour, by anyone, after which only last-resort KeyPackages are
/// served: a crowd of requesters cannot drain a pool, and can still reach its owner.
pub const MAX_ONE_TIME_CLAIMS_PER_TARGET_PER_HOUR: u64 = 100;
/// Largest upload body (1 MiB: a KeyPackage is about 1.2 kB, 1.6 kB in base64).
pub const MAX_UPLOAD_BODY: usize = 1 << 20;

fn pool(status: PoolStatus) -> KeyPackagePool {
    KeyPackagePool {
        available: status.available,
        low_water: status.available <= LOW_WATER,
        has_last_resort: status.has_last_resort,
        last_resort_used: status.last_resort_used,
    }
}

/// `POST /v1/key-packages`.
pub async fn upload(
    State(state): State<AppState>,
    Session(device): Session,
    body: Result<Json<UploadKeyPackages>, JsonRejection>,
) -> Result<Json<KeyPackagePool>, Failure> {
    let Json(request) = body?;
    if request.key_packages.len() > MAX_UPLOAD {
        return Err(Failure::bad_request(format!(
            "at most {MAX_UPLOAD} KeyPackages per upload"
        )));
    }
    let account = state
        .store
        .account(&device.username)
        .await?
        .ok_or_else(|| Failure::not_found("account"))?;
    let checked = device.clone();
    let all: Vec<Vec<u8>> = request
        .key_packages
        .iter()
        .chain(request.last_resort.iter())
        .map(|b| b.0.clone())
        .collect();
    // Validation verifies signatures: keep it off the async workers.
    tokio::task::spawn_blocking(move || validate(&checked, &account.root_public_key, &all))
        .await
        .map_err(|_| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "validation failed",
            )
        })??;
    let one_time: Vec<Vec<u8>> = request.key_packages.into_iter().map(|b| b.0).collect();
    let last_resort = request.last_resort.map(|b| b.0);
    let now = now();
    state
        .store
        .add_key_packages(&device, &one_time, last_resort.as_deref(), MAX_POOL, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                Failure::bad_request(format!("a device may keep at most {MAX_POOL} KeyPackages"))
            }
            e => Failure::from(e),
        })?;
    Ok(Json(pool(state.store.pool_status(&device).await?)))
}

fn validate(device: &DeviceRef, root: &[u8], key_packages: &[Vec<u8>]) -> Result<(), Failure> {
    let user = UserId::new(&device.username).map_err(|e| Failure::bad_request(e.to_string()))?;
    let root = RootPublicKey::from_bytes(root)
        .map_err(|_| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "stored key invalid",
            )
        })?
        .fingerprint();
    for (i, kp) in key_packages.iter().enumerate() {
        let owner = expect_key_package(kp, &user, &root)
            .map_err(|e| Failure::bad_request(format!("KeyPackage {i} refused: {e}")))?;
        if owner.device_id.0.as_slice() != device.device_id.as_slice() {
            return Err(Failure::bad_request(format!(
                "KeyPackage {i} is of another device"
            )));
        }
    }
    Ok(())
}

/// `GET /v1/key-packages`.
pub async fn status(
    State(state): State<AppState>,
    Session(device): Session,
) -> Result<Json<KeyPackagePool>, Failure> {
    Ok(Json(pool(state.store.pool_status(&device).await?)))
}

/// `POST /v1/accounts/{username}/key-packages/claim`.
pub async fn claim(
    State(state): State<AppState>,
    Session(requester): Session,
    Path(username): Path<String>,
) -> Result<Json<ClaimedKeyPackages>, Failure> {
    let target = UserId::new(&username).map_err(|e| Failure::bad_request(e.to_string()))?;
    if state.store.account(target.as_str()).await?.is_none() {
        return Err(Failure::not_found("account"));
    }
    let now = now();
    let claimed = state
        .store
        .claim_key_packages(
            &requester.username,
            target.as_str(),
            ClaimLimits {
                per_requester: MAX_CLAIMS_PER_HOUR,
                one_time_per_target: MAX_ONE_TIME_CLAIMS_PER_TARGET_PER_HOUR,
                window_start: now.saturating_sub(3600),
            },
            now,
        )
        .await?;
    Ok(Json(ClaimedKeyPackages {
        key_packages: claimed
            .into_iter()
            .map(|c| ClaimedKeyPackage {
                device_id: crate::hex::encode(&c.device_id),
                key_package: Bytes(c.key_package),
                last_resort: c.last_resort,
            })
            .collect(),
    }))
}
