//! The command line's grammar (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sotto: end-to-end encrypted, ephemeral messaging.
///
/// Every message has a time to live and may burn on read. Expired messages are deleted
/// whenever sotto runs, including those that expired while it was not running (they are
/// gone before anything is shown). The profile (keys, conversations, messages) is one
/// encrypted database, unlocked with a passphrase.
#[derive(Debug, Parser)]
#[command(name = "sotto", version, propagate_version = true)]
pub struct Cli {
    /// The profile directory (one account's device).
    #[arg(long, global = true, env = "SOTTO_PROFILE")]
    pub profile: Option<PathBuf>,
    /// The server, e.g. https://chat.example.org (remembered by the profile).
    #[arg(long, global = true, env = "SOTTO_SERVER")]
    pub server: Option<String>,
    /// A PEM file of certificate authorities to trust for the server, besides the
    /// system's (for a deployment with its own CA; remembered by the profile).
    #[arg(long, global = true, env = "SOTTO_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account and make this profile its first device.
    Register(Account),
    /// Make this profile a new device of an existing account (username and password).
    Login(Account),
    /// Acknowledge the ephemerality policy (needed once before sending).
    AcceptPolicy,
    /// Show this profile's account and device.
    Whoami,
    /// List the account's devices, or revoke one.
    Devices {
        /// `revoke <device-id>`.
        #[command(subcommand)]
        action: Option<DeviceAction>,
    },
    /// Send a message (or a file) to a user or a conversation.
    Send(Send),
    /// Fetch and process what arrived; print new messages.
    Sync {
        /// If nothing is new, wait up to this many seconds for a message to arrive (over
        /// the live connection) and print it.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Show the stored, unexpired messages of a conversation.
    #[command(alias = "show")]
    Messages {
        /// A username (their 1:1 conversation), a group name, or a conversation id (or
        /// its first characters).
        target: String,
        /// Also write decrypted attachments into this directory (readable by you only;
        /// these copies do not expire).
        #[arg(long, value_name = "DIR")]
        save_attachments: Option<PathBuf>,
    },
    /// Mark a conversation read; burn-on-read messages are deleted.
    Read {
        /// A username or a conversation id.
        target: String,
    },
    /// List conversations.
    #[command(alias = "ls")]
    Conversations,
    /// Groups: create, add, remove, leave, info.
    Group {
        /// What to do.
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Show the safety number (and QR code) with a user; confirm it to mark them verified.
    Verify {
        /// The user.
        username: String,
        /// The safety number you compared with them.
        #[arg(long, value_name = "SAFETY-NUMBER")]
        confirm: Option<String>,
    },
    /// Warnings kept for you (key changes, rejected messages).
    Notices,
    /// Interactive chat in the terminal.
    Chat {
        /// Open this conversation first.
        target: Option<String>,
    },
    /// Overwrite the free space of the profile's file system, then free it again.
    Shred {
        /// Write at most this many bytes (e.g. 512M, 2G); default: all free space.
        #[arg(long, value_name = "SIZE")]
        limit: Option<String>,
    },
}

/// `register` and `login`.
#[derive(Debug, Args)]
pub struct Account {
    /// The account name.
    pub username: String,
    /// Acknowledge the ephemerality policy without being asked (for scripts).
    #[arg(long)]
    pub accept_ephemerality_policy: bool,
}

/// `devices revoke`.
#[derive(Debug, Subcommand)]
pub enum DeviceAction {
    /// Revoke a device: it can no longer log in and leaves every conversation.
    Revoke {
        /// The device id (see `sotto devices`).
        device_id: String,
    },
}

/// `send`.
#[derive(Debug, Args)]
pub struct Send {
    /// A username or a conversation id.
    pub target: String,
    /// The text (leave it out when sending a file with --file).
    pub text: Option<String>,
    /// How long the message lives: 30s, 10m, 2h, 7d (capped by the conversation).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Delete the message as soon as it is read.
    #[arg(long)]
    pub burn_on_read: bool,
    /// Send this file, encrypted, as an attachment.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

/// `group …`.
#[derive(Debug, Subcommand)]
pub enum GroupAction {
    /// Create a group that you manage.
    Create {
        /// Its name.
        name: String,
        /// The other members, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// Longest life of a message in it (default 7d).
        #[arg(long)]
        max_ttl: Option<String>,
        /// Every message in it burns on read.
        #[arg(long)]
        burn_on_read: bool,
    },
    /// Add a user (managers only).
    Add {
        /// The conversation id.
        conversation: String,
        /// The user.
        username: String,
    },
    /// Remove a user (managers only).
    Remove {
        /// The conversation id.
        conversation: String,
        /// The user.
        username: String,
    },
    /// Leave a group.
    Leave {
        /// The conversation id.
        conversation: String,
    },
    /// Show a group's members, managers and policy.
    Info {
        /// The conversation id (or a username, for a 1:1 conversation).
        conversation: String,
    },
}
