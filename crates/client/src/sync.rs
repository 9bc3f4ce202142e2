//! Fetching and processing the inbox: Welcomes, commits and messages, each stored before it
//! is acknowledged; then the upkeep a sync does (receipts, this user's devices in every
//! conversation, pending leave requests, the KeyPackage pool).

use std::collections::BTreeMap;

use mls_rs::MlsMessage;
use mls_rs_core::key_package::KeyPackageStorage;

use sotto_api::{DeviceAddress, InboxMessage, MessageKind};
use sotto_core::content::{Body, ReceiptKind};
use sotto_core::conversation::{ConversationError, Event, ReceivedMessage};

use crate::client::Client;
use crate::conversations::{address, hex_id, CONTROL_LEAVE, CONTROL_NAME};
use crate::error::{ClientError, Result};
use crate::mls_store::MlsStore;
use crate::model::{Message, StoredAttachment, SyncReport};

/// The KeyPackage references a Welcome is addressed to (none if it does not parse; the
/// join then reports why).
fn welcome_key_packages(welcome: &[u8]) -> Vec<Vec<u8>> {
    MlsMessage::from_bytes(welcome)
        .map(|m| {
            m.welcome_key_package_references()
                .into_iter()
                .map(|r| r.to_vec())
                .collect()
        })
        .unwrap_or_default()
}

/// Inbox entries fetched per request.
const PAGE: u32 = 100;
/// Longest group name accepted from a conversation.
const MAX_NAME: usize = 100;

impl Client {
    /// Fetches and processes everything waiting on the server, then does the upkeep.
    /// The report lists every message stored since the last `sync`, including those a
    /// send or a group change fetched on its way.
    pub async fn sync(&mut self) -> Result<SyncReport> {
        let mut report = self.sync_inner().await?;
        let earlier = std::mem::take(&mut self.profile.unreported);
        if !earlier.is_empty() {
            self.save_profile()?;
            let mut messages = Vec::new();
            for (conversation, id) in earlier {
                if let Some(m) = self.load_message(&conversation, &id)? {
                    messages.push(m);
                }
            }
            messages.append(&mut report.messages);
            report.messages = messages;
        }
        Ok(report)
    }

    /// Syncs on the SDK's own initiative; what arrives is kept for the next [`sync`](Self::sync).
    pub(crate) async fn catch_up(&mut self) -> Result<()> {
        let report = self.sync_inner().await?;
        if !report.messages.is_empty() {
            self.profile.unreported.extend(
                report
                    .messages
                    .iter()
                    .map(|m| (m.conversation.clone(), m.id.clone())),
            );
            self.save_profile()?;
        }
        Ok(())
    }

    async fn sync_inner(&mut self) -> Result<SyncReport> {
        self.purge_expired()?;
        self.settle_commits_in_doubt().await?;
        let mut report = SyncReport::default();
        let mut delivered = BTreeMap::new();
        // Entries processed by an earlier sync whose acknowledgment did not arrive.
        if !self.profile.unacked.is_empty() {
            let token = self.token().await?;
            self.api.ack(&token, self.profile.unacked.clone()).await?;
            self.profile.unacked.clear();
            self.save_profile()?;
        }
        loop {
            let token = self.token().await?;
            let inbox = match self.api.inbox(&token, self.profile.cursor, PAGE).await {
                Err(ClientError::Server { status: 401, .. }) => {
                    self.drop_session()?;
                    continue;
                }
                other => other?,
            };
            // Only entries after the cursor are new. A server that serves old entries
            // again (or nothing new) ends the sync instead of keeping it busy forever.
            let cursor = self.profile.cursor;
            let fresh: Vec<_> = inbox
                .messages
                .into_iter()
                .filter(|m| m.cursor > cursor)
                .collect();
            if fresh.is_empty() {
                break;
            }
            let cursors = self
                .process_entries(fresh, &mut report, &mut delivered)
                .await?;
            self.api.ack(&token, cursors).await?;
            self.profile.unacked.clear();
            self.save_profile()?;
        }
        self.upkeep(&mut report, delivered).await;
        Ok(report)
    }

    /// Processes inbox entries in order; returns their cursors (to acknowledge). The
    /// profile's cursor advances only after each entry's effects are stored.
    pub(crate) async fn process_entries(
        &mut self,
        entries: Vec<InboxMessage>,
        report: &mut SyncReport,
        delivered: &mut BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<u64>> {
        let mut cursors = Vec::with_capacity(entries.len());
        for entry in entries {
            self.process_entry(&entry, report, delivered).await?;
            self.profile.cursor = self.profile.cursor.max(entry.cursor);
            cursors.push(entry.cursor);
        }
        // Until the server confirms the acknowledgment, the cursors are kept to send again.
        self.profile.unacked.extend(cursors.iter().copied());
        self.save_profile()?;
        Ok(cursors)
    }

    async fn process_entry(
        &mut self,
        entry: &InboxMessage,
        report: &mut SyncReport,
        delivered: &mut BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        if entry.kind == MessageKind::Welcome {
            return self.join(&entry.payload.0, report);
        }
        let id = entry.conversation.clone();
        match self.conversation_info(&id) {
            Ok(info) if info.active => {}
            // A conversation this device left or never joined: nothing to do.
            _ => return Ok(()),
        }
        let now = self.now();
        let outcome = self.conversation(&id)?.process(&entry.payload.0, now);
        match outcome {
            Ok(Event::Message(message)) => {
                // The message is stored before the conversation (whose state no longer
                // holds its key): a crash between the two redelivers it, and the stored
                // copy makes the second one a duplicate, not a loss.
                match self.receive(&id, *message, report).await {
                    Ok(Some(stored)) => delivered.entry(id.clone()).or_default().push(stored),
                    Ok(None) => {}
                    Err(e @ (ClientError::Attachment(_) | ClientError::Invalid(_))) => {
                        let text = format!("a message in conversation {id} was dropped: {e}");
                        report.notices.push(self.notice(text)?);
                    }
                    Err(e) => return Err(e),
                }
                self.conversation(&id)?.persist()?;
            }
            Ok(Event::Commit(summary)) => {
                if summary.self_removed {
                    let text = format!("you were removed from conversation {id}");
                    report.notices.push(self.notice(text)?);
                    self.forget_conversation(&id)?;
                } else {
                    for added in &summary.added {
                        self.observe_root_key(added.user.as_str(), added.root_key.as_bytes())?;
                    }
                    self.save_info(&id, None)?;
                }
            }
            Ok(Event::Proposal) => self.conversation(&id)?.persist()?,
            Err(ConversationError::Replayed) => {}
            Err(e) => {
                let text = format!("a message in conversation {id} was rejected: {e}");
                report.notices.push(self.notice(text)?);
            }
        }
        Ok(())
    }

    fn join(&mut self, welcome: &[u8], report: &mut SyncReport) -> Result<()> {
        let addressed_to = welcome_key_packages(welcome);
        let conversation = match self.device.join(welcome) {
            Ok(c) => c,
            Err(ConversationError::AlreadyMember) => return Ok(()),
            Err(e) => {
                let text = format!("an invitation to a conversation was rejected: {e}");
                report.notices.push(self.notice(text)?);
                return Ok(());
            }
        };
        let id = hex_id(conversation.id());
        let members = conversation.members();
        self.conversations.insert(id.clone(), conversation);
        for member in &members {
            self.observe_root_key(
                member.identity.user.as_str(),
                member.identity.root_key.as_bytes(),
            )?;
        }
        self.save_info(&id, Some(None))?;
        self.check_last_resort(&id, addressed_to, report)?;
        report.joined.push(id);
        Ok(())
    }

    /// Notices a join through this device's last-resort KeyPackage, without trusting the
    /// server to report it: mls-rs deletes a one-time KeyPackage's private keys on joining
    /// and keeps only the last-resort one, so a reference still held after the join is
    /// the last-resort KeyPackage. The upkeep then uploads a new one and deletes this one,
    /// so a server that keeps handing it out gets invitations this device refuses.
    fn check_last_resort(
        &mut self,
        id: &str,
        addressed_to: Vec<Vec<u8>>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let store = MlsStore(std::sync::Arc::clone(&self.store));
        for reference in addressed_to {
            if store.get(&reference)?.is_some() && !self.used_last_resort.contains(&reference) {
                self.used_last_resort.push(reference);
                let text = format!(
                    "you were added to conversation {id} through this device's last-resort \
                     KeyPackage: its one-time KeyPackages were used up, or the server withheld \
                     them. A new last-resort KeyPackage replaces it."
                );
                report.notices.push(self.notice(text)?);
            }
        }
        Ok(())
    }

    /// Acts on a decrypted message; returns its id if a message was stored.
    async fn receive(
        &mut self,
        id: &str,
        message: ReceivedMessage,
        report: &mut SyncReport,
    ) -> Result<Option<String>> {
        let sender = message.sender.clone();
        let from = sender.user.to_string();
        // From this user's other device, or from a device that only claims this user's name.
        let mine = from == self.profile.username;
        if mine && !sender.same_user(self.identity()) {
            let text = format!(
                "a device calling itself {from} but certified by another account key sent a \
                 message in conversation {id}; it was not shown. It is not one of your devices."
            );
            report.notices.push(self.notice(text)?);
            return Ok(None);
        }
        let contact = self.observe_root_key(&from, sender.root_key.as_bytes())?;
        if contact.verified && contact.root_key != sender.root_key.as_bytes() {
            let text = format!(
                "a message from {from} in conversation {id} came from a device under an account \
                 key other than the one you verified; it was not shown"
            );
            report.notices.push(self.notice(text)?);
            return Ok(None);
        }
        let content = &message.content;
        let message_id = hex_id(&content.id.0);
        let (text, attachment) = match &content.body {
            Body::Text(text) => (text.clone(), None),
            Body::Attachment(a) => {
                let locator = String::from_utf8(a.blob_id.clone()).map_err(|_| {
                    ClientError::Attachment("malformed attachment reference".into())
                })?;
                let stored = StoredAttachment {
                    locator,
                    key: a.key,
                    nonce: a.nonce,
                    ciphertext_sha256: a.ciphertext_sha256,
                    size: a.size,
                    file_name: a.file_name.chars().take(255).collect(),
                    media_type: a.media_type.chars().take(100).collect(),
                };
                (stored.file_name.clone(), Some(stored))
            }
            Body::Receipt(_) if mine => return Ok(None),
            Body::Receipt(receipt) => {
                for target in &receipt.messages {
                    self.apply_receipt(id, &hex_id(&target.0), &from, receipt.kind)?;
                }
                return Ok(None);
            }
            Body::Control(control) if control.kind == CONTROL_NAME => {
                // Only a manager names a group; a 1:1 conversation has no name.
                let is_manager = self
                    .conversation(id)?
                    .policy()
                    .is_manager(&sender.root_fingerprint);
                if !is_manager || self.conversation_info(id)?.direct {
                    return Ok(None);
                }
                let name: String = String::from_utf8_lossy(&control.payload)
                    .chars()
                    .take(MAX_NAME)
                    .collect();
                self.save_info(id, Some(Some(name)))?;
                return Ok(None);
            }
            Body::Control(control) if control.kind == CONTROL_LEAVE && mine => {
                if !report.left.iter().any(|l| l == id) {
                    report.left.push(id.to_owned());
                }
                return Ok(None);
            }
            Body::Control(_) | Body::Call(_) => return Ok(None),
        };
        if message.expires_at_ms <= self.now() || self.load_message(id, &message_id)?.is_some() {
            return Ok(None);
        }
        let stored = Message {
            conversation: id.to_owned(),
            id: message_id.clone(),
            from,
            from_device: sender.device_id.to_hex(),
            text,
            attachment,
            sent_at: content.sent_at_ms,
            expires_at: message.expires_at_ms,
            burn_on_read: content.burn_on_read,
            // Sent by this user's other device: this user's own message.
            outgoing: mine,
            read: mine,
            delivered_to: vec![],
            read_by: vec![],
        };
        self.store_message(&stored)?;
        if let Some(attachment) = &stored.attachment {
            match self.fetch_attachment(attachment).await {
                Ok(data) => self.put_attachment_data(&stored, &data)?,
                Err(e) => {
                    let text = format!(
                        "an attachment from {} could not be fetched: {e}",
                        stored.from
                    );
                    report.notices.push(self.notice(text)?);
                }
            }
        }
        report.messages.push(stored);
        // Delivery receipts are for other users' messages only.
        Ok((!mine).then_some(message_id))
    }

    fn apply_receipt(
        &mut self,
        id: &str,
        message_id: &str,
        from: &str,
        kind: ReceiptKind,
    ) -> Result<()> {
        let Some(mut message) = self.load_message(id, message_id)? else {
            return Ok(());
        };
        if !message.outgoing {
            return Ok(());
        }
        let list = match kind {
            ReceiptKind::Delivered => &mut message.delivered_to,
            ReceiptKind::Read => &mut message.read_by,
        };
        if !list.iter().any(|u| u == from) {
            list.push(from.to_owned());
        }
        if kind == ReceiptKind::Read && message.burn_on_read {
            // The sender's copy of a burn-on-read message goes once it was read.
            self.delete_message(id, message_id)?;
            crate::store::checkpoint(&*self.store.conn()?)?;
            return Ok(());
        }
        self.store_message(&message)
    }

    /// The work after processing the inbox. Failures become notices: the messages are
    /// already stored, and the next sync tries again.
    /// The upkeep a sync does, without fetching the inbox, for front ends that receive
    /// over the live connection: commit pending leave requests, keep this user's devices
    /// in its conversations, refill KeyPackages. Failures become notices in the report.
    pub async fn maintain(&mut self) -> SyncReport {
        let mut report = SyncReport::default();
        // A commit in doubt blocks every other commit of its conversation until settled.
        if let Err(e) = self.settle_commits_in_doubt().await {
            tracing::debug!("a commit in doubt is not settled yet: {e}");
        }
        self.upkeep(&mut report, BTreeMap::new()).await;
        report
    }

    async fn upkeep(&mut self, report: &mut SyncReport, delivered: BTreeMap<String, Vec<String>>) {
        // Pending proposals first: MLS sends nothing else in a conversation while one waits.
        if let Err(e) = self.commit_pending_proposals().await {
            tracing::debug!("pending proposals not committed: {e}");
        }
        // Nothing at all is sent before the user acknowledged the ephemerality policy.
        let delivered = if self.policy_accepted() {
            delivered
        } else {
            BTreeMap::new()
        };
        for (id, ids) in delivered {
            if let Err(e) = self.send_receipt(&id, ReceiptKind::Delivered, &ids).await {
                tracing::debug!("delivery receipt not sent: {e}");
            }
        }
        for id in report.left.clone() {
            if let Err(e) = self.leave_now(&id).await {
                tracing::debug!("could not follow the user's leave: {e}");
            }
        }
        if let Err(e) = self.maintain_own_devices().await {
            if let Ok(n) = self.notice(format!(
                "could not update your devices in conversations: {e}"
            )) {
                report.notices.push(n);
            }
        }
        if let Err(e) = self.upload_key_packages(false).await {
            tracing::debug!("KeyPackages not refilled: {e}");
        }
    }

    /// Commits the leave requests waiting in conversations.
    async fn commit_pending_proposals(&mut self) -> Result<()> {
        let ids: Vec<String> = self.conversations.keys().cloned().collect();
        for id in ids {
            let conversation = self.conversation(&id)?;
            let pending = conversation.mls_group().get_cached_proposals();
            if pending.is_empty() {
                continue;
            }
            let members = conversation.members();
            let removed: Vec<DeviceAddress> = pending
                .iter()
                .filter_map(|p| match p.proposal() {
                    mls_rs::group::proposal::Proposal::Remove(r) => members
                        .iter()
                        .find(|m| m.index == r.to_remove())
                        .map(address),
                    _ => None,
                })
                .collect();
            let out = conversation.update()?;
            self.deliver_commit(&id, out, vec![], removed, &[]).await?;
            self.save_info(&id, None)?;
        }
        Ok(())
    }

    /// Adds this user's new devices to its conversations and removes revoked ones.
    ///
    /// Own devices are those certified by this user's root key, not merely named like
    /// this user. At most one claim of this user's KeyPackages is made per sync (claims
    /// are rate-limited, and each hands out one KeyPackage per device), so a new device
    /// joins one conversation per sync of another device; a conversation that fails is
    /// reported and the others still get their turn.
    async fn maintain_own_devices(&mut self) -> Result<()> {
        let active: Vec<String> = self
            .conversations()?
            .into_iter()
            .filter(|c| c.active)
            .map(|c| c.id)
            .collect();
        if active.is_empty() {
            return Ok(());
        }
        let mine: Vec<String> = self
            .own_devices()
            .await?
            .iter()
            .map(|d| d.device_id.to_hex())
            .collect();
        let mut claimed_once = false;
        let mut failures = Vec::new();
        for id in active {
            match self.maintain_one(&id, &mine, &mut claimed_once).await {
                Ok(()) => {}
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ClientError::Invalid(failures.join("; ")))
        }
    }

    async fn maintain_one(
        &mut self,
        id: &str,
        mine: &[String],
        claimed_once: &mut bool,
    ) -> Result<()> {
        let me = self.identity().clone();
        let members = self.conversation(id)?.members();
        let own: Vec<_> = members
            .iter()
            .filter(|m| m.identity.same_user(&me))
            .collect();
        let present: Vec<String> = own.iter().map(|m| m.identity.device_id.to_hex()).collect();
        let revoked: Vec<_> = own
            .iter()
            .filter(|m| !mine.contains(&m.identity.device_id.to_hex()))
            .collect();
        let missing = mine.iter().any(|d| !present.contains(d));
        let (added, key_packages): (Vec<_>, Vec<_>) = if missing && !*claimed_once {
            *claimed_once = true;
            self.claim_devices(me.user.as_str(), &present)
                .await?
                .into_iter()
                .unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        let indexes: Vec<u32> = revoked.iter().map(|m| m.index).collect();
        let removed: Vec<DeviceAddress> = revoked.iter().map(|m| address(m)).collect();
        if key_packages.is_empty() && indexes.is_empty() {
            return Ok(());
        }
        let out = self
            .conversation(id)?
            .add_and_remove(&key_packages, &indexes)?;
        self.deliver_commit(id, out, added, vec![], &removed)
            .await?;
        let info = self.save_info(id, None)?;
        if let Some(name) = info.name {
            self.send_control(id, CONTROL_NAME, name.into_bytes())
                .await?;
        }
        Ok(())
    }
}
