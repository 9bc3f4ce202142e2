//! The chat's state: the conversations, the messages shown, the compose line, the status
//! line, and how they are reloaded from the profile store.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use sotto_client::{Client, ClientError, ConversationInfo, Message, Notice, SendOptions};

use super::compose::Compose;
use crate::output::title;

/// How serious a status line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A confirmation; it goes away by itself.
    Info,
    /// A notice from the SDK (such as a changed account key).
    Warning,
    /// Something failed.
    Error,
}

/// The text of the status line.
#[derive(Debug)]
pub struct Status {
    /// How serious it is.
    pub level: Level,
    /// What it says.
    pub text: String,
    /// When it was set.
    pub at: Instant,
}

/// The state of the live (WebSocket) connection, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected yet.
    Connecting,
    /// Messages arrive as they are sent.
    Live,
    /// The connection failed; the inbox is polled meanwhile.
    Down,
}

/// A message waiting to be sent.
pub struct Outgoing {
    /// A conversation id, or a username with no conversation yet.
    pub target: String,
    /// The text to send.
    pub text: String,
    /// Its options.
    pub options: SendOptions,
    /// The compose line as typed (given back if sending fails).
    pub typed: String,
    /// The options for the next message before this line was entered (given back too).
    pub previous: SendOptions,
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.text);
        zeroize::Zeroize::zeroize(&mut self.typed);
    }
}

/// One row of the conversation list.
#[derive(Debug)]
pub struct Entry {
    /// The conversation id, or the username of a conversation not started yet.
    pub key: String,
    /// The name shown.
    pub title: String,
    /// Unread messages.
    pub unread: usize,
    /// False for a conversation this device left.
    pub active: bool,
    /// True for a username with no conversation yet.
    pub pending: bool,
}

/// Everything the chat shows and remembers.
#[derive(Default)]
pub struct App {
    /// This user.
    pub me: String,
    /// The conversations, most recent first.
    pub conversations: Vec<ConversationInfo>,
    /// Unread messages per conversation (the selected one has none: it is being read).
    pub unread: HashMap<String, usize>,
    /// A username chosen on the command line with no conversation yet.
    pub pending: Option<String>,
    /// The key of the selected entry.
    pub selected: Option<String>,
    /// The messages of the selected conversation, oldest first.
    pub messages: Vec<Message>,
    /// Burn-on-read messages read in this view: the store deleted them when they were
    /// marked read, but they stay on screen until the user switches to another
    /// conversation (or they expire), so that they can actually be read.
    pub(super) burned: Vec<Message>,
    /// The entry whose messages are in `messages`.
    pub(super) shown: Option<String>,
    /// The compose line.
    pub compose: Compose,
    /// Options of the next message (`/ttl`, `/burn`).
    pub next: SendOptions,
    /// The status line.
    pub status: Option<Status>,
    /// The live connection's state.
    pub link: Option<LinkState>,
    /// Lines scrolled back from the newest message.
    pub scroll: usize,
    /// Set when the user asked to quit.
    pub quit: bool,
    /// Messages to send, oldest first.
    pub outbox: VecDeque<Outgoing>,
    /// Set when the store must be read again (a switch, a send, a new message).
    pub stale: bool,
    /// Notices older than this (ms) are not shown.
    pub(super) notices_since: u64,
    /// When the client's upkeep last ran (pending leaves, own devices, KeyPackages).
    pub(super) maintained: Option<std::time::Instant>,
    seen_notices: HashSet<(u64, String)>,
}

impl App {
    /// The state for `client`, with `target` (a conversation id or a username) selected.
    pub fn new(client: &Client, target: Option<&str>) -> Result<Self, ClientError> {
        let mut app = Self {
            me: client.username().to_owned(),
            conversations: client.conversations()?,
            notices_since: client.now(),
            stale: true,
            ..Self::default()
        };
        match target {
            Some(target) => match client.resolve(target)? {
                Some(id) => app.selected = Some(id),
                None if sotto_core::identity::UserId::new(target).is_ok() => {
                    app.pending = Some(target.to_owned());
                    app.selected = Some(target.to_owned());
                }
                None => return Err(ClientError::UnknownConversation(target.into())),
            },
            None => app.selected = app.conversations.first().map(|c| c.id.clone()),
        }
        Ok(app)
    }

    /// The rows of the conversation list.
    pub fn entries(&self) -> Vec<Entry> {
        let pending = self.pending.iter().map(|user| Entry {
            key: user.clone(),
            title: user.clone(),
            unread: 0,
            active: true,
            pending: true,
        });
        let conversations = self.conversations.iter().map(|c| Entry {
            key: c.id.clone(),
            title: title(c, &self.me),
            unread: self.unread.get(&c.id).copied().unwrap_or(0),
            active: c.active,
            pending: false,
        });
        pending.chain(conversations).collect()
    }

    /// The selected conversation, if it exists yet.
    pub fn conversation(&self) -> Option<&ConversationInfo> {
        let key = self.selected.as_deref()?;
        self.conversations.iter().find(|c| c.id == key)
    }

    /// Whether `messages` are those of the selected entry (not yet, just after a switch).
    pub fn showing_selected(&self) -> bool {
        self.shown == self.selected
    }

    /// Moves the selection `delta` rows down the list (wrapping around).
    pub fn select(&mut self, delta: isize) {
        let entries = self.entries();
        if entries.is_empty() {
            return;
        }
        let len = entries.len() as isize;
        let now = entries
            .iter()
            .position(|e| Some(&e.key) == self.selected.as_ref())
            .unwrap_or(0) as isize;
        let index = (now + delta).rem_euclid(len) as usize;
        self.selected = entries.get(index).map(|e| e.key.clone());
        self.stale = true;
    }

    /// Sets the status line.
    pub fn set_status(&mut self, level: Level, text: impl Into<String>) {
        let at = Instant::now();
        let text = text.into();
        self.status = Some(Status { level, text, at });
    }

    /// Shows `notices` not shown before.
    pub fn notices(&mut self, notices: Vec<Notice>) {
        let fresh: Vec<Notice> = notices
            .into_iter()
            .filter(|n| self.seen_notices.insert((n.at, n.text.clone())))
            .collect();
        if let Some(last) = fresh.last() {
            let more = match fresh.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more: see `sotto notices`)"),
            };
            self.set_status(Level::Warning, format!("{}{more}", last.text));
        }
    }
}
