//! Delivery storage: conversation logs, mailboxes, acknowledgements.
//!
//! Every accepted message gets the next sequence number of its conversation's log and one
//! mailbox row per recipient device. A commit is accepted only for the conversation's
//! current epoch and moves it to the next, inside one transaction, so when two members
//! commit at once exactly one wins. Messages are idempotent by id: sending the same id
//! again returns the first sequence number and stores nothing.

use rusqlite::{params, OptionalExtension, Transaction};

use crate::store::{DeviceRef, Store, StoreError};

/// The kind of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An MLS application message.
    Application = 0,
    /// An MLS commit; moves the conversation to the next epoch.
    Commit = 1,
    /// An MLS Welcome for added devices.
    Welcome = 2,
}

impl Kind {
    fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Application),
            1 => Some(Self::Commit),
            2 => Some(Self::Welcome),
            _ => None,
        }
    }
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct Append<'a> {
    /// The conversation (MLS group id).
    pub conversation: &'a [u8],
    /// The sender-chosen id (idempotency key).
    pub message_id: &'a [u8],
    /// What it is.
    pub kind: Kind,
    /// The epoch it was sent in (read from the MLS header).
    pub epoch: u64,
    /// The bytes to deliver.
    pub payload: &'a [u8],
    /// The devices to deliver to.
    pub recipients: &'a [DeviceRef],
}

/// The outcome of [`Store::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored at this sequence number.
    New(u64),
    /// The same message id was already stored at this sequence number.
    Duplicate(u64),
}

/// Most payload bytes one inbox page returns (at least one message is always returned).
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// One entry of a device's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Position in the device's mailbox; acknowledge it when processed.
    pub cursor: u64,
    /// The conversation.
    pub conversation: Vec<u8>,
    /// Position in the conversation's log.
    pub seq: u64,
    /// What it is.
    pub kind: Kind,
    /// The bytes.
    pub payload: Vec<u8>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Appends a message to its conversation's log and the recipients' mailboxes, and
    /// with it (in the same transaction, so both or neither are stored) a Welcome.
    /// A commit for any epoch but the current one is [`StoreError::Conflict`].
    ///
    /// Only a member may post to an existing conversation ([`StoreError::Forbidden`]). A
    /// new conversation, and every accepted commit, sets the members to the sender, the
    /// recipients and the Welcome's recipients — not the `removed` devices, which get the
    /// commit but may post no more.
    pub fn append(
        &self,
        sender: &DeviceRef,
        message: &Append<'_>,
        welcome: Option<&Append<'_>>,
        removed: &[DeviceRef],
        now: u64,
    ) -> Result<Appended, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1)",
            [message.conversation],
            |row| row.get(0),
        )?;
        let member: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM members WHERE conversation = ?1 AND username = ?2
             AND device_id = ?3)",
            params![message.conversation, sender.username, sender.device_id],
            |row| row.get(0),
        )?;
        if known && !member {
            return Err(StoreError::Forbidden);
        }
        let mut everyone = message.recipients.to_vec();
        everyone.extend_from_slice(removed);
        let appended = append_in(
            &tx,
            &Append {
                recipients: &everyone,
                ..message.clone()
            },
            now,
        )?;
        if let Appended::New(_) = appended {
            if let Some(welcome) = welcome {
                append_in(&tx, welcome, now)?;
            }
            if !known || message.kind == Kind::Commit {
                tx.execute(
                    "DELETE FROM members WHERE conversation = ?1",
                    [message.conversation],
                )?;
                let added = welcome.map(|w| w.recipients).unwrap_or_default();
                for device in std::iter::once(sender)
                    .chain(message.recipients)
                    .chain(added)
                {
                    tx.execute(
                        "INSERT OR IGNORE INTO members (conversation, username, device_id)
                         VALUES (?1, ?2, ?3)",
                        params![message.conversation, device.username, device.device_id],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(appended)
    }

    /// Up to `limit` undelivered entries of `device`'s mailbox after `cursor`, in order.
    pub fn inbox(
        &self,
        device: &DeviceRef,
        cursor: u64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
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
            out.push(Delivery {
                cursor: to_u64(cursor),
                conversation,
                seq: to_u64(seq),
                kind,
                payload,
            });
        }
        Ok(out)
    }

    /// Acknowledges mailbox entries of `device`; log entries no mailbox needs any more are
    /// deleted at once (delivered ciphertext is not kept).
    pub fn ack(&self, device: &DeviceRef, cursors: &[u64]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for cursor in cursors {
            let entry: Option<(Vec<u8>, i64)> = tx
                .query_row(
                    "DELETE FROM mailbox WHERE id = ?1 AND username = ?2 AND device_id = ?3
                     RETURNING conversation, seq",
                    params![to_i64(*cursor), device.username, device.device_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            if let Some((conversation, seq)) = entry {
                tx.execute(
                    "DELETE FROM log WHERE conversation = ?1 AND seq = ?2 AND NOT EXISTS
                     (SELECT 1 FROM mailbox WHERE conversation = ?1 AND seq = ?2)",
                    params![conversation, seq],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// How many log entries are stored (for tests of deletion).
    pub fn log_len(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM log", [], |row| row.get(0))?)
    }
}

/// Appends one message inside `tx` (see [`Store::append`]).
fn append_in(tx: &Transaction<'_>, message: &Append<'_>, now: u64) -> Result<Appended, StoreError> {
    if let Some(seq) = existing(tx, message)? {
        return Ok(Appended::Duplicate(seq));
    }
    let state: Option<(i64, i64)> = tx
        .query_row(
            "SELECT epoch, next FROM conversations WHERE id = ?1",
            [message.conversation],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (epoch, seq) = match state {
        Some((epoch, next)) => (to_u64(epoch), to_u64(next)),
        None => (message.epoch, 0),
    };
    if message.kind == Kind::Commit && message.epoch != epoch {
        return Err(StoreError::Conflict);
    }
    let new_epoch = if message.kind == Kind::Commit {
        epoch.checked_add(1).ok_or(StoreError::Conflict)?
    } else {
        epoch
    };
    tx.execute(
        "INSERT INTO conversations (id, epoch, next) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET epoch = ?2, next = ?3",
        params![message.conversation, to_i64(new_epoch), to_i64(seq + 1)],
    )?;
    // A message for no one (a commit in a conversation of one device) only moves the
    // conversation on: nothing is kept, since nothing would ever delete it.
    if message.recipients.is_empty() {
        return Ok(Appended::New(seq));
    }
    tx.execute(
        "INSERT INTO log (conversation, seq, kind, message_id, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            message.conversation,
            to_i64(seq),
            message.kind as i64,
            message.message_id,
            message.payload,
            to_i64(now)
        ],
    )?;
    for device in message.recipients {
        tx.execute(
            "INSERT INTO mailbox (username, device_id, conversation, seq) VALUES (?1, ?2, ?3, ?4)",
            params![
                device.username,
                device.device_id,
                message.conversation,
                to_i64(seq)
            ],
        )?;
    }
    Ok(Appended::New(seq))
}

fn existing(tx: &Transaction<'_>, message: &Append<'_>) -> Result<Option<u64>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT seq FROM log WHERE conversation = ?1 AND message_id = ?2",
            params![message.conversation, message.message_id],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .map(to_u64))
}

/// What one [`Store::sweep`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Undelivered messages older than the retention.
    pub messages: u64,
    /// Expired challenges, sessions and claim-log rows.
    pub expired: u64,
}

impl Store {
    /// Deletes undelivered ciphertext older than `retention_secs` (with its mailbox
    /// entries) and expired challenges, sessions and claim-log rows, as of `now`.
    pub fn sweep(&self, now: u64, retention_secs: u64) -> Result<Swept, StoreError> {
        let cutoff = to_i64(now.saturating_sub(retention_secs));
        let now = to_i64(now);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM mailbox WHERE EXISTS (SELECT 1 FROM log l WHERE l.conversation =
             mailbox.conversation AND l.seq = mailbox.seq AND l.created_at < ?1)",
            [cutoff],
        )?;
        let messages = tx.execute("DELETE FROM log WHERE created_at < ?1", [cutoff])?;
        let mut expired = tx.execute("DELETE FROM challenges WHERE expires_at <= ?1", [now])?;
        expired += tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        expired += tx.execute(
            "DELETE FROM claims WHERE at < ?1",
            [now.saturating_sub(3600)],
        )?;
        let event_cutoff = now.saturating_sub(to_i64(crate::store::EVENT_RETENTION_SECS));
        expired += tx.execute("DELETE FROM events WHERE at < ?1", [event_cutoff])?;
        tx.commit()?;
        Ok(Swept {
            messages: messages as u64,
            expired: expired as u64,
        })
    }
}
