//! Delivery over HTTP: send to a conversation, fetch the inbox, acknowledge. (The same
//! mailbox is streamed live over a WebSocket by [`crate::ws`].)
//!
//! The server reads each message's kind, conversation and epoch from its MLS header (it
//! cannot read more: everything else is encrypted). Commits are accepted only for the
//! conversation's current epoch — the first wins, a late one gets 409 and its sender
//! must catch up — so members never fork. Delivered ciphertext is deleted as soon as
//! every recipient device has acknowledged it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use mls_rs::group::ContentType;
use mls_rs::{MlsMessage, MlsMessageDescription};
use serde::Deserialize;
use sotto_api::{
    Ack, Bytes, DeviceAddress, ErrorCode, Inbox, InboxMessage, MessageKind, SendMessage, Sent,
};

use crate::auth::{device_ref, Session};
use crate::hex;
use crate::http::{now, Failure};
use crate::state::AppState;
use crate::storage::{AppendRequest, Appended, Delivered, DeviceRef, Kind, StoreError};

/// Most recipients of one message.
pub const MAX_RECIPIENTS: usize = 5000;
/// Largest send body (8 MiB: a 4 MiB commit and its Welcome, base64-encoded, fit).
pub const MAX_SEND_BODY: usize = 8 << 20;
/// Most messages returned by one inbox fetch.
pub const MAX_INBOX_PAGE: u32 = 500;

fn recipients(list: &[DeviceAddress]) -> Result<Vec<DeviceRef>, Failure> {
    if list.len() > MAX_RECIPIENTS {
        return Err(Failure::bad_request(format!(
            "at most {MAX_RECIPIENTS} recipients"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for d in list {
        let device = device_ref(&d.username, &d.device_id)?;
        // Each device gets a message once, however often it is listed.
        if seen.insert((device.username.clone(), device.device_id.clone())) {
            out.push(device);
        }
    }
    Ok(out)
}

/// Reads kind and epoch from the MLS header, checking the conversation id. Public only so
/// that the fuzz target `server_classify` and `tests/decoders_no_panic.rs` can call it.
pub fn classify(payload: &[u8], conversation: &[u8]) -> Result<(Kind, u64), Failure> {
    let message = MlsMessage::from_bytes(payload)
        .map_err(|_| Failure::bad_request("payload is not an MLS message"))?;
    match message.description() {
        MlsMessageDescription::PrivateProtocolMessage {
            group_id,
            epoch_id,
            content_type,
        } => {
            if group_id != conversation {
                return Err(Failure::bad_request("message is for another conversation"));
            }
            let kind = if content_type == ContentType::Commit {
                Kind::Commit
            } else {
                Kind::Application
            };
            // Epochs are stored as SQLite integers; no real group gets near this.
            if i64::try_from(epoch_id).is_err() {
                return Err(Failure::bad_request("epoch out of range"));
            }
            Ok((kind, epoch_id))
        }
        _ => Err(Failure::bad_request(
            "only encrypted conversation messages are relayed",
        )),
    }
}

async fn check_registered(state: &AppState, devices: &[DeviceRef]) -> Result<(), Failure> {
    if devices.is_empty() {
        return Ok(());
    }
    match state.store.first_unknown_device(devices).await? {
        Some(d) => Err(Failure::bad_request(format!(
            "unknown recipient device {}/{}",
            d.username,
            hex::encode(&d.device_id)
        ))),
        None => Ok(()),
    }
}

/// `POST /v1/conversations/{conversation}/messages`.
pub async fn send(
    State(state): State<AppState>,
    Session(sender): Session,
    Path(conversation): Path<String>,
    body: Result<Json<SendMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Sent>), Failure> {
    let Json(request) = body?;
    let conversation = conversation_id(&conversation)?;
    let message_id = hex::decode(&request.message_id, 16, "message id")?;
    let to = recipients(&request.recipients)?;
    let (kind, epoch) = classify(&request.payload.0, &conversation)?;
    let welcome = match &request.welcome {
        Some(w) if kind == Kind::Commit => {
            let m = MlsMessage::from_bytes(&w.payload.0)
                .map_err(|_| Failure::bad_request("welcome is not an MLS message"))?;
            if !matches!(m.description(), MlsMessageDescription::Welcome { .. }) {
                return Err(Failure::bad_request("welcome is not an MLS Welcome"));
            }
            Some((w.payload.0.clone(), recipients(&w.recipients)?))
        }
        Some(_) => return Err(Failure::bad_request("only a commit carries a Welcome")),
        None => None,
    };
    let removed = recipients(&request.removed)?;
    if !removed.is_empty() && kind != Kind::Commit {
        return Err(Failure::bad_request("only a commit removes devices"));
    }
    check_registered(&state, &to).await?;
    check_registered(&state, &removed).await?;
    if let Some((_, w_to)) = &welcome {
        check_registered(&state, w_to).await?;
    }
    let actor = state.actor(&sender.username);
    let has_welcome = welcome.is_some();
    // Whose mailboxes grow: their live connections are woken once the append is stored.
    let mut woken: Vec<DeviceRef> = to.iter().chain(&removed).cloned().collect();
    if let Some((_, w_to)) = &welcome {
        woken.extend(w_to.iter().cloned());
    }
    let outcome = state
        .store
        .append(AppendRequest {
            sender,
            conversation,
            message_id,
            kind,
            epoch,
            payload: request.payload.0,
            recipients: to,
            welcome,
            removed,
            actor,
            now: now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Forbidden => Failure::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "only a member device of the conversation may post to it",
            ),
            StoreError::Conflict => Failure::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "commit is not for the conversation's current epoch: fetch and process the inbox, then retry",
            ),
            e => Failure::from(e),
        })?;
    if let Appended::New(_) = outcome {
        for device in &woken {
            state.hub.notify(device);
        }
        // Other processes on the same database wake theirs; a failure only delays them.
        if let Err(e) = state.store.announce(&woken).await {
            tracing::warn!(error = %e, "wake-up announcement failed");
        }
        let kind = match kind {
            Kind::Commit => "commit",
            _ => "application",
        };
        let count = |kind| {
            state
                .metrics
                .messages
                .get_or_create(&vec![("kind", kind)])
                .inc()
        };
        count(kind);
        if has_welcome {
            count("welcome");
        }
    }
    tracing::info!(event = "message_sent", "message accepted");
    Ok(match outcome {
        Appended::New(seq) => (
            StatusCode::CREATED,
            Json(Sent {
                seq,
                duplicate: false,
            }),
        ),
        Appended::Duplicate(seq) => (
            StatusCode::OK,
            Json(Sent {
                seq,
                duplicate: true,
            }),
        ),
    })
}

fn conversation_id(text: &str) -> Result<Vec<u8>, Failure> {
    if text.is_empty() || text.len() > 128 || text.len() % 2 != 0 {
        return Err(Failure::bad_request(
            "conversation id must be 2 to 128 lower-case hex digits",
        ));
    }
    hex::decode(text, text.len() / 2, "conversation id")
}

/// Query of `GET /v1/inbox`.
#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    /// Return messages after this cursor (0: from the start).
    #[serde(default)]
    after: u64,
    /// At most this many (default and maximum [`MAX_INBOX_PAGE`]).
    limit: Option<u32>,
}

/// `GET /v1/inbox`.
pub async fn inbox(
    State(state): State<AppState>,
    Session(device): Session,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<Json<Inbox>, Failure> {
    let Query(query) = query.map_err(|e| Failure::bad_request(e.body_text()))?;
    let limit = query
        .limit
        .unwrap_or(MAX_INBOX_PAGE)
        .clamp(1, MAX_INBOX_PAGE);
    let entries = state.store.inbox(&device, query.after, limit).await?;
    Ok(Json(Inbox {
        messages: entries.into_iter().map(inbox_message).collect(),
    }))
}

/// A mailbox entry as the API carries it.
pub(crate) fn inbox_message(d: Delivered) -> InboxMessage {
    InboxMessage {
        cursor: d.cursor,
        conversation: hex::encode(&d.conversation),
        seq: d.seq,
        kind: match d.kind {
            Kind::Application => MessageKind::Application,
            Kind::Commit => MessageKind::Commit,
            Kind::Welcome => MessageKind::Welcome,
        },
        payload: Bytes(d.payload),
    }
}

/// `POST /v1/inbox/ack`.
pub async fn ack(
    State(state): State<AppState>,
    Session(device): Session,
    body: Result<Json<Ack>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    let Json(request) = body?;
    check_ack(&request.cursors)?;
    state.store.ack(&device, &request.cursors).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses an acknowledgement of more than [`MAX_INBOX_PAGE`] cursors.
pub(crate) fn check_ack(cursors: &[u64]) -> Result<(), Failure> {
    if cursors.len() > MAX_INBOX_PAGE as usize {
        return Err(Failure::bad_request(format!(
            "at most {MAX_INBOX_PAGE} cursors per ack"
        )));
    }
    Ok(())
}
