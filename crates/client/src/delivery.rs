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
            message_id: String::new(),
            payload: Bytes(out.commit),
            recipients,
            welcome: out.welcome.map(|w| WelcomeDelivery {
                payload: Bytes(w),
                recipients: added,
            }),
            removed,
        };
        match self.post(id, body).await {
            Ok(()) => {
                self.conversation(id)?.merge_pending_commit()?;
                Ok(())
            }
            Err(e) => {
                self.conversation(id)?.discard_pending_commit();
                Err(match e {
                    ClientError::Server { status: 409, .. } => ClientError::Invalid(
                        "someone else changed the conversation at the same moment; run `sotto sync` and try again".into(),
                    ),
                    other => other,
                })
            }
        }
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
