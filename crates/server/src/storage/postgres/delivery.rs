//! Conversation logs, mailboxes and acknowledgements on PostgreSQL.
//!
//! Every statement here is prepared once per pooled connection and reused
//! (`prepare_cached`): a plain query string would be parsed and planned again, in an
//! extra round trip, on every call.
//!
//! Three rules keep concurrent transactions correct:
//!
//! - **One append at a time per conversation.** An append first makes sure its
//!   conversation's row exists, then locks it (`SELECT ... FOR UPDATE`): the membership
//!   and epoch checks, the sequence numbers and the membership update all happen under
//!   that lock, so of two commits for one epoch exactly one is accepted.
//! - **Mailbox positions commit in order.** A device's mailbox positions (its cursors)
//!   come from its row in `mailbox_counters`, which the appending transaction keeps locked
//!   until it commits. So when a reader sees position `n`, every position below `n` of
//!   that device has committed too (or was rolled back and never used): a reader that
//!   moves its cursor past what it saw never skips a row that commits later, as it could
//!   with one sequence shared by all devices. Counters of several recipients are locked
//!   in one sorted order, so appends to overlapping recipients cannot deadlock.
//! - **A log entry is deleted by whoever removes its last mailbox row.** After deleting
//!   its mailbox rows, an acknowledgement (or revocation) locks the log entries they
//!   pointed to, in sorted order, and only then looks for remaining mailbox rows: of two
//!   devices acknowledging one entry at once, the second to get the lock sees the first's
//!   delete, so an entry is never left behind with no mailbox row to remove it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{record, PostgresStore, Transaction};
use crate::storage::{
    to_i64, to_u64, AppendRequest, Appended, Delivered, Delivery, DeviceRef, Event, Kind,
    StoreError, MAX_PAGE_BYTES,
};

/// One log entry to write.
struct Entry<'a> {
    message_id: &'a [u8],
    kind: Kind,
    payload: &'a [u8],
    recipients: &'a [DeviceRef],
}

async fn append(tx: &Transaction<'_>, request: &AppendRequest) -> Result<Appended, StoreError> {
    let conversation = request.conversation.as_slice();
    let request_epoch = i64::try_from(request.epoch).map_err(|_| StoreError::Conflict)?;
    // A new conversation starts at the epoch of its first message.
    let created = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO conversations (id, epoch, next) VALUES ($1, $2, 0)
             ON CONFLICT (id) DO NOTHING",
            )
            .await?,
            &[&conversation, &request_epoch],
        )
        .await?
        == 1;
    let state = tx
        .query_one(
            &tx.prepare_cached("SELECT epoch, next FROM conversations WHERE id = $1 FOR UPDATE")
                .await?,
            &[&conversation],
        )
        .await?;
    let (mut epoch, mut next): (i64, i64) = (state.try_get(0)?, state.try_get(1)?);
    if !created {
        let member: bool = tx
            .query_one(
                &tx.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM members WHERE conversation = $1
                 AND username = $2 AND device_id = $3)",
                )
                .await?,
                &[
                    &conversation,
                    &request.sender.username,
                    &request.sender.device_id,
                ],
            )
            .await?
            .try_get(0)?;
        if !member {
            return Err(StoreError::Forbidden);
        }
    }
    let existing = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT seq FROM message_ids WHERE conversation = $1 AND message_id = $2",
            )
            .await?,
            &[&conversation, &request.message_id],
        )
        .await?;
    if let Some(row) = existing {
        return Ok(Appended::Duplicate(to_u64(row.try_get(0)?)));
    }

    let mut everyone = request.recipients.clone();
    everyone.extend_from_slice(&request.removed);
    let welcome_id = request.welcome_id();
    let mut entries = vec![Entry {
        message_id: &request.message_id,
        kind: request.kind,
        payload: &request.payload,
        recipients: &everyone,
    }];
    if let Some((payload, recipients)) = &request.welcome {
        entries.push(Entry {
            message_id: &welcome_id,
            kind: Kind::Welcome,
            payload,
            recipients,
        });
    }
    let mut first_seq = None;
    let mut deliveries: Vec<(&DeviceRef, i64)> = Vec::new();
    for entry in &entries {
        if entry.kind == Kind::Commit {
            if request_epoch != epoch {
                return Err(StoreError::Conflict);
            }
            epoch = epoch.checked_add(1).ok_or(StoreError::Conflict)?;
        }
        let seq = next;
        next = next.checked_add(1).ok_or(StoreError::Conflict)?;
        first_seq.get_or_insert(seq);
        // A message for no one (a commit in a conversation of one device) only moves the
        // conversation on: nothing is kept, since nothing would ever delete it.
        if entry.recipients.is_empty() {
            continue;
        }
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO log (conversation, seq, kind, message_id, payload, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?,
            &[
                &conversation,
                &seq,
                &(entry.kind as i16),
                &entry.message_id,
                &entry.payload,
                &to_i64(request.now),
            ],
        )
        .await?;
        deliveries.extend(entry.recipients.iter().map(|device| (device, seq)));
    }
    tx.execute(
        &tx.prepare_cached("UPDATE conversations SET epoch = $2, next = $3 WHERE id = $1")
            .await?,
        &[&conversation, &epoch, &next],
    )
    .await?;
    deliver(tx, conversation, &deliveries).await?;
    let first_seq = first_seq.unwrap_or(0);
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO message_ids (conversation, message_id, seq, created_at)
         VALUES ($1, $2, $3, $4)",
        )
        .await?,
        &[
            &conversation,
            &request.message_id,
            &first_seq,
            &to_i64(request.now),
        ],
    )
    .await?;
    if created || request.kind == Kind::Commit {
        set_members(tx, request).await?;
    }
    record(tx, Event::MessageSent, &request.actor, request.now).await?;
    Ok(Appended::New(to_u64(first_seq)))
}

/// Writes one mailbox row per `(device, seq)`, at the device's next mailbox positions.
async fn deliver(
    tx: &Transaction<'_>,
    conversation: &[u8],
    deliveries: &[(&DeviceRef, i64)],
) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    // Each device's entries, in the order they were appended.
    let mut per_device: BTreeMap<(&str, &[u8]), Vec<i64>> = BTreeMap::new();
    for (device, seq) in deliveries {
        per_device
            .entry((device.username.as_str(), device.device_id.as_slice()))
            .or_default()
            .push(*seq);
    }
    let users: Vec<&str> = per_device.keys().map(|(u, _)| *u).collect();
    let ids: Vec<&[u8]> = per_device.keys().map(|(_, d)| *d).collect();
    let counts: Vec<i64> = per_device.values().map(|s| s.len() as i64).collect();
    // Advances every recipient's counter, locking the rows in the ORDER BY's order (an
    // INSERT ... SELECT takes its rows one by one) until this transaction ends.
    let counters = tx
        .query(
            &tx.prepare_cached(
                "INSERT INTO mailbox_counters AS c (username, device_id, last)
             SELECT u, d, n FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS t (u, d, n)
             ORDER BY u COLLATE \"C\", d
             ON CONFLICT (username, device_id) DO UPDATE SET last = c.last + EXCLUDED.last
             RETURNING username, device_id, last",
            )
            .await?,
            &[&users, &ids, &counts],
        )
        .await?;
    let (mut row_users, mut row_ids, mut positions, mut seqs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for counter in &counters {
        let user: &str = counter.try_get(0)?;
        let id: &[u8] = counter.try_get(1)?;
        let last: i64 = counter.try_get(2)?;
        let entries = per_device.get(&(user, id)).ok_or(StoreError::Corrupt)?;
        let first = last - entries.len() as i64 + 1;
        for (position, seq) in (first..).zip(entries) {
            row_users.push(user);
            row_ids.push(id);
            positions.push(position);
            seqs.push(*seq);
        }
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO mailbox (username, device_id, id, conversation, seq)
         SELECT u, d, p, $5::bytea, s
         FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[]) AS t (u, d, p, s)",
        )
        .await?,
        &[&row_users, &row_ids, &positions, &seqs, &conversation],
    )
    .await?;
    Ok(())
}

/// Sets the members to the sender, the recipients and the Welcome's recipients.
async fn set_members(tx: &Transaction<'_>, request: &AppendRequest) -> Result<(), StoreError> {
    let conversation = request.conversation.as_slice();
    tx.execute(
        &tx.prepare_cached("DELETE FROM members WHERE conversation = $1")
            .await?,
        &[&conversation],
    )
    .await?;
    let added = request.welcome.iter().flat_map(|(_, to)| to);
    let members: Vec<&DeviceRef> = std::iter::once(&request.sender)
        .chain(&request.recipients)
        .chain(added)
        .collect();
    let users: Vec<&str> = members.iter().map(|d| d.username.as_str()).collect();
    let ids: Vec<&[u8]> = members.iter().map(|d| d.device_id.as_slice()).collect();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO members (conversation, username, device_id)
         SELECT $1::bytea, u, d FROM unnest($2::text[], $3::bytea[]) AS t (u, d)
         ON CONFLICT DO NOTHING",
        )
        .await?,
        &[&conversation, &users, &ids],
    )
    .await?;
    Ok(())
}

/// Deletes the log entries named by `rows` (`conversation, seq`, as returned by a mailbox
/// delete) that no mailbox row refers to any more.
pub(super) async fn drop_orphans(tx: &Transaction<'_>, rows: &[Row]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (mut conversations, mut seqs) = (Vec::with_capacity(rows.len()), Vec::new());
    for row in rows {
        conversations.push(row.try_get::<_, &[u8]>(0)?);
        seqs.push(row.try_get::<_, i64>(1)?);
    }
    // Lock first, in one order; look for mailbox rows in the next statement, which sees
    // every transaction that held one of these locks before us.
    tx.execute(
        &tx.prepare_cached(
            "SELECT 1 FROM log WHERE (conversation, seq) IN
             (SELECT * FROM unnest($1::bytea[], $2::bigint[]))
         ORDER BY conversation, seq FOR UPDATE",
        )
        .await?,
        &[&conversations, &seqs],
    )
    .await?;
    tx.execute(
        &tx.prepare_cached(
            "DELETE FROM log l USING unnest($1::bytea[], $2::bigint[]) AS t (c, s)
         WHERE l.conversation = t.c AND l.seq = t.s AND NOT EXISTS
             (SELECT 1 FROM mailbox m WHERE m.conversation = l.conversation AND m.seq = l.seq)",
        )
        .await?,
        &[&conversations, &seqs],
    )
    .await?;
    Ok(())
}

async fn ack(
    tx: &Transaction<'_>,
    (device, cursors): &(&DeviceRef, &[u64]),
) -> Result<(), StoreError> {
    let cursors: Vec<i64> = cursors.iter().map(|c| to_i64(*c)).collect();
    let entries = tx
        .query(
            &tx.prepare_cached(
                "DELETE FROM mailbox WHERE username = $1 AND device_id = $2 AND id = ANY ($3)
             RETURNING conversation, seq",
            )
            .await?,
            &[&device.username, &device.device_id, &cursors],
        )
        .await?;
    drop_orphans(tx, &entries).await
}

fn delivered(row: &Row) -> Result<Delivered, StoreError> {
    let kind: i16 = row.try_get(3)?;
    Ok(Delivered {
        cursor: to_u64(row.try_get(0)?),
        conversation: row.try_get(1)?,
        seq: to_u64(row.try_get(2)?),
        kind: Kind::from_i64(kind.into()).ok_or(StoreError::Corrupt)?,
        payload: row.try_get(4)?,
    })
}

#[async_trait]
impl Delivery for PostgresStore {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        self.transact(&request, |tx, request| Box::pin(append(tx, request)))
            .await
    }

    async fn inbox(
        &self,
        device: &DeviceRef,
        cursor: u64,
        limit: u32,
    ) -> Result<Vec<Delivered>, StoreError> {
        // The page ends before the entry that would take it past MAX_PAGE_BYTES (the
        // first entry always fits); the sizes come from the row headers, so the database
        // sends only the payloads returned.
        let rows = {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT id, conversation, seq, kind, payload FROM (
                     SELECT m.id, m.conversation, m.seq, l.kind, l.payload,
                            row_number() OVER w AS n, sum(octet_length(l.payload)) OVER w AS bytes
                     FROM mailbox m JOIN log l ON l.conversation = m.conversation AND l.seq = m.seq
                     WHERE m.username = $1 AND m.device_id = $2 AND m.id > $3
                     WINDOW w AS (ORDER BY m.id)
                     ORDER BY m.id LIMIT $4
                 ) page WHERE n = 1 OR bytes <= $5 ORDER BY id",
                )
                .await?;
            client
                .query(
                    &statement,
                    &[
                        &device.username,
                        &device.device_id,
                        &to_i64(cursor),
                        &i64::from(limit),
                        &to_i64(MAX_PAGE_BYTES as u64),
                    ],
                )
                .await?
        };
        rows.iter().map(delivered).collect()
    }

    async fn live_inbox(
        &self,
        token_hash: &[u8],
        now: u64,
        device: &DeviceRef,
        cursor: u64,
        limit: u32,
    ) -> Result<Option<Vec<Delivered>>, StoreError> {
        // One statement, so one snapshot: the session check and the page (as in `inbox`).
        // Without a live session it returns one row whose `live` is false; with one and an
        // empty page, one row of nulls.
        let rows = {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "WITH live AS (
                     SELECT EXISTS (SELECT 1 FROM sessions WHERE token_hash = $6
                         AND username = $1 AND device_id = $2 AND expires_at > $7) AS ok
                 )
                 SELECT page.id, page.conversation, page.seq, page.kind, page.payload, live.ok
                 FROM live LEFT JOIN LATERAL (
                     SELECT id, conversation, seq, kind, payload FROM (
                         SELECT m.id, m.conversation, m.seq, l.kind, l.payload,
                                row_number() OVER w AS n,
                                sum(octet_length(l.payload)) OVER w AS bytes
                         FROM mailbox m
                         JOIN log l ON l.conversation = m.conversation AND l.seq = m.seq
                         WHERE m.username = $1 AND m.device_id = $2 AND m.id > $3
                         WINDOW w AS (ORDER BY m.id)
                         ORDER BY m.id LIMIT $4
                     ) p WHERE n = 1 OR bytes <= $5
                 ) page ON live.ok
                 ORDER BY page.id",
                )
                .await?;
            client
                .query(
                    &statement,
                    &[
                        &device.username,
                        &device.device_id,
                        &to_i64(cursor),
                        &i64::from(limit),
                        &to_i64(MAX_PAGE_BYTES as u64),
                        &token_hash,
                        &to_i64(now),
                    ],
                )
                .await?
        };
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            if !row.try_get::<_, bool>(5)? {
                return Ok(None);
            }
            if row.try_get::<_, Option<i64>>(0)?.is_some() {
                page.push(delivered(row)?);
            }
        }
        Ok(Some(page))
    }

    async fn ack(&self, device: &DeviceRef, cursors: &[u64]) -> Result<(), StoreError> {
        self.transact(&(device, cursors), |tx, args| Box::pin(ack(tx, args)))
            .await
    }

    async fn log_len(&self) -> Result<u64, StoreError> {
        let count: i64 = {
            let client = self.client().await?;
            let statement = client.prepare_cached("SELECT COUNT(*) FROM log").await?;
            client.query_one(&statement, &[]).await?.try_get(0)?
        };
        Ok(to_u64(count))
    }
}
