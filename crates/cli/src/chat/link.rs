//! The client's side of the loop: the live connection (or, without one, polling the
//! inbox and reconnecting now and then) and what each turn brought.

use std::time::{Duration, Instant};

use sotto_client::live::Live;
use sotto_client::{Client, ClientError, SyncReport};

use super::app::{App, Level, LinkState};

/// Longest wait for live messages before the screen is redrawn (for the countdowns) and
/// queued work is done.
pub const WAIT: Duration = Duration::from_millis(200);
/// How often the inbox is polled while the live connection is down.
const SYNC_EVERY: Duration = Duration::from_secs(3);
/// First and longest wait before reconnecting the live connection.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The live connection, or when to try again and when the inbox was last polled.
pub enum Link {
    /// Connected.
    Live(Box<Live>),
    /// Not connected.
    Down {
        /// When to try to connect again.
        retry_at: Instant,
        /// How long to wait after the next failure.
        retry_in: Duration,
        /// When the inbox was last polled.
        synced_at: Option<Instant>,
    },
}

impl Link {
    /// Not connected yet: connect at once.
    pub fn start() -> Self {
        Self::Down {
            retry_at: Instant::now(),
            retry_in: RETRY_FIRST,
            synced_at: None,
        }
    }
}

/// What the client did in one turn.
pub enum Work {
    /// Waited for live messages.
    Live(Result<Option<SyncReport>, ClientError>),
    /// Tried to connect.
    Connected(Result<(Box<Live>, SyncReport), ClientError>),
    /// Polled the inbox.
    Synced(Result<SyncReport, ClientError>),
    /// Waited.
    Idle,
}

/// One turn of the client's work: wait for live messages, or (without a connection)
/// reconnect, poll the inbox, or wait.
pub async fn turn(client: &mut Client, link: &mut Link) -> Work {
    match link {
        Link::Live(live) => Work::Live(client.next_live(live.as_mut(), WAIT).await),
        Link::Down {
            retry_at,
            synced_at,
            ..
        } => {
            let now = Instant::now();
            if now >= *retry_at {
                let connected = client.connect_live().await;
                Work::Connected(connected.map(|(live, report)| (Box::new(live), report)))
            } else if synced_at.is_none_or(|t| now >= t + SYNC_EVERY) {
                Work::Synced(client.sync().await)
            } else {
                tokio::time::sleep(WAIT).await;
                Work::Idle
            }
        }
    }
}

/// Updates the connection and the app with what a turn brought.
pub fn handle(work: Work, link: &mut Link, app: &mut App) {
    let report = match work {
        Work::Idle | Work::Live(Ok(None)) => None,
        Work::Live(Ok(Some(report))) => Some(report),
        Work::Live(Err(e)) => {
            app.set_status(
                Level::Error,
                format!("the live connection was lost ({e}); reconnecting"),
            );
            app.link = Some(LinkState::Down);
            *link = Link::Down {
                retry_at: Instant::now(),
                retry_in: RETRY_FIRST,
                synced_at: Some(Instant::now()),
            };
            None
        }
        Work::Connected(Ok((live, report))) => {
            if app.link == Some(LinkState::Down) {
                app.set_status(Level::Info, "live connection restored");
            }
            app.link = Some(LinkState::Live);
            *link = Link::Live(live);
            Some(report)
        }
        Work::Connected(Err(e)) => {
            if let Link::Down {
                retry_at, retry_in, ..
            } = link
            {
                *retry_at = Instant::now() + *retry_in;
                let text = format!(
                    "no live connection ({e}); polling the inbox, reconnecting in {}s",
                    retry_in.as_secs()
                );
                *retry_in = (*retry_in * 2).min(RETRY_MAX);
                app.set_status(Level::Error, text);
            }
            app.link = Some(LinkState::Down);
            None
        }
        Work::Synced(result) => {
            if let Link::Down { synced_at, .. } = link {
                *synced_at = Some(Instant::now());
            }
            result
                .map_err(|e| app.set_status(Level::Error, format!("sync failed: {e}")))
                .ok()
        }
    };
    if let Some(report) = report {
        // Receipts and membership changes come without new messages: reload anyway.
        app.stale = true;
        app.notices(report.notices);
    }
}
