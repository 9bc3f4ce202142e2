//! Live delivery over a WebSocket: `GET /v1/ws`.
//!
//! The upgrade request is authenticated like every other route, by
//! `Authorization: Bearer <token>` (never by a token in the URL, which proxies log); without
//! a valid session it is answered 401 and not upgraded. Then, in JSON text frames
//! ([`ClientFrame`], [`ServerFrame`]):
//!
//! - the client sends `{"type":"subscribe","after":<cursor>}` once;
//! - the server sends every mailbox entry after that cursor as `{"type":"message", ...}`,
//!   in cursor order, then each new entry as it is stored — each at most once per
//!   connection; whatever is not acknowledged comes again on the next connection that
//!   subscribes after an earlier cursor (at-least-once);
//! - the client sends `{"type":"ack","cursors":[...]}` as `POST /v1/inbox/ack` would.
//!
//! The connection never polls: it sleeps until the [`crate::hub`] wakes it, then reads
//! the store from the last cursor it sent, only as far as its bounded outbound queue has
//! room ([`OUTBOUND_FRAMES`]); a client too slow to take a frame within [`SEND_TIMEOUT`]
//! is dropped. Each read also re-checks the session, in the same snapshot (one store
//! call per wake-up), so a revoked device's socket closes at once and is sent nothing
//! after the revocation (and an expired session closes at the next wake-up or ping).
//! Input is hostile: a frame over [`MAX_FRAME`], a binary frame, malformed JSON, an
//! unknown type or too many cursors is answered with `{"type":"error", ...}` and a close.
//! The server pings every [`PING_INTERVAL`] and drops a client silent for
//! [`IDLE_TIMEOUT`]. Nothing here logs the token, the client's address or a payload.

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sotto_api::{ApiError, ClientFrame, ErrorCode, ServerFrame};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use crate::auth::{bearer_token_hash, Session};
use crate::delivery::{check_ack, inbox_message, MAX_SEND_BODY};
use crate::http::{now, Failure};
use crate::hub::{Refused, Signal, Subscription};
use crate::state::AppState;
use crate::storage::{Delivered, DeviceRef, MAX_PAGE_BYTES};

/// Largest frame (and message) accepted from a client.
pub const MAX_FRAME: usize = 64 * 1024;
/// How often the server pings and re-checks the session.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// A client silent this long (not even a pong) is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A client that takes longer to accept one frame is disconnected.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most frames queued for a client. The store is read only as far as this queue has
/// room, so a connection holds at most this many messages (and one more) in memory.
pub const OUTBOUND_FRAMES: usize = 8;
/// The WebSocket read buffer. Client frames are small; the WebSocket layer zero-fills the
/// whole buffer before every read, so its default of 128 KiB cost a tenth of the server's
/// CPU under load (it grows as needed for a larger frame).
pub const READ_BUFFER: usize = 4096;
/// How long the farewell (error and close frames) may take.
const FAREWELL: Duration = Duration::from_secs(2);
/// How long a socket is held open after refusing a frame it could not read: closing it
/// with that frame's bytes unread would reset the connection, and the reset can destroy
/// the error frame before the client reads it.
const LINGER: Duration = Duration::from_secs(1);

/// `GET /v1/ws`: upgrade to a live-delivery WebSocket.
pub async fn connect(
    State(state): State<AppState>,
    Session(device): Session,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    let upgrade =
        upgrade.map_err(|e| Failure::new(e.status(), ErrorCode::BadRequest, e.body_text()))?;
    let token_hash = bearer_token_hash(&headers)?;
    let subscription = state
        .hub
        .subscribe(&device)
        .map_err(|refused| match refused {
            Refused::TooMany => Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many live connections for this device",
            ),
            Refused::ShuttingDown => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "the server is shutting down",
            ),
        })?;
    let connection = Connection {
        state,
        device,
        token_hash,
        subscription,
        after: None,
        pending: VecDeque::new(),
        dirty: false,
    };
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| connection.run(socket)))
}

/// Why a connection ends.
enum End {
    /// The client left, or stopped accepting frames: nothing more to say.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// Send an error frame, then close with this code.
    Refuse(u16, ApiError),
    /// A frame could not be read (too large, or not WebSocket): refuse, and linger.
    Unreadable(String),
}

impl End {
    fn refuse(code: u16, failure: Failure) -> Self {
        Self::Refuse(code, failure.into_body())
    }

    fn bad_frame(code: u16, message: impl Into<String>) -> Self {
        Self::refuse(code, Failure::bad_request(message))
    }
}

/// One live connection of an authenticated device.
struct Connection {
    state: AppState,
    device: DeviceRef,
    token_hash: [u8; 32],
    subscription: Subscription,
    /// Once subscribed: the cursor of the last entry read from the store.
    after: Option<u64>,
    /// Entries read and not yet queued for sending.
    pending: VecDeque<Delivered>,
    /// Whether the mailbox may hold entries after `after`.
    dirty: bool,
}

type Outbound = mpsc::Sender<Message>;

/// Counts a connection in the live-connections gauge for as long as it lives.
struct Counted(prometheus_client::metrics::gauge::Gauge);

impl Counted {
    fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Connection {
    async fn run(mut self, socket: WebSocket) {
        tracing::debug!(event = "ws_open", "live connection opened");
        let _counted = Counted::new(&self.state.metrics.live_connections);
        let (sink, mut stream) = socket.split();
        let (outbound, queue) = mpsc::channel(OUTBOUND_FRAMES);
        let mut writer = tokio::spawn(write(sink, queue));
        let end = self.serve(&mut stream, &outbound).await;
        let linger = matches!(end, End::Unreadable(_));
        let (code, reason, error) = match end {
            End::Gone => (None, "", None),
            End::Close(code, reason) => (Some(code), reason, None),
            End::Refuse(code, error) => (Some(code), "refused", Some(error)),
            End::Unreadable(message) => (
                Some(close_code::POLICY),
                "refused",
                Some(Failure::bad_request(message).into_body()),
            ),
        };
        if let Some(error) = error {
            if let Ok(text) = serde_json::to_string(&ServerFrame::Error(error)) {
                let _ = outbound
                    .send_timeout(Message::Text(text.into()), FAREWELL)
                    .await;
            }
        }
        if let Some(code) = code {
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            let _ = outbound.send_timeout(close, FAREWELL).await;
        }
        drop(outbound);
        if timeout(FAREWELL, &mut writer).await.is_err() {
            writer.abort();
        }
        if linger {
            let closing = async { while self.subscription.next().await != Signal::Closing {} };
            let _ = timeout(LINGER, closing).await;
        }
        drop(stream);
        tracing::debug!(event = "ws_closed", reason, "live connection closed");
    }

    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>, outbound: &Outbound) -> End {
        let mut heard = Instant::now();
        let mut ping = tokio::time::interval_at(heard + PING_INTERVAL, PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(end) = self.read_store(outbound).await {
                return end;
            }
            let step = tokio::select! {
                signal = self.subscription.next() => match signal {
                    // The read that follows re-checks the session.
                    Signal::Wake => {
                        self.dirty = true;
                        Ok(())
                    }
                    Signal::Closing => Err(End::Close(close_code::AWAY, "server shutting down")),
                },
                permit = outbound.reserve(), if !self.pending.is_empty() => match permit {
                    Ok(permit) => self.send_next(permit),
                    Err(_) => Err(End::Gone),
                },
                () = outbound.closed() => Err(End::Gone),
                frame = stream.next() => {
                    heard = Instant::now();
                    match frame {
                        Some(Ok(message)) => self.receive(message).await,
                        Some(Err(e)) => Err(End::Unreadable(format!(
                            "unreadable frame ({e}); frames are at most {MAX_FRAME} bytes"
                        ))),
                        None => Err(End::Gone),
                    }
                },
                _ = ping.tick() => {
                    if heard.elapsed() >= IDLE_TIMEOUT {
                        Err(End::Close(close_code::NORMAL, "idle"))
                    } else {
                        // A full queue is traffic enough: skip this ping.
                        let _ = outbound.try_send(Message::Ping(Default::default()));
                        self.check_session().await
                    }
                },
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Once subscribed, when the mailbox may have grown and everything read was queued:
    /// reads the entries after the last one read, as many as the queue has room for, if
    /// the session is still valid (else the connection ends).
    async fn read_store(&mut self, outbound: &Outbound) -> Result<(), End> {
        let Some(after) = self.after else {
            return Ok(());
        };
        if !self.dirty || !self.pending.is_empty() {
            return Ok(());
        }
        let room = outbound.capacity().clamp(1, OUTBOUND_FRAMES);
        let page = self
            .state
            .store
            .live_inbox(
                &self.token_hash,
                now(),
                &self.device,
                after,
                u32::try_from(room).unwrap_or(1),
            )
            .await
            .map_err(|e| End::refuse(close_code::ERROR, e.into()))?
            .ok_or_else(session_ended)?;
        // A short page is the whole mailbox as of the read: anything stored after it wakes
        // the connection again (the hub's version was marked seen before the read). A full
        // page, or one the byte limit may have cut short, may have more behind it: read
        // again once it is queued.
        let bytes: usize = page.iter().map(|d| d.payload.len()).sum();
        self.dirty = page.len() >= room || bytes > MAX_PAGE_BYTES.saturating_sub(MAX_SEND_BODY);
        if let Some(last) = page.last() {
            self.after = Some(last.cursor);
        }
        self.pending.extend(page);
        Ok(())
    }

    fn send_next(&mut self, permit: mpsc::Permit<'_, Message>) -> Result<(), End> {
        if let Some(entry) = self.pending.pop_front() {
            let frame = ServerFrame::Message(inbox_message(entry));
            let text = serde_json::to_string(&frame).map_err(|_| {
                End::refuse(
                    close_code::ERROR,
                    Failure::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        ErrorCode::Internal,
                        "cannot encode a frame",
                    ),
                )
            })?;
            permit.send(Message::Text(text.into()));
        }
        Ok(())
    }

    async fn receive(&mut self, message: Message) -> Result<(), End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return Err(End::bad_frame(
                    close_code::UNSUPPORTED,
                    "binary frames are not accepted: send JSON text frames",
                ))
            }
            // Pings are answered by the WebSocket layer; any frame counts as a sign of life.
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(_) => return Err(End::Gone),
        };
        let frame: ClientFrame = serde_json::from_str(text.as_str())
            .map_err(|e| End::bad_frame(close_code::POLICY, format!("malformed frame: {e}")))?;
        match frame {
            ClientFrame::Subscribe { after } => {
                if self.after.is_some() {
                    return Err(End::bad_frame(close_code::POLICY, "already subscribed"));
                }
                self.after = Some(after);
                self.dirty = true;
                Ok(())
            }
            ClientFrame::Ack { cursors } => {
                check_ack(&cursors).map_err(|f| End::refuse(close_code::POLICY, f))?;
                self.state
                    .store
                    .ack(&self.device, &cursors)
                    .await
                    .map_err(|e| End::refuse(close_code::ERROR, e.into()))
            }
        }
    }

    /// Ends the connection if its session expired or its device was revoked.
    async fn check_session(&self) -> Result<(), End> {
        match self.state.store.session(&self.token_hash, now()).await {
            Ok(Some(device)) if device == self.device => Ok(()),
            Ok(_) => Err(session_ended()),
            Err(e) => Err(End::refuse(close_code::ERROR, e.into())),
        }
    }
}

/// The end of a connection whose session expired or whose device was revoked.
fn session_ended() -> End {
    End::refuse(
        close_code::POLICY,
        Failure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "the session ended (expired, or the device was revoked)",
        ),
    )
}

/// Sends queued frames until the queue closes, a close frame was sent, or the client
/// takes longer than [`SEND_TIMEOUT`] to accept one; then closes the socket.
async fn write(mut sink: SplitSink<WebSocket, Message>, mut queue: mpsc::Receiver<Message>) {
    while let Some(message) = queue.recv().await {
        let last = matches!(message, Message::Close(_));
        match timeout(SEND_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !last => {}
            _ => break,
        }
    }
    // Dropping the queue tells the connection to stop; closing flushes any close reply.
    drop(queue);
    let _ = timeout(FAREWELL, sink.close()).await;
}
