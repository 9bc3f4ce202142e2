//! What can go wrong, in words a person understands.
//!
//! Every error from the network, the server, the profile store or the protocol is mapped
//! to a [`ClientError`] whose message says what happened and, where there is one, what to
//! do. No message contains a secret (passphrase, password, key, message text).

use sotto_api::ErrorCode;
use sotto_core::conversation::ConversationError;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached at all.
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable {
        /// The server's address.
        url: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The server answered with an error.
    #[error("the server refused the request: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The machine-readable kind, if the server sent one.
        code: Option<ErrorCode>,
        /// The server's explanation.
        message: String,
    },
    /// The server sent something that is not what the protocol allows.
    #[error("the server sent an invalid answer: {0}")]
    Protocol(String),
    /// No such user on the server.
    #[error("there is no user called {0} on this server")]
    UnknownUser(String),
    /// The username is taken.
    #[error("the username {0} is already taken on this server")]
    UsernameTaken(String),
    /// The profile's passphrase is wrong (or its key file is damaged).
    #[error("wrong passphrase for this profile (or its key file is damaged); nothing was changed")]
    WrongPassphrase,
    /// The account password is wrong (or the account has no password).
    #[error("wrong username or password")]
    WrongPassword,
    /// No profile exists in the directory.
    #[error("no Sotto profile in {0}; run `sotto register` or `sotto login` first")]
    NoProfile(String),
    /// The profile exists already.
    #[error("the profile in {0} already belongs to an account; use another --profile")]
    ProfileExists(String),
    /// The profile has no account yet.
    #[error("this profile has no account yet; run `sotto register` or `sotto login` first")]
    NotRegistered,
    /// The profile store failed or is damaged.
    #[error("the profile store failed: {0}")]
    Store(String),
    /// The ephemerality policy was not acknowledged.
    #[error("you have not acknowledged the ephemerality policy yet, so nothing can be sent; read it and accept it with `sotto accept-policy`")]
    PolicyNotAccepted,
    /// The message breaks the conversation's policy.
    #[error("the conversation's policy forbids this: {0}")]
    PolicyViolation(String),
    /// Only managers may do this.
    #[error("only a manager of this conversation can add or remove members, and you are not one")]
    NotAManager,
    /// A verified contact's root key changed.
    #[error("the safety number with {user} changed since you verified it: their account key is not the one you checked. Sending to {user} is blocked until you compare the new safety number with them (`sotto verify {user}`) and confirm it (`sotto verify {user} --confirm <number>`)")]
    VerifiedKeyChanged {
        /// The contact.
        user: String,
    },
    /// The safety number typed does not match.
    #[error("the safety number you entered does not match the one for {0}; the contact stays unverified")]
    SafetyNumberMismatch(String),
    /// Unknown conversation.
    #[error("no conversation {0} in this profile")]
    UnknownConversation(String),
    /// The user is not a member.
    #[error("{user} is not a member of conversation {conversation}")]
    NotAMember {
        /// The user.
        user: String,
        /// The conversation.
        conversation: String,
    },
    /// Bad input from the user.
    #[error("{0}")]
    Invalid(String),
    /// The MLS layer refused something.
    #[error("{0}")]
    Conversation(#[from] ConversationError),
    /// An attachment could not be read, written or verified.
    #[error("attachment: {0}")]
    Attachment(String),
}

impl ClientError {
    /// A store failure.
    pub(crate) fn store(e: impl core::fmt::Display) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<rusqlite::Error> for ClientError {
    fn from(e: rusqlite::Error) -> Self {
        Self::store(e)
    }
}

impl From<sotto_core::crypto::CryptoError> for ClientError {
    fn from(e: sotto_core::crypto::CryptoError) -> Self {
        Self::Store(format!("cryptographic failure: {e}"))
    }
}

impl From<sotto_core::identity::IdentityError> for ClientError {
    fn from(e: sotto_core::identity::IdentityError) -> Self {
        Self::Invalid(e.to_string())
    }
}

impl From<sotto_core::policy::PolicyError> for ClientError {
    fn from(e: sotto_core::policy::PolicyError) -> Self {
        Self::PolicyViolation(e.to_string())
    }
}

impl From<sotto_core::content::ContentError> for ClientError {
    fn from(e: sotto_core::content::ContentError) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = ClientError> = core::result::Result<T, E>;
