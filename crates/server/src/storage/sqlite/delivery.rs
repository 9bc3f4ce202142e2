//! Conversation logs, mailboxes and acknowledgements on SQLite.
//!
//! Every accepted message gets the next sequence number of its conversation's log and one
//! mailbox row per recipient device, atomically with the epoch check and the membership
//! update (see [`AppendRequest`]). Appends and acknowledgements are group-committed by the
//! writer (each in a savepoint of a shared transaction, answered once it is committed);
//! mailbox reads run on reader connections.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{record, SqliteStore};
use crate::storage::{
    to_i64, to_u64, AppendRequest, Appended, Delivered, Delivery, DeviceRef, Event, Kind,
    StoreError, MAX_PAGE_BYTES,
};

/// One log entry to write: `(message id, kind, payload, recipients)`.
struct Entry<'a> {
    message_id: &'a [u8],
    kind: Kind,
    payload: &'a [u8],
    recipients: &'a [DeviceRef],
}

/// Runs inside the writer's transaction (see [`SqliteStore::write`]).
fn append(tx: &Connection, request: &AppendRequest) -> Result<Appended, StoreError> {
    let conversation = request.conversation.as_slice();
    let known: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1)")?
        .query_row([conversation], |row| row.get(0))?;
    let member: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM members WHERE conversation = ?1 AND username = ?2
         AND device_id = ?3)",
        )?
        .query_row(
            params![
                conversation,
                request.sender.username,
                request.sender.device_id
            ],
            |row| row.get(0),
        )?;
    if known && !member {
        return Err(StoreError::Forbidden);
    }
    if let Some(seq) = existing(tx, conversation, &request.message_id)? {
        return Ok(Appended::Duplicate(seq));
    }
    let mut everyone = request.recipients.clone();
    everyone.extend_from_slice(&request.removed);
    let seq = append_entry(
        tx,
        request,
        &Entry {
            message_id: &request.message_id,
            kind: request.kind,
            payload: &request.payload,
            recipients: &everyone,
        },
    )?;
    if let Some((payload, recipients)) = &request.welcome {
        append_entry(
            tx,
            request,
            &Entry {
                message_id: &request.welcome_id(),
                kind: Kind::Welcome,
                payload,
                recipients,
            },
        )?;
    }
    if !known || request.kind == Kind::Commit {
        tx.execute(
            "DELETE FROM members WHERE conversation = ?1",
            [conversation],
        )?;
        let added = request.welcome.iter().flat_map(|(_, to)| to);
        for device in std::iter::once(&request.sender)
            .chain(&request.recipients)
            .chain(added)
        {
            tx.execute(
                "INSERT OR IGNORE INTO members (conversation, username, device_id)
                 VALUES (?1, ?2, ?3)",
                params![conversation, device.username, device.device_id],
            )?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO message_ids (conversation, message_id, seq, created_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        conversation,
        request.message_id,
        to_i64(seq),
        to_i64(request.now)
    ])?;
    record(tx, Event::MessageSent, &request.actor, request.now)?;
    Ok(Appended::New(seq))
}

/// Writes one log entry and its mailbox rows; checks and moves the epoch.
fn append_entry(
    tx: &Connection,
    request: &AppendRequest,
    entry: &Entry<'_>,
) -> Result<u64, StoreError> {
    let conversation = request.conversation.as_slice();
    let state: Option<(i64, i64)> = tx
        .prepare_cached("SELECT epoch, next FROM conversations WHERE id = ?1")?
        .query_row([conversation], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (epoch, seq) = match state {
        Some((epoch, next)) => (to_u64(epoch), to_u64(next)),
        None => (request.epoch, 0),
    };
    if entry.kind == Kind::Commit && request.epoch != epoch {
        return Err(StoreError::Conflict);
    }
    let new_epoch = if entry.kind == Kind::Commit {
        epoch.checked_add(1).ok_or(StoreError::Conflict)?
    } else {
        epoch
    };
    tx.prepare_cached(
        "INSERT INTO conversations (id, epoch, next) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET epoch = ?2, next = ?3",
    )?
    .execute(params![conversation, to_i64(new_epoch), to_i64(seq + 1)])?;
    // A message for no one (a commit in a conversation of one device) only moves the
    // conversation on: nothing is kept, since nothing would ever delete it.
    if entry.recipients.is_empty() {
        return Ok(seq);
    }
    tx.prepare_cached(
        "INSERT INTO log (conversation, seq, kind, message_id, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        conversation,
        to_i64(seq),
        entry.kind as i64,
        entry.message_id,
        entry.payload,
        to_i64(request.now)
    ])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO mailbox (username, device_id, conversation, seq) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for device in entry.recipients {
        insert.execute(params![
            device.username,
            device.device_id,
            conversation,
            to_i64(seq)
        ])?;
    }
    Ok(seq)
}

fn existing(
    tx: &Connection,
    conversation: &[u8],
    message_id: &[u8],
) -> Result<Option<u64>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT seq FROM message_ids WHERE conversation = ?1 AND message_id = ?2")?
        .query_row(params![conversation, message_id], |row| {
            row.get::<_, i64>(0)
        })
        .optional()?
        .map(to_u64))
}

fn inbox(
    conn: &Connection,
    device: &DeviceRef,
    cursor: u64,
    limit: u32,
) -> Result<Vec<Delivered>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.conversation, m.seq, l.kind, l.payload FROM mailbox m
         JOIN log l ON l.conversation = m.conversation AND l.seq = m.seq
         WHERE m.username = ?1 AND m.device_id = ?2 AND m.id > ?3 ORDER BY m.id LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![device.username, device.device_id, to_i64(cursor), limit],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Vec<u8>>(4)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for row in rows {
        let (cursor, conversation, seq, kind, payload) = row?;
        let kind = Kind::from_i64(kind).ok_or(StoreError::Corrupt)?;
        // Bound what one page holds in memory; the first message always fits.
        bytes = bytes.saturating_add(payload.len());
        if !out.is_empty() && bytes > MAX_PAGE_BYTES {
            break;
        }
        out.push(Delivered {
            cursor: to_u64(cursor),
            conversation,
            seq: to_u64(seq),
            kind,
            payload,
        });
    }
    Ok(out)
}

/// Runs inside the writer's transaction (see [`SqliteStore::write`]).
fn ack(tx: &Connection, device: &DeviceRef, cursors: &[u64]) -> Result<(), StoreError> {
    let mut take = tx.prepare_cached(
        "DELETE FROM mailbox WHERE id = ?1 AND username = ?2 AND device_id = ?3
         RETURNING conversation, seq",
    )?;
    let mut orphan = tx.prepare_cached(
        "DELETE FROM log WHERE conversation = ?1 AND seq = ?2 AND NOT EXISTS
         (SELECT 1 FROM mailbox WHERE conversation = ?1 AND seq = ?2)",
    )?;
    for cursor in cursors {
        let entry: Option<(Vec<u8>, i64)> = take
            .query_row(
                params![to_i64(*cursor), device.username, device.device_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((conversation, seq)) = entry {
            orphan.execute(params![conversation, seq])?;
        }
    }
    Ok(())
}

/// The device of an unexpired session, by the hash of its token.
fn session_device(
    conn: &Connection,
    token_hash: &[u8],
    now: u64,
) -> Result<Option<DeviceRef>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT username, device_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
        )?
        .query_row(params![token_hash, to_i64(now)], |row| {
            Ok(DeviceRef {
                username: row.get(0)?,
                device_id: row.get(1)?,
            })
        })
        .optional()?)
}

#[async_trait]
impl Delivery for SqliteStore {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        self.write(move |c| append(c, &request)).await
    }

    async fn inbox(
        &self,
        device: &DeviceRef,
        cursor: u64,
        limit: u32,
    ) -> Result<Vec<Delivered>, StoreError> {
        let device = device.clone();
        self.read(move |c| inbox(c, &device, cursor, limit)).await
    }

    async fn live_inbox(
        &self,
        token_hash: &[u8],
        now: u64,
        device: &DeviceRef,
        cursor: u64,
        limit: u32,
    ) -> Result<Option<Vec<Delivered>>, StoreError> {
        let (token_hash, device) = (token_hash.to_vec(), device.clone());
        self.read(move |c| {
            if session_device(c, &token_hash, now)?.as_ref() != Some(&device) {
                return Ok(None);
            }
            inbox(c, &device, cursor, limit).map(Some)
        })
        .await
    }

    async fn ack(&self, device: &DeviceRef, cursors: &[u64]) -> Result<(), StoreError> {
        let (device, cursors) = (device.clone(), cursors.to_vec());
        self.write(move |c| ack(c, &device, &cursors)).await
    }

    async fn log_len(&self) -> Result<u64, StoreError> {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM log", [], |row| row.get(0))?))
            .await
    }
}
