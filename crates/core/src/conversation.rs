//! A conversation — 1:1 or group, the same thing — as seen by one device: an MLS group on
//! suite 0x0005 with a Sotto policy.
//!
//! Sending checks the policy before anything is encrypted. Receiving checks, in order:
//! that the exact ciphertext was not seen before (replay), MLS decryption and the sender's
//! signature, the membership rule for commits, that the content's claimed sender is the
//! MLS-authenticated sender, that the TTL and burn-on-read flag respect the policy, and
//! that the message id was not seen before. Any failure is an error and yields no message.

use std::collections::{HashSet, VecDeque};

use mls_rs::{
    client_builder::MlsConfig,
    error::MlsError,
    group::{proposal::Proposal, CommitEffect, ContentType, ReceivedMessage as MlsReceived},
    Group, MlsMessage, MlsMessageDescription,
};
use mls_rs_core::identity::SigningIdentity;
use zeroize::Zeroizing;

use crate::content::{Body, Content, ContentError, MessageId};
use crate::crypto::{self, CryptoError};
use crate::device::CIPHER_SUITE;
use crate::identity::{DeviceIdentity, IdentityError};
use crate::identity_provider::device_identity;
use crate::policy::{Policy, PolicyError};
use crate::rules::IDENTITY_ERROR_PREFIX;

/// How many recent ciphertext hashes and message ids each conversation remembers to
/// reject replays and duplicates.
pub const REPLAY_WINDOW: usize = 4096;
/// Largest commit or Welcome accepted from the network (4 MiB). A commit carries about
/// 1.3 kB per added device and a Welcome the whole ratchet tree (about 1.25 kB per
/// member), so this admits groups of about 3000 devices while bounding the work a hostile
/// server or member can cause (each member costs a signature verification on join).
pub const MAX_MESSAGE_LEN: usize = 4 << 20;
/// Largest proposal accepted (64 KiB): Sotto members only send proposals to leave.
pub const MAX_PROPOSAL_LEN: usize = 64 << 10;
/// Most proposals kept waiting for the next commit; more are refused.
pub const MAX_PENDING_PROPOSALS: usize = 16;
/// Largest application message accepted (content of at most
/// [`MAX_CONTENT_LEN`](crate::content::MAX_CONTENT_LEN) plus padding, signature and framing).
pub const MAX_APPLICATION_MESSAGE_LEN: usize = 128 << 10;

/// Why a conversation operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// The MLS layer refused the operation or the message.
    #[error("MLS: {0}")]
    Mls(String),
    /// The membership rule refused a commit (e.g. a non-manager adding someone).
    #[error("refused by the membership rule: {0}")]
    Rule(String),
    /// A certificate in a KeyPackage, Welcome or commit is invalid.
    #[error("invalid identity: {0}")]
    Identity(String),
    /// A certificate of ours is invalid.
    #[error(transparent)]
    OwnIdentity(#[from] IdentityError),
    /// The policy forbids this message, or the conversation has no valid policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The content is malformed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// This exact message was already processed, or its key was already used.
    #[error("replayed message rejected (already processed, or its key was deleted)")]
    Replayed,
    /// A message id was seen before in this conversation.
    #[error("duplicate message id rejected")]
    Duplicate,
    /// The content claims a sender other than the one MLS authenticated.
    #[error("message claims to be from {claimed} but was sent by {actual}")]
    SenderMismatch {
        /// The user named inside the content.
        claimed: String,
        /// The user whose device signed the message.
        actual: String,
    },
    /// The message is larger than [`MAX_MESSAGE_LEN`].
    #[error("message of {0} bytes is too large")]
    TooLarge(usize),
    /// A handshake message arrived unencrypted; Sotto encrypts every conversation message.
    #[error("unencrypted conversation message refused")]
    Unencrypted,
    /// This device is not a manager of the conversation it tried to create.
    #[error("a conversation's creator must be one of its managers")]
    NotAManager,
    /// A Welcome for a conversation this device already has.
    #[error("this device is already in that conversation")]
    AlreadyMember,
    /// Too many proposals are waiting for a commit.
    #[error("too many pending proposals in this conversation")]
    TooManyProposals,
    /// The message belongs to another conversation.
    #[error("message is for another conversation")]
    WrongConversation,
    /// Only suite 0x0005 is supported.
    #[error("unsupported MLS ciphersuite (Sotto uses only 0x0005)")]
    UnsupportedCipherSuite,
    /// Key generation failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// A backend failure.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl ConversationError {
    /// Classifies an `mls-rs` error.
    pub fn from_mls(error: MlsError) -> Self {
        match error {
            MlsError::MlsRulesError(e) => {
                // mls-rs boxes our RuleError; an invalid certificate found by the rule is
                // an identity error like one found by the identity provider.
                let text = e.to_string();
                match text.strip_prefix(IDENTITY_ERROR_PREFIX) {
                    Some(reason) => Self::Identity(reason.to_owned()),
                    None => Self::Rule(text),
                }
            }
            MlsError::IdentityProviderError(e) => Self::Identity(e.to_string()),
            MlsError::KeyMissing(_) | MlsError::CantProcessMessageFromSelf => Self::Replayed,
            MlsError::UnsupportedCipherSuite(_) => Self::UnsupportedCipherSuite,
            other => Self::Mls(other.to_string()),
        }
    }
}

/// A member device of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its leaf index (stable while it stays in the conversation).
    pub index: u32,
    /// Who it is.
    pub identity: DeviceIdentity,
}

/// A decrypted, authenticated and policy-checked application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The sending device, as authenticated by MLS.
    pub sender: DeviceIdentity,
    /// What it sent.
    pub content: Content,
    /// When it must be deleted, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// What a processed commit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// The new epoch.
    pub epoch: u64,
    /// Devices added.
    pub added: Vec<DeviceIdentity>,
    /// Devices removed.
    pub removed: Vec<DeviceIdentity>,
    /// Whether the policy changed.
    pub policy_changed: bool,
    /// Whether this device was removed (the conversation is over for it).
    pub self_removed: bool,
}

/// The outcome of [`Conversation::process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An application message.
    Message(Box<ReceivedMessage>),
    /// A commit moved the conversation to a new epoch.
    Commit(CommitSummary),
    /// A proposal (e.g. a member asking to leave) was stored for the next commit.
    Proposal,
}

/// A commit to send to the conversation, with the Welcome for added devices if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The commit, for current members.
    pub commit: Vec<u8>,
    /// The Welcome, for added devices.
    pub welcome: Option<Vec<u8>>,
}

/// A bounded first-in-first-out set.
#[derive(Debug)]
struct Window<T: std::hash::Hash + Eq + Clone> {
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: std::hash::Hash + Eq + Clone> Default for Window<T> {
    fn default() -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Window<T> {
    fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }

    fn insert(&mut self, item: T) {
        if self.set.insert(item.clone()) {
            self.order.push_back(item);
            if self.order.len() > REPLAY_WINDOW {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// One device's view of a conversation.
pub struct Conversation<C: MlsConfig> {
    group: Group<C>,
    me: DeviceIdentity,
    policy: Policy,
    seen_ciphertexts: Window<[u8; 32]>,
    seen_ids: Window<MessageId>,
}

impl<C: MlsConfig> core::fmt::Debug for Conversation<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Conversation")
            .field("epoch", &self.group.current_epoch())
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn mls<T>(result: Result<T, MlsError>) -> Result<T, ConversationError> {
    result.map_err(ConversationError::from_mls)
}

impl<C: MlsConfig> Conversation<C> {
    pub(crate) fn new(group: Group<C>, me: DeviceIdentity) -> Result<Self, ConversationError> {
        if group.cipher_suite() != CIPHER_SUITE {
            return Err(ConversationError::UnsupportedCipherSuite);
        }
        let policy = Policy::from_extensions(&group.context().extensions)?;
        let mut group = group;
        mls(group.write_to_storage())?;
        Ok(Self {
            group,
            me,
            policy,
            seen_ciphertexts: Window::default(),
            seen_ids: Window::default(),
        })
    }

    /// The conversation id (the MLS group id).
    pub fn id(&self) -> &[u8] {
        self.group.group_id()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.current_epoch()
    }

    /// The current policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The underlying `mls-rs` group, for storage and diagnostics.
    pub fn mls_group(&self) -> &Group<C> {
        &self.group
    }

    /// The underlying `mls-rs` group, mutably. This bypasses every Sotto check on what is
    /// sent; it exists for the test suites that play a modified client. Use
    /// [`persist`](Self::persist) to store state.
    #[doc(hidden)]
    pub fn mls_group_mut(&mut self) -> &mut Group<C> {
        &mut self.group
    }

    /// Writes the conversation's state to the device's group-state storage and lets the
    /// storage forget epochs older than the retention limit.
    ///
    /// Conversations write their state at creation, on join and after every commit.
    /// Between commits, every [`send`](Self::send) and [`process`](Self::process) advances
    /// the secret tree (a used message key is deleted in memory only); a client with
    /// persistent storage MUST call this after `send` before transmitting the ciphertext,
    /// and after `process` before acknowledging the message to the server — otherwise a
    /// restart would bring back used message keys (a replayed message would decrypt again,
    /// and the sender would reuse keys that receivers refuse).
    pub fn persist(&mut self) -> Result<(), ConversationError> {
        mls(self.group.write_to_storage())
    }

    /// The member devices. Their certificates were verified when they entered.
    pub fn members(&self) -> Vec<Member> {
        self.group
            .roster()
            .members_iter()
            .filter_map(|m| {
                device_identity(&m.signing_identity)
                    .ok()
                    .map(|identity| Member {
                        index: m.index,
                        identity,
                    })
            })
            .collect()
    }

    /// Builds a commit adding the devices of `key_packages` and removing the members at
    /// `remove`. The commit is pending until [`merge_pending_commit`](Self::merge_pending_commit).
    pub fn add_and_remove(
        &mut self,
        key_packages: &[Vec<u8>],
        remove: &[u32],
    ) -> Result<Outgoing, ConversationError> {
        let mut builder = self.group.commit_builder();
        for kp in key_packages {
            builder = mls(builder.add_member(mls(MlsMessage::from_bytes(kp))?))?;
        }
        for index in remove {
            builder = mls(builder.remove_member(*index))?;
        }
        Self::outgoing(mls(builder.build())?)
    }

    /// Builds a commit replacing the policy (managers only).
    pub fn set_policy(&mut self, policy: &Policy) -> Result<Outgoing, ConversationError> {
        let extensions = policy.to_extensions()?;
        let builder = mls(self
            .group
            .commit_builder()
            .set_group_context_ext(extensions))?;
        Self::outgoing(mls(builder.build())?)
    }

    /// Builds a commit that refreshes this device's keys (post-compromise security) and
    /// applies any stored proposals (e.g. a member's request to leave).
    pub fn update(&mut self) -> Result<Outgoing, ConversationError> {
        Self::outgoing(mls(self.group.commit_builder().build())?)
    }

    /// A proposal to remove this device, for another member to commit (leaving).
    pub fn propose_leave(&mut self) -> Result<Vec<u8>, ConversationError> {
        let me = self.group.current_member_index();
        mls(mls(self.group.propose_remove(me, Vec::new()))?.to_bytes())
    }

    fn outgoing(output: mls_rs::group::CommitOutput) -> Result<Outgoing, ConversationError> {
        let welcome = match output.welcome_messages.first() {
            Some(w) => Some(mls(w.to_bytes())?),
            None => None,
        };
        Ok(Outgoing {
            commit: mls(output.commit_message.to_bytes())?,
            welcome,
        })
    }

    /// Applies this device's pending commit, after the server accepted it.
    pub fn merge_pending_commit(&mut self) -> Result<CommitSummary, ConversationError> {
        let before = self.roster_snapshot();
        let description = mls(self.group.apply_pending_commit())?;
        self.summarise(&before, description.effect)
    }

    /// Whether this device built a commit that is neither merged nor discarded yet.
    pub fn has_pending_commit(&self) -> bool {
        self.group.has_pending_commit()
    }

    /// Drops this device's pending commit (the server accepted another one first).
    pub fn discard_pending_commit(&mut self) {
        self.group.clear_pending_commit();
    }

    /// Encrypts `content`, after checking that it is from this device and within policy.
    pub fn send(&mut self, content: &Content) -> Result<Vec<u8>, ConversationError> {
        if content.sender_user != self.me.user.as_str()
            || content.sender_device != self.me.device_id
        {
            return Err(ConversationError::SenderMismatch {
                claimed: content.sender_user.clone(),
                actual: self.me.user.to_string(),
            });
        }
        self.policy
            .check_message(content.ttl_seconds, content.burn_on_read)?;
        if self.seen_ids.contains(&content.id) {
            return Err(ConversationError::Duplicate);
        }
        let bytes = content.to_bytes()?;
        let message = mls(self.group.encrypt_application_message(&bytes, Vec::new()))?;
        // Our own ids count as seen: a member reusing one is rejected here as everywhere.
        self.seen_ids.insert(content.id);
        mls(message.to_bytes())
    }

    /// Builds and encrypts a text message; returns its id and the ciphertext.
    pub fn send_text(
        &mut self,
        text: &str,
        ttl_seconds: u32,
        burn_on_read: bool,
        now_ms: u64,
    ) -> Result<(MessageId, Vec<u8>), ConversationError> {
        let content = Content::new(
            self.me.user.as_str(),
            self.me.device_id,
            now_ms,
            ttl_seconds,
            burn_on_read,
            Body::Text(text.to_owned()),
        )?;
        Ok((content.id, self.send(&content)?))
    }

    /// Processes one message from the conversation's log. `now_ms` is the local time.
    pub fn process(&mut self, bytes: &[u8], now_ms: u64) -> Result<Event, ConversationError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(ConversationError::TooLarge(bytes.len()));
        }
        let digest = crypto::sha256(bytes);
        if self.seen_ciphertexts.contains(&digest) {
            return Err(ConversationError::Replayed);
        }
        let message = mls(MlsMessage::from_bytes(bytes))?;
        let is_commit = match message.description() {
            MlsMessageDescription::PublicProtocolMessage { .. } => {
                return Err(ConversationError::Unencrypted);
            }
            MlsMessageDescription::PrivateProtocolMessage {
                group_id,
                content_type,
                ..
            } => {
                if group_id != self.group.group_id() {
                    return Err(ConversationError::WrongConversation);
                }
                let limit = match content_type {
                    ContentType::Application => MAX_APPLICATION_MESSAGE_LEN,
                    ContentType::Proposal => MAX_PROPOSAL_LEN,
                    _ => MAX_MESSAGE_LEN,
                };
                if bytes.len() > limit {
                    return Err(ConversationError::TooLarge(bytes.len()));
                }
                if content_type == ContentType::Proposal
                    && self.group.get_cached_proposals().len() >= MAX_PENDING_PROPOSALS
                {
                    return Err(ConversationError::TooManyProposals);
                }
                content_type == ContentType::Commit
            }
            _ => return Err(ConversationError::Mls("not a conversation message".into())),
        };
        let before = if is_commit {
            self.roster_snapshot()
        } else {
            Vec::new()
        };
        let event = match mls(self.group.process_incoming_message(message))? {
            MlsReceived::ApplicationMessage(app) => {
                let sender = self
                    .group
                    .member_at_index(app.sender_index)
                    .ok_or(ConversationError::Mls("unknown sender".into()))?;
                Event::Message(Box::new(self.accept(
                    &sender.signing_identity,
                    app.data(),
                    now_ms,
                )?))
            }
            MlsReceived::Commit(description) => {
                Event::Commit(self.summarise(&before, description.effect)?)
            }
            MlsReceived::Proposal(_) => Event::Proposal,
            _ => return Err(ConversationError::Mls("unexpected message type".into())),
        };
        self.seen_ciphertexts.insert(digest);
        Ok(event)
    }

    fn accept(
        &mut self,
        sender: &SigningIdentity,
        plaintext: &[u8],
        now_ms: u64,
    ) -> Result<ReceivedMessage, ConversationError> {
        let sender = device_identity(sender)?;
        let content = Content::from_bytes(plaintext)?;
        if content.sender_user != sender.user.as_str() || content.sender_device != sender.device_id
        {
            // Same user, another device: name the devices, or the error reads "from bob
            // but was sent by bob".
            let (claimed, actual) = if content.sender_user == sender.user.as_str() {
                (
                    format!(
                        "{} (device {})",
                        content.sender_user,
                        content.sender_device.to_hex()
                    ),
                    format!("{} (device {})", sender.user, sender.device_id.to_hex()),
                )
            } else {
                (content.sender_user.clone(), sender.user.to_string())
            };
            return Err(ConversationError::SenderMismatch { claimed, actual });
        }
        self.policy
            .check_message(content.ttl_seconds, content.burn_on_read)?;
        if self.seen_ids.contains(&content.id) {
            return Err(ConversationError::Duplicate);
        }
        self.seen_ids.insert(content.id);
        Ok(ReceivedMessage {
            expires_at_ms: content.expires_at_ms(now_ms),
            sender,
            content,
        })
    }

    fn roster_snapshot(&self) -> Vec<(u32, SigningIdentity)> {
        self.group
            .roster()
            .members_iter()
            .map(|m| (m.index, m.signing_identity))
            .collect()
    }

    fn summarise(
        &mut self,
        before: &[(u32, SigningIdentity)],
        effect: CommitEffect,
    ) -> Result<CommitSummary, ConversationError> {
        let (new_epoch, self_removed) = match effect {
            CommitEffect::NewEpoch(e) => (e, false),
            CommitEffect::Removed { new_epoch, .. } => (new_epoch, true),
            CommitEffect::ReInit(_) => {
                return Err(ConversationError::Mls("re-init refused".into()))
            }
        };
        let mut summary = CommitSummary {
            epoch: new_epoch.epoch,
            added: Vec::new(),
            removed: Vec::new(),
            policy_changed: false,
            self_removed,
        };
        for applied in &new_epoch.applied_proposals {
            match &applied.proposal {
                Proposal::Add(add) => summary.added.push(device_identity(add.signing_identity())?),
                Proposal::Remove(remove) => {
                    if let Some((_, identity)) =
                        before.iter().find(|(i, _)| *i == remove.to_remove())
                    {
                        summary.removed.push(device_identity(identity)?);
                    }
                }
                Proposal::GroupContextExtensions(_) => summary.policy_changed = true,
                _ => {}
            }
        }
        if !self_removed {
            self.policy = Policy::from_extensions(&self.group.context().extensions)?;
        }
        // Persist the new epoch; this also lets the storage forget epochs older than the
        // retention limit, deleting their secrets.
        mls(self.group.write_to_storage())?;
        Ok(summary)
    }

    /// A secret derived from the current epoch (MLS exporter), e.g. a call key. It changes
    /// with every epoch; callers must re-derive after each commit.
    pub fn export_secret(
        &self,
        label: &[u8],
        context: &[u8],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ConversationError> {
        let secret = mls(self.group.export_secret(label, context, len))?;
        Ok(Zeroizing::new(secret.as_bytes().to_vec()))
    }
}
