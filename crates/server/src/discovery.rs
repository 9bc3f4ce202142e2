//! Contact discovery: opt-in publication of contact hashes, and throttled look-ups.
//!
//! A user may publish the hashes of their own phone numbers and email addresses
//! (`sotto_core::discovery`, salted with this deployment's salt and iterated). A look-up
//! returns only the hashes that match; the hashes looked up are never stored, and each
//! account may look up at most [`MAX_LOOKUPS_PER_DAY`] hashes per day, so that the
//! directory cannot be enumerated quickly.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sotto_api::{
    Bytes, ContactMatch, ContactMatches, DiscoverySalt, ErrorCode, LookupContacts, PublishContacts,
};
use sotto_core::crypto;

use crate::auth::Session;
use crate::http::{now, Failure};
use crate::state::AppState;
use crate::storage::StoreError;

/// Length of a contact hash.
pub const HASH_LEN: usize = 32;
/// Most hashes one user may publish.
pub const MAX_PUBLISHED: usize = 16;
/// Most hashes in one look-up.
pub const MAX_LOOKUP: usize = 1000;
/// Most hashes one account may look up per day.
pub const MAX_LOOKUPS_PER_DAY: u64 = 5000;
/// Name of the deployment salt among the server's settings.
const SALT_SETTING: &str = "discovery_salt";

fn hashes(list: Vec<Bytes>, max: usize) -> Result<Vec<Vec<u8>>, Failure> {
    if list.len() > max {
        return Err(Failure::bad_request(format!(
            "at most {max} hashes per request"
        )));
    }
    list.into_iter()
        .map(|h| {
            if h.0.len() == HASH_LEN {
                Ok(h.0)
            } else {
                Err(Failure::bad_request("a contact hash is 32 bytes"))
            }
        })
        .collect()
}

/// `GET /v1/discovery/salt`: the deployment salt, created on first use.
pub async fn salt(State(state): State<AppState>) -> Result<Json<DiscoverySalt>, Failure> {
    let fresh: [u8; 32] = crypto::random_array().map_err(|_| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "no randomness",
        )
    })?;
    let salt = state.store.setting_or_insert(SALT_SETTING, &fresh).await?;
    Ok(Json(DiscoverySalt { salt: Bytes(salt) }))
}

/// `PUT /v1/discovery`: publish (replace) one's own contact hashes.
pub async fn publish(
    State(state): State<AppState>,
    Session(device): Session,
    body: Result<Json<PublishContacts>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    let Json(request) = body?;
    let hashes = hashes(request.hashes, MAX_PUBLISHED)?;
    state
        .store
        .publish_contacts(&device.username, &hashes)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/discovery/lookup`: which of these hashes belong to users.
pub async fn lookup(
    State(state): State<AppState>,
    Session(device): Session,
    body: Result<Json<LookupContacts>, JsonRejection>,
) -> Result<Json<ContactMatches>, Failure> {
    let Json(request) = body?;
    let hashes = hashes(request.hashes, MAX_LOOKUP)?;
    let day = now() / 86_400;
    let (matches, remaining_today) = state
        .store
        .lookup_contacts(&device.username, &hashes, day, MAX_LOOKUPS_PER_DAY)
        .await
        .map_err(|e| match e {
            StoreError::RateLimited => Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("at most {MAX_LOOKUPS_PER_DAY} contact look-ups per day"),
            ),
            e => Failure::from(e),
        })?;
    Ok(Json(ContactMatches {
        matches: matches
            .into_iter()
            .map(|(hash, username)| ContactMatch {
                hash: Bytes(hash),
                username,
            })
            .collect(),
        remaining_today,
    }))
}
