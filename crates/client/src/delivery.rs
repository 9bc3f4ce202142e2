//! Delivering through the server: application messages, control messages and commits to
//! every other member device, with the server's refusals turned into clear errors.

use sotto_api::{Bytes, DeviceAddress, SendMessage, WelcomeDelivery};
use sotto_core::content::{Body, Content, Control};
use sotto_core::conversation::Outgoing;
use sotto_core::policy::BurnOnRead;

use crate::client::Client;
use crate::conversations::{address, hex_id};
use crate::error::{ClientError, Result};

/// The recipient a server's "unknown recipient device user/device" refusal names.
fn gone_recipient(message: &str, recipients: &[DeviceAddress]) -> Option<DeviceAddress> {
    let named = message.strip_prefix("unknown recipient device ")?;
    let (username, device_id) = named.split_once('/')?;
    recipients
        .iter()
        .find(|r| r.username == username && r.device_id == device_id)
        .cloned()
}

/// What became of a commit this device posted.
enum Settled {
    /// The server took it; it is merged.
    Merged,
    /// The server refused it; it is discarded.
    Refused(ClientError),
    /// The answer is unknown; it stays pending and in doubt.
    Unknown(ClientError),
}

/// How often a post whose answer was lost is repeated.
pub const RETRIES: u32 = 3;

impl Client {
    /// Posts an MLS message of conversation `id` to `recipients`, with a fresh message id.
    ///
    /// A recipient the server no longer knows (a device revoked since the conversation
    /// last changed) is dropped from the list and the message sent again: a revoked
    /// device gets nothing, and the next commit of its user removes it from the group.
    ///
    /// When the answer is lost (the connection broke, the server failed), the same message
    /// (same id) is sent again, up to [`RETRIES`] times: the server stores a message id
    /// once, so a repeat is harmless, and a commit is never left in doubt for a transient
    /// failure.
    pub(crate) async fn post(&mut self, id: &str, mut body: SendMessage) -> Result<()> {
        body.message_id = hex_id(&sotto_core::crypto::random_array::<16>()?);
        self.post_with_id(id, body).await
    }

    /// [`post`](Self::post) with the message id `body` already carries.
    async fn post_with_id(&mut self, id: &str, mut body: SendMessage) -> Result<()> {
        let mut renewed = false;
        let mut retries = 0;
        let mut refusals = 0;
        loop {
            let token = self.token().await?;
            match self.api.send(&token, id, &body).await {
                Err(ClientError::Server { status: 401, .. }) if !renewed => {
                    renewed = true;
                    self.drop_session()?;
                }
                Err(ClientError::Server {
                    status: 400,
                    message,
                    ..
                }) if refusals < body.recipients.len()
                    && gone_recipient(&message, &body.recipients).is_some() =>
                {
                    refusals += 1;
                    if let Some(gone) = gone_recipient(&message, &body.recipients) {
                        body.recipients.retain(|r| *r != gone);
                    }
                }
                Err(ClientError::Unreachable { .. })
                | Err(ClientError::Server { status: 500.., .. })
                    if retries < RETRIES =>
                {
                    retries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500 << retries)).await;
                }
                other => return other.map(drop),
            }
        }
    }

    /// Sends a commit built on conversation `id`, then merges it; a commit the server
    /// refused (another member committed first) is discarded and the error returned.
    /// `removed` devices receive the commit; `revoked` ones, which the server has
    /// forgotten already, are neither recipients nor listed.
    ///
    /// Until the server's answer is known, the pending commit is on disk and the request
    /// in the profile's `in_doubt` list: if the answer is lost for good or the process
    /// stops, the next sync posts the same request again (the server keeps a message id
    /// once) and merges or discards by that answer. Discarding a commit the server has
    /// would leave this device behind everyone else's epoch for ever.
    pub(crate) async fn deliver_commit(
        &mut self,
        id: &str,
        out: Outgoing,
        added: Vec<DeviceAddress>,
        removed: Vec<DeviceAddress>,
        revoked: &[DeviceAddress],
    ) -> Result<()> {
        let me = self.profile.device_id.clone();
        let recipients: Vec<DeviceAddress> = self
            .conversation(id)?
            .members()
            .iter()
            .map(address)
            .filter(|a| a.device_id != me && !removed.contains(a) && !revoked.contains(a))
            .collect();
        let body = SendMessage {
            message_id: hex_id(&sotto_core::crypto::random_array::<16>()?),
            payload: Bytes(out.commit),
            recipients,
            welcome: out.welcome.map(|w| WelcomeDelivery {
                payload: Bytes(w),
                recipients: added,
            }),
            removed,
        };
        // The record first: a record without a pending commit is dropped when settled, a
        // pending commit without a record would block the conversation for ever.
        self.profile.in_doubt.push((id.to_owned(), body.clone()));
        let stored = match self.save_profile() {
            Ok(()) => self.conversation(id)?.persist().map_err(ClientError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            // Nothing was posted: the commit is simply dropped.
            self.profile.in_doubt.retain(|(c, _)| c != id);
            self.conversation(id)?.discard_pending_commit();
            return Err(e);
        }
        let answer = self.post_with_id(id, body).await;
        match self.settle_commit(id, answer)? {
            Settled::Merged => Ok(()),
            Settled::Refused(ClientError::Server { status: 409, .. }) => Err(ClientError::Invalid(
                "someone else changed the conversation at the same moment; run `sotto sync` and try again".into(),
            )),
            Settled::Refused(e) => Err(e),
            Settled::Unknown(e) => Err(e),
        }
    }

    /// Posts again every commit whose acceptance is in doubt, and merges or discards it
    /// by the answer. Called before a sync reads the inbox: what follows a commit of this
    /// device can only be read once it is merged. Fails if an answer is still unknown.
    pub(crate) async fn settle_commits_in_doubt(&mut self) -> Result<()> {
        for (id, body) in self.profile.in_doubt.clone() {
            let pending = self
                .conversation(&id)
                .map(|c| c.has_pending_commit())
                .unwrap_or(false);
            if !pending {
                // Merged or discarded before the process stopped: only the record is left.
                self.profile.in_doubt.retain(|(c, _)| *c != id);
                self.save_profile()?;
                continue;
            }
            let answer = self.post_with_id(&id, body).await;
            if let Settled::Unknown(e) = self.settle_commit(&id, answer)? {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Merges or discards the pending commit of `id` by the server's `answer`, and drops
    /// its `in_doubt` record unless the answer is unknown.
    ///
    /// Only the server's refusal of the request itself discards: a 4xx other than 401
    /// (the session) and 429 (a limit), which it answers before storing anything and,
    /// for a message id it already has, never (a repeat is answered as a duplicate).
    /// Everything else — no connection, a 5xx, an answer cut short or unreadable, a
    /// failure to log in — leaves the commit in doubt.
    fn settle_commit(&mut self, id: &str, answer: Result<()>) -> Result<Settled> {
        let refused = matches!(
            &answer,
            Err(ClientError::Server {
                status: 400..=499,
                ..
            })
        ) && !matches!(
            &answer,
            Err(ClientError::Server {
                status: 401 | 429,
                ..
            })
        );
        let settled = match answer {
            Err(e) if !refused => return Ok(Settled::Unknown(e)),
            Ok(()) => {
                if self.conversation(id)?.has_pending_commit() {
                    self.conversation(id)?.merge_pending_commit()?;
                    self.save_info(id, None)?;
                }
                Settled::Merged
            }
            Err(e) => {
                if let Ok(conversation) = self.conversation(id) {
                    if conversation.has_pending_commit() {
                        conversation.discard_pending_commit();
                        conversation.persist()?;
                    }
                }
                Settled::Refused(e)
            }
        };
        self.profile.in_doubt.retain(|(c, _)| c != id);
        self.save_profile()?;
        Ok(settled)
    }

    /// Sends a control message (e.g. the group's name) to conversation `id`.
    pub(crate) async fn send_control(
        &mut self,
        id: &str,
        kind: u16,
        payload: Vec<u8>,
    ) -> Result<()> {
        let identity = self.identity().clone();
        let now = self.now();
        let conversation = self.conversation(id)?;
        let ttl = conversation.policy().max_ttl_seconds();
        let content = Content::new(
            identity.user.as_str(),
            identity.device_id,
            now,
            ttl,
            conversation.policy().burn_on_read() == BurnOnRead::Required,
            Body::Control(Control { kind, payload }),
        )?;
        let ciphertext = conversation.send(&content)?;
        conversation.persist()?;
        self.send_payload(id, ciphertext).await
    }

    /// Posts bytes the caller built itself (through
    /// [`mls_conversation`](Client::mls_conversation)) to every other member device of
    /// `id`, bypassing every check of a send. It exists for the test suites that play a
    /// malicious member; an honest front end never needs it.
    #[doc(hidden)]
    pub async fn post_raw(&mut self, id: &str, bytes: Vec<u8>) -> Result<()> {
        self.send_payload(id, bytes).await
    }

    /// Posts a request body the caller built itself (a commit of a
    /// [`modified_mls_client`](Client::modified_mls_client), with its recipients and
    /// Welcome) to conversation `id`, with this device's session. Like
    /// [`post_raw`](Client::post_raw), for the test suites that play a malicious member.
    #[doc(hidden)]
    pub async fn post_raw_message(&mut self, id: &str, body: SendMessage) -> Result<()> {
        self.post(id, body).await
    }

    /// Posts an application message to every other member device of `id`.
    pub(crate) async fn send_payload(&mut self, id: &str, ciphertext: Vec<u8>) -> Result<()> {
        let me = self.profile.device_id.clone();
        let recipients = self
            .conversation(id)?
            .members()
            .iter()
            .map(address)
            .filter(|a| a.device_id != me)
            .collect();
        let body = SendMessage {
            message_id: String::new(),
            payload: Bytes(ciphertext),
            recipients,
            welcome: None,
            removed: vec![],
        };
        self.post(id, body).await
    }
}
