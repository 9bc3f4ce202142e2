//! Sending and reading messages: TTLs and burn-on-read within the conversation's policy,
//! attachments encrypted before upload, and delivery and read receipts.

use std::path::Path;

use sotto_core::content::{Attachment, Body, Content, MessageId, Receipt, ReceiptKind};
use sotto_core::crypto;
use sotto_core::policy::BurnOnRead;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::conversations::hex_id;
use crate::error::{ClientError, Result};
use crate::model::{kind, Message, StoredAttachment};
use crate::store::Slot;

/// A message's life when the sender does not choose one (capped by the policy).
pub const DEFAULT_TTL: u32 = 24 * 3600;
/// Largest attachment (what the server accepts, less the encryption tag).
pub const MAX_ATTACHMENT: usize = (25 << 20) - 16;
/// Record kind of decrypted attachment contents.
pub(crate) const ATTACHMENT_DATA: &str = "attachment_data";
const ATTACHMENT_AAD: &[u8] = b"sotto attachment v1";

/// A send that passed every check: its conversation, TTL and burn-on-read flag.
struct Ready {
    id: String,
    ttl: u32,
    burn: bool,
}

/// How a message is sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// Its life in seconds from sending (default [`DEFAULT_TTL`], capped by the policy).
    pub ttl_seconds: Option<u32>,
    /// Whether it is deleted once read.
    pub burn_on_read: bool,
}

/// Splits an attachment locator (`id:capability`, as another member sent it) into the blob
/// id (1 to 64 hex digits) and its capability (1 to 128 of `[A-Za-z0-9_-]`). The locator
/// comes from another member: it may only name a blob on this server, never another path
/// or query; anything else is a [`ClientError::Attachment`]. Public for the fuzz targets and
/// property tests.
#[doc(hidden)]
pub fn parse_locator(locator: &str) -> Result<(&str, &str)> {
    let malformed = || ClientError::Attachment("the attachment reference is malformed".into());
    let (id, capability) = locator.split_once(':').ok_or_else(malformed)?;
    let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let capability_ok = !capability.is_empty()
        && capability.len() <= 128
        && capability
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if id_ok && capability_ok {
        Ok((id, capability))
    } else {
        Err(malformed())
    }
}

impl Client {
    /// Sends `text` to `target` (a username or a conversation, see
    /// [`resolve`](Self::resolve)), creating the 1:1 conversation with a user on first send.
    pub async fn send_text(
        &mut self,
        target: &str,
        text: &str,
        options: SendOptions,
    ) -> Result<Message> {
        let ready = self.prepare_send(target, options).await?;
        self.send_body(ready, Body::Text(text.to_owned()), text.to_owned(), None)
            .await
    }

    /// Encrypts the file at `path`, uploads it as a blob that lives as long as the message,
    /// and sends its key to `target`.
    pub async fn send_file(
        &mut self,
        target: &str,
        path: &Path,
        options: SendOptions,
    ) -> Result<Message> {
        let data = Zeroizing::new(std::fs::read(path).map_err(|e| {
            ClientError::Attachment(format!("cannot read {}: {e}", path.display()))
        })?);
        if data.len() > MAX_ATTACHMENT {
            return Err(ClientError::Attachment(format!(
                "{} is larger than the 25 MiB an attachment may have",
                path.display()
            )));
        }
        let ready = self.prepare_send(target, options).await?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        let key = Zeroizing::new(crypto::random_array::<32>()?);
        let nonce = crypto::random_array::<12>()?;
        let ciphertext = crypto::aes256gcm_seal(&key, &nonce, ATTACHMENT_AAD, &data)?;
        let digest = crypto::sha256(&ciphertext);
        let token = self.token().await?;
        let stored = self
            .api
            .upload_attachment(&token, ciphertext, ready.ttl)
            .await?;
        let local = StoredAttachment {
            locator: format!("{}:{}", stored.id, stored.token),
            key: *key,
            nonce,
            ciphertext_sha256: digest,
            size: data.len() as u64,
            file_name: file_name.clone(),
            media_type: "application/octet-stream".into(),
        };
        let attachment = Attachment {
            blob_id: local.locator.as_bytes().to_vec(),
            key: *key,
            nonce,
            ciphertext_sha256: digest,
            size: local.size,
            media_type: local.media_type.clone(),
            file_name: file_name.clone(),
        };
        let sent = self
            .send_body(ready, Body::Attachment(attachment), file_name, Some(local))
            .await;
        let message = match sent {
            Ok(message) => message,
            Err(e) => {
                // Nobody will fetch the blob: delete it now rather than at its expiry.
                let _ = self.api.delete_attachment(&stored.id, &stored.token).await;
                return Err(e);
            }
        };
        self.put_attachment_data(&message, &data)?;
        Ok(message)
    }

    /// Everything a send checks before anything leaves the device: the policy was
    /// acknowledged, the inbox is processed, the conversation exists (a 1:1 is created),
    /// no verified contact's key changed, and the TTL and burn-on-read fit the policy.
    async fn prepare_send(&mut self, target: &str, options: SendOptions) -> Result<Ready> {
        self.require_policy()?;
        // Process pending commits first: a message from an old epoch may be unreadable.
        self.catch_up().await?;
        let id = match self.resolve(target)? {
            Some(id) => id,
            None => self.direct_conversation(target).await?,
        };
        let info = self.conversation_info(&id)?;
        if !info.active {
            return Err(ClientError::Invalid(format!(
                "you are no longer in conversation {id}"
            )));
        }
        if info.direct {
            // A 1:1 conversation: check the peer's key with the directory now.
            if let Some(peer) = info.members.iter().find(|m| **m != self.profile.username) {
                self.refresh_contact(&peer.clone()).await?;
            }
        }
        self.check_members(&id)?;
        let policy = self.conversation(&id)?.policy().clone();
        let ttl = options
            .ttl_seconds
            .unwrap_or(DEFAULT_TTL.min(policy.max_ttl_seconds()));
        let burn = options.burn_on_read || policy.burn_on_read() == BurnOnRead::Required;
        policy.check_message(ttl, burn)?;
        Ok(Ready { id, ttl, burn })
    }

    async fn send_body(
        &mut self,
        ready: Ready,
        body: Body,
        text: String,
        attachment: Option<StoredAttachment>,
    ) -> Result<Message> {
        let Ready { id, ttl, burn } = ready;
        let identity = self.identity().clone();
        let sent_at = self.now();
        let content = Content::new(
            identity.user.as_str(),
            identity.device_id,
            sent_at,
            ttl,
            burn,
            body,
        )?;
        let conversation = self.conversation(&id)?;
        let ciphertext = conversation.send(&content)?;
        conversation.persist()?;
        self.send_payload(&id, ciphertext).await?;
        let message = Message {
            conversation: id,
            id: hex_id(&content.id.0),
            from: identity.user.to_string(),
            from_device: identity.device_id.to_hex(),
            text,
            attachment,
            sent_at,
            expires_at: content.expires_at_ms(sent_at),
            burn_on_read: burn,
            outgoing: true,
            read: true,
            delivered_to: vec![],
            read_by: vec![],
        };
        self.store_message(&message)?;
        Ok(message)
    }

    /// The stored, unexpired messages of conversation `target`, oldest first.
    pub fn messages(&mut self, target: &str) -> Result<Vec<Message>> {
        let id = self.resolve_existing(target)?;
        self.purge_expired()?;
        let conn = self.store.conn()?;
        let now = self.now();
        let mut list: Vec<Message> =
            self.store
                .list(&conn, kind::MESSAGE, Some(&[id.as_bytes()]))?;
        list.retain(|m| m.expires_at > now);
        Ok(list)
    }

    /// Marks the messages of `target` read: burn-on-read ones are deleted from the store
    /// at once, and a read receipt goes to the senders. Returns the messages read.
    pub async fn mark_read(&mut self, target: &str) -> Result<Vec<Message>> {
        let id = self.resolve_existing(target)?;
        let unread: Vec<Message> = self
            .messages(&id)?
            .into_iter()
            .filter(|m| !m.outgoing && !m.read)
            .collect();
        for message in &unread {
            if message.burn_on_read {
                self.delete_message(&message.conversation, &message.id)?;
            } else {
                let mut read = message.clone();
                read.read = true;
                self.store_message(&read)?;
            }
        }
        if unread.iter().any(|m| m.burn_on_read) {
            crate::store::checkpoint(&*self.store.conn()?)?;
        }
        let ids: Vec<String> = unread.iter().map(|m| m.id.clone()).collect();
        if !ids.is_empty() && self.conversation_info(&id)?.active {
            self.send_receipt(&id, ReceiptKind::Read, &ids).await?;
        }
        Ok(unread)
    }

    /// The decrypted contents of a message's attachment, if it was fetched.
    pub fn attachment_data(&self, message: &Message) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let conn = self.store.conn()?;
        self.store.get_raw(
            &conn,
            Slot::in_group(
                ATTACHMENT_DATA,
                &[message.conversation.as_bytes(), message.id.as_bytes()],
                &[message.conversation.as_bytes()],
            ),
        )
    }

    pub(crate) fn put_attachment_data(&self, message: &Message, data: &[u8]) -> Result<()> {
        let conn = self.store.conn()?;
        let conversation = message.conversation.as_bytes();
        self.store.put_raw(
            &conn,
            Slot::in_group(
                ATTACHMENT_DATA,
                &[conversation, message.id.as_bytes()],
                &[conversation],
            ),
            0,
            Some(message.expires_at),
            data,
        )
    }

    /// Fetches, checks and decrypts an attachment received in a message.
    pub(crate) async fn fetch_attachment(
        &self,
        attachment: &StoredAttachment,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (id, capability) = parse_locator(&attachment.locator)?;
        let blob = self.api.download_attachment(id, capability).await?;
        if !crypto::ct_eq(&crypto::sha256(&blob), &attachment.ciphertext_sha256) {
            return Err(ClientError::Attachment(
                "the downloaded attachment was altered".into(),
            ));
        }
        let data =
            crypto::aes256gcm_open(&attachment.key, &attachment.nonce, ATTACHMENT_AAD, &blob)
                .map_err(|_| ClientError::Attachment("the attachment does not decrypt".into()))?;
        if data.len() as u64 != attachment.size {
            return Err(ClientError::Attachment(
                "the attachment has the wrong size".into(),
            ));
        }
        Ok(data)
    }

    pub(crate) fn store_message(&self, message: &Message) -> Result<()> {
        let conn = self.store.conn()?;
        let conversation = message.conversation.as_bytes();
        self.store.put(
            &conn,
            Slot::in_group(
                kind::MESSAGE,
                &[conversation, message.id.as_bytes()],
                &[conversation],
            ),
            i64::try_from(message.sent_at).unwrap_or(i64::MAX),
            Some(message.expires_at),
            message,
        )
    }

    pub(crate) fn load_message(&self, conversation: &str, id: &str) -> Result<Option<Message>> {
        let conn = self.store.conn()?;
        let c = conversation.as_bytes();
        self.store.get(
            &conn,
            Slot::in_group(kind::MESSAGE, &[c, id.as_bytes()], &[c]),
        )
    }

    pub(crate) fn delete_message(&self, conversation: &str, id: &str) -> Result<()> {
        let conn = self.store.conn()?;
        let c = conversation.as_bytes();
        self.store.delete(
            &conn,
            Slot::in_group(kind::MESSAGE, &[c, id.as_bytes()], &[c]),
        )?;
        self.store.delete(
            &conn,
            Slot::in_group(ATTACHMENT_DATA, &[c, id.as_bytes()], &[c]),
        )?;
        Ok(())
    }

    /// Sends a delivery or read receipt for `ids` to conversation `id`.
    pub(crate) async fn send_receipt(
        &mut self,
        id: &str,
        kind: ReceiptKind,
        ids: &[String],
    ) -> Result<()> {
        let messages = ids
            .iter()
            .filter_map(|h| hex::decode(h).ok()?.try_into().ok().map(MessageId))
            .collect();
        let identity = self.identity().clone();
        let now = self.now();
        let conversation = self.conversation(id)?;
        let policy = conversation.policy().clone();
        let content = Content::new(
            identity.user.as_str(),
            identity.device_id,
            now,
            policy.max_ttl_seconds().min(3600),
            policy.burn_on_read() == BurnOnRead::Required,
            Body::Receipt(Receipt { kind, messages }),
        )?;
        let ciphertext = conversation.send(&content)?;
        conversation.persist()?;
        self.send_payload(id, ciphertext).await
    }
}
