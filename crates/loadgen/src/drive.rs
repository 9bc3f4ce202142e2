//! The load: recipients on WebSockets, senders on HTTP, and the bookkeeping that turns
//! sends and frames into throughput and latency.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use sotto_api::{ClientFrame, Sent};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::cpu;
use crate::report::{Errors, Latency, Report, Totals};
use crate::setup::{World, REQUEST_TIMEOUT};
use crate::{Context, Error, Options};

/// How long all WebSockets may take to connect and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// Most cursors in one acknowledgement (the server's limit).
const MAX_ACK: usize = sotto_server::delivery::MAX_INBOX_PAGE as usize;
/// Read buffer of a recipient's WebSocket.
const READ_BUFFER: usize = 16 * 1024;
/// Error messages kept for the report.
const ERROR_SAMPLES: usize = 5;
/// The furthest a frame's sequence number may run ahead of the next one a device expects
/// in a conversation before it counts as unexpected (each skipped number is remembered).
const MAX_SEQ_GAP: u64 = 1 << 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A message sent and not yet received by all its recipients.
struct Pending {
    start: Instant,
    remaining: usize,
}

/// One conversation's messages in flight, by sequence number (what frames carry).
#[derive(Default)]
struct Conversation {
    sent: HashMap<u64, Pending>,
    /// Frames that arrived before their send's answer told the sender the sequence number.
    early: HashMap<u64, Vec<Instant>>,
}

/// The measured window.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    to: Instant,
}

/// What every task records into.
struct Tracker {
    window: OnceLock<Window>,
    conversations: Vec<Mutex<Conversation>>,
    latency: Mutex<Histogram<u64>>,
    /// Successful sends started in the window.
    sends: AtomicU64,
    /// Deliveries owed for those sends.
    expected: AtomicU64,
    /// Deliveries of those sends, whenever they arrived.
    delivered: AtomicU64,
    /// Frames that arrived in the window, whenever sent.
    arrived: AtomicU64,
    /// Successful sends of the whole run (warm-up included).
    all_sends: AtomicU64,
    /// Deliveries owed for them.
    all_expected: AtomicU64,
    /// Of those, deliveries received (each device's first copy of each message).
    all_delivered: AtomicU64,
    /// Woken when `all_delivered` catches up with `all_expected`.
    caught_up: Notify,
    send_status: AtomicU64,
    send_transport: AtomicU64,
    disconnects: AtomicU64,
    websocket: AtomicU64,
    duplicates: AtomicU64,
    unexpected: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Tracker {
    fn new(conversations: usize) -> Result<Self, Error> {
        // Microseconds, 1 µs to one hour, three significant digits.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000, 3).context("histogram")?;
        Ok(Self {
            window: OnceLock::new(),
            conversations: (0..conversations).map(|_| Mutex::default()).collect(),
            latency: Mutex::new(latency),
            sends: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            all_sends: AtomicU64::new(0),
            all_expected: AtomicU64::new(0),
            all_delivered: AtomicU64::new(0),
            caught_up: Notify::new(),
            send_status: AtomicU64::new(0),
            send_transport: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            websocket: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
        })
    }

    fn in_window(&self, at: Instant) -> bool {
        self.window.get().is_some_and(|w| at >= w.from && at < w.to)
    }

    fn error(&self, counter: &AtomicU64, message: impl FnOnce() -> String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut samples = lock(&self.samples);
        if samples.len() < ERROR_SAMPLES {
            samples.push(message());
        }
    }

    /// The server accepted a send started at `start` as `seq` of conversation `c`.
    fn sent(&self, c: usize, seq: u64, start: Instant, recipients: usize) {
        self.all_sends.fetch_add(1, Ordering::Relaxed);
        self.all_expected
            .fetch_add(recipients as u64, Ordering::SeqCst);
        if self.in_window(start) {
            self.sends.fetch_add(1, Ordering::Relaxed);
            self.expected
                .fetch_add(recipients as u64, Ordering::Relaxed);
        }
        let Some(conversation) = self.conversations.get(c) else {
            return;
        };
        let early = {
            let mut conversation = lock(conversation);
            let early = conversation.early.remove(&seq).unwrap_or_default();
            if early.len() < recipients {
                conversation.sent.insert(
                    seq,
                    Pending {
                        start,
                        remaining: recipients - early.len(),
                    },
                );
            }
            early
        };
        for at in early {
            self.delivered(start, at);
        }
    }

    /// A recipient of conversation `c` received `seq` at `at`, for the first time (each
    /// device reports each message once: see [`Seen`]).
    fn received(&self, c: usize, seq: u64, at: Instant) {
        if self.in_window(at) {
            self.arrived.fetch_add(1, Ordering::Relaxed);
        }
        let Some(conversation) = self.conversations.get(c) else {
            return;
        };
        let start = {
            let mut conversation = lock(conversation);
            match conversation.sent.get_mut(&seq) {
                Some(pending) => {
                    let start = pending.start;
                    pending.remaining = pending.remaining.saturating_sub(1);
                    if pending.remaining == 0 {
                        conversation.sent.remove(&seq);
                    }
                    Some(start)
                }
                None => {
                    conversation.early.entry(seq).or_default().push(at);
                    None
                }
            }
        };
        if let Some(start) = start {
            self.delivered(start, at);
        }
    }

    fn delivered(&self, start: Instant, at: Instant) {
        let delivered = self.all_delivered.fetch_add(1, Ordering::SeqCst) + 1;
        if delivered >= self.all_expected.load(Ordering::SeqCst) {
            self.caught_up.notify_waiters();
        }
        if self.in_window(start) {
            self.delivered.fetch_add(1, Ordering::Relaxed);
            let micros = at.saturating_duration_since(start).as_micros();
            lock(&self.latency).saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
        }
    }

    /// Frames that matched no answered send: received for a sequence number no send of
    /// this run was told (a send whose answer was lost, or a message never sent).
    fn unmatched(&self) -> u64 {
        self.conversations
            .iter()
            .map(|c| lock(c).early.values().map(|v| v.len() as u64).sum::<u64>())
            .sum()
    }

    /// Waits until every delivery owed so far has arrived, or until `deadline`.
    async fn drain(&self, deadline: Instant) {
        loop {
            let caught_up = self.caught_up.notified();
            if self.all_delivered.load(Ordering::SeqCst) >= self.all_expected.load(Ordering::SeqCst)
            {
                return;
            }
            if tokio::time::timeout_at(deadline.into(), caught_up)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// The sequence numbers one device has received in one conversation. Every message of a
/// conversation goes to all its recipients and the server numbers a conversation's
/// messages 0, 1, 2, …, so this is the next number expected and the ones skipped so far
/// (normally none: frames arrive in order).
#[derive(Debug, Default)]
struct Seen {
    next: u64,
    skipped: BTreeSet<u64>,
}

/// What [`Seen::record`] made of a sequence number.
#[derive(Debug, PartialEq, Eq)]
enum Novelty {
    /// Not received before.
    New,
    /// Received before: a duplicate.
    Again,
    /// Implausibly far ahead (more than [`MAX_SEQ_GAP`]): not recorded.
    TooFar,
}

impl Seen {
    fn record(&mut self, seq: u64) -> Novelty {
        if seq < self.next {
            return if self.skipped.remove(&seq) {
                Novelty::New
            } else {
                Novelty::Again
            };
        }
        if seq - self.next > MAX_SEQ_GAP {
            return Novelty::TooFar;
        }
        self.skipped.extend(self.next..seq);
        self.next = seq + 1;
        Novelty::New
    }
}

/// What the senders and receivers share.
struct Shared {
    world: Arc<World>,
    tracker: Tracker,
    next_id: AtomicU64,
}

impl Shared {
    /// Posts the `n`th message of conversation `c`, counted from `start`.
    async fn send(&self, c: usize, n: u64, start: Instant) {
        let Some(conversation) = self.world.conversations.get(c) else {
            return;
        };
        let id = format!(
            "{}{:024x}",
            self.world.tag,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let response = self
            .world
            .http
            .post(&conversation.url)
            .bearer_auth(&conversation.sender_token)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(conversation.body(n, &id))
            .send()
            .await;
        let tracker = &self.tracker;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                return tracker.error(&tracker.send_transport, || {
                    format!("send failed: {}", crate::describe(&e))
                });
            }
        };
        let status = response.status();
        let body = response.bytes().await;
        match (status, body) {
            (StatusCode::CREATED, Ok(body)) => match serde_json::from_slice::<Sent>(&body) {
                Ok(sent) if !sent.duplicate => {
                    tracker.sent(c, sent.seq, start, conversation.recipients);
                }
                _ => tracker.error(&tracker.send_status, || {
                    "send answered 201 with an unexpected body".into()
                }),
            },
            (status, Ok(body)) => tracker.error(&tracker.send_status, || {
                format!(
                    "send answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                )
            }),
            (_, Err(e)) => {
                tracker.error(&tracker.send_transport, || {
                    format!("send answer lost: {}", crate::describe(&e))
                });
            }
        }
    }
}

/// The fields of a server frame the generator reads (the payload is skipped, not decoded).
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    cursor: u64,
    #[serde(default)]
    conversation: &'a str,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    message: Option<String>,
}

/// One receiving device (receiver `r` of the world): connects, subscribes, then receives
/// and acknowledges until told to stop.
async fn receive(
    shared: Arc<Shared>,
    r: usize,
    ready: mpsc::Sender<Result<(), Error>>,
    mut stop: watch::Receiver<bool>,
) {
    let tracker = &shared.tracker;
    let Some(receiver) = shared.world.receivers.get(r) else {
        let _ = ready
            .send(Err(Error::new(format!("no receiving device {r}"))))
            .await;
        return;
    };
    let token = &receiver.token;
    let ws_url = format!(
        "ws{}{}",
        shared.world.base.trim_start_matches("http"),
        sotto_api::WS_PATH
    );
    let connected = async {
        let mut request = ws_url
            .as_str()
            .into_client_request()
            .context("WebSocket URL")?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).context("token")?;
        request.headers_mut().insert(AUTHORIZATION, bearer);
        // A small read buffer: the WebSocket layer zero-fills all of it before each read.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                .await
                .map_err(|e| {
                    Error::new(format!("WebSocket connection: {}", crate::describe(&e)))
                })?;
        let subscribe = serde_json::to_string(&ClientFrame::Subscribe { after: 0 })
            .context("subscribe frame")?;
        socket
            .send(Message::Text(subscribe.into()))
            .await
            .context("subscribing")?;
        Ok::<_, Error>(socket)
    }
    .await;
    let mut socket = match connected {
        Ok(socket) => {
            let _ = ready.send(Ok(())).await;
            socket
        }
        Err(e) => {
            let _ = ready.send(Err(e)).await;
            return;
        }
    };
    drop(ready);
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    let mut last_cursor = 0u64;
    let mut acks: Vec<u64> = Vec::new();
    'connection: loop {
        let first = tokio::select! {
            message = socket.next() => message,
            _ = stop.changed() => break 'connection,
        };
        let mut next = first;
        loop {
            let at = Instant::now();
            match next {
                None => {
                    tracker.error(&tracker.disconnects, || {
                        format!(
                            "receiver {r}: the server ended its WebSocket without a close frame"
                        )
                    });
                    break 'connection;
                }
                Some(Err(e)) => {
                    tracker.error(&tracker.disconnects, || {
                        format!("receiver {r}: WebSocket failed: {}", crate::describe(&e))
                    });
                    break 'connection;
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Frame<'_>>(&text) {
                    Ok(frame) if frame.kind == "message" => {
                        if frame.cursor <= last_cursor {
                            tracker.error(&tracker.duplicates, || {
                                format!(
                                    "receiver {r}: mailbox cursor {} received again (after {last_cursor})",
                                    frame.cursor
                                )
                            });
                        } else {
                            last_cursor = frame.cursor;
                            match receiver.conversations.get(frame.conversation) {
                                None => tracker.error(&tracker.unexpected, || {
                                    format!(
                                        "receiver {r}: a frame for conversation {}, which it is not in",
                                        frame.conversation
                                    )
                                }),
                                Some(&c) => match seen.entry(c).or_default().record(frame.seq) {
                                    Novelty::New => tracker.received(c, frame.seq, at),
                                    Novelty::Again => tracker.error(&tracker.duplicates, || {
                                        format!(
                                            "receiver {r}: message {} of conversation {} received twice",
                                            frame.seq, frame.conversation
                                        )
                                    }),
                                    Novelty::TooFar => tracker.error(&tracker.unexpected, || {
                                        format!(
                                            "receiver {r}: message {} of conversation {} is too far ahead",
                                            frame.seq, frame.conversation
                                        )
                                    }),
                                },
                            }
                        }
                        acks.push(frame.cursor);
                    }
                    Ok(frame) => {
                        let message = frame.message.unwrap_or_default();
                        tracker.error(&tracker.websocket, || {
                            format!("receiver {r}: server frame {}: {message}", frame.kind)
                        });
                    }
                    Err(e) => {
                        tracker.error(&tracker.websocket, || {
                            format!("receiver {r}: unreadable frame: {e}")
                        });
                    }
                },
                Some(Ok(Message::Close(close))) => {
                    tracker.error(&tracker.disconnects, || {
                        let why = close
                            .map(|c| format!(" ({}: {})", c.code, c.reason))
                            .unwrap_or_default();
                        format!("receiver {r}: the server closed its WebSocket{why}")
                    });
                    break 'connection;
                }
                Some(Ok(_)) => {}
            }
            // Acknowledge everything that arrived together, at most a page at a time.
            if acks.len() >= MAX_ACK {
                break;
            }
            match socket.next().now_or_never() {
                Some(message) => next = message,
                None => break,
            }
        }
        if !acks.is_empty() {
            let frame = ClientFrame::Ack {
                cursors: std::mem::take(&mut acks),
            };
            let sent = match serde_json::to_string(&frame) {
                Ok(text) => socket
                    .send(Message::Text(text.into()))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot encode it: {e}")),
            };
            if let Err(e) = sent {
                tracker.error(&tracker.disconnects, || {
                    format!("receiver {r}: cannot send an acknowledgement: {e}")
                });
                break 'connection;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
}

/// Open-loop sends at `rate` per second, round-robin over the conversations, from
/// `start` until `end`; each send is timed from when it was due.
async fn paced(
    shared: Arc<Shared>,
    rate: f64,
    start: Instant,
    end: Instant,
    in_flight: Arc<Semaphore>,
) {
    let conversations = shared.world.conversations.len().max(1) as u64;
    let mut k: u64 = 0;
    loop {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break;
        };
        let shared = Arc::clone(&shared);
        let (c, n) = ((k % conversations) as usize, k / conversations);
        tokio::spawn(async move {
            shared.send(c, n, due).await;
            drop(permit);
        });
        k += 1;
    }
}

/// Closed-loop sends: the next send of a lane starts when the previous one is answered.
async fn lane(shared: Arc<Shared>, c: usize, first: u64, step: u64, end: Instant) {
    let mut n = first;
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        shared.send(c, n, start).await;
        n += step;
    }
}

/// Connects the recipients, runs the load and reports.
pub(crate) async fn drive(
    options: &Options,
    world: Arc<World>,
    backend: &str,
) -> Result<Report, Error> {
    let conversations = world.conversations.len();
    let shared = Arc::new(Shared {
        world: Arc::clone(&world),
        tracker: Tracker::new(conversations)?,
        next_id: AtomicU64::new(0),
    });

    // Every recipient on its WebSocket, subscribed, before the first send.
    let (stop, stopped) = watch::channel(false);
    let connections = world.receivers.len();
    let (ready, mut readiness) = mpsc::channel(connections.max(1));
    let mut receivers = Vec::with_capacity(connections);
    for r in 0..connections {
        receivers.push(tokio::spawn(receive(
            Arc::clone(&shared),
            r,
            ready.clone(),
            stopped.clone(),
        )));
    }
    drop(ready);
    let connecting = async {
        for _ in 0..connections {
            match readiness.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => return Err(Error::new("a receiver ended before connecting")),
            }
        }
        Ok(())
    };
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .unwrap_or_else(|_| Err(Error::new("the WebSockets took too long to connect")));
    if let Err(e) = connected {
        let _ = stop.send(true);
        return Err(e.context_of("connecting the recipients"));
    }

    // The load.
    let start = Instant::now();
    let from = start + Options::secs(options.warmup);
    let to = from + Options::secs(options.duration);
    let _ = shared.tracker.window.set(Window { from, to });
    let cpu_sample = tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let before = cpu::Snapshot::take();
        tokio::time::sleep_until(to.into()).await;
        cpu::Snapshot::take().since(&before, to.saturating_duration_since(from))
    });
    let in_flight = Arc::new(Semaphore::new(options.max_in_flight));
    let mut lanes = Vec::new();
    match options.rate {
        Some(rate) => {
            lanes.push(tokio::spawn(paced(
                Arc::clone(&shared),
                rate,
                start,
                to,
                Arc::clone(&in_flight),
            )));
        }
        None => {
            let step = options.in_flight as u64;
            for c in 0..conversations {
                for first in 0..step {
                    lanes.push(tokio::spawn(lane(Arc::clone(&shared), c, first, step, to)));
                }
            }
        }
    }
    for lane in lanes {
        let _ = lane.await;
    }
    let load_secs = start.elapsed().as_secs_f64();
    // Sends still in flight finish (or time out) before the drain starts.
    let permits = u32::try_from(options.max_in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        REQUEST_TIMEOUT + Duration::from_secs(5),
        in_flight.acquire_many(permits),
    )
    .await;
    let cpu = cpu_sample.await.ok().flatten();
    let tracker = &shared.tracker;
    // Every message of the run (warm-up included) delivered, or the drain is over.
    tracker
        .drain(Instant::now() + Options::secs(options.drain))
        .await;
    let _ = stop.send(true);
    for receiver in receivers {
        match tokio::time::timeout(Duration::from_secs(5), receiver).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracker.error(&tracker.websocket, || format!("a receiver failed: {e}")),
            Err(_) => tracker.error(&tracker.websocket, || {
                "a receiver did not stop within 5 s of being told to".into()
            }),
        }
    }
    let unmatched = tracker.unmatched();
    if unmatched > 0 {
        tracker.error(&tracker.unexpected, || {
            format!("{unmatched} deliveries of messages whose send was not answered")
        });
        tracker
            .unexpected
            .fetch_add(unmatched - 1, Ordering::Relaxed);
    }

    let seconds = options.duration;
    let sends = tracker.sends.load(Ordering::Relaxed);
    let arrived = tracker.arrived.load(Ordering::Relaxed);
    let expected = tracker.expected.load(Ordering::Relaxed);
    let delivered = tracker.delivered.load(Ordering::Relaxed);
    let all_expected = tracker.all_expected.load(Ordering::SeqCst);
    let all_delivered = tracker.all_delivered.load(Ordering::SeqCst);
    let latency = Latency::of(&lock(&tracker.latency));
    let error_samples = lock(&tracker.samples).clone();
    let report = Report {
        backend: backend.to_owned(),
        conversations,
        group_size: options.group_size,
        ring: options.ring,
        devices: world.devices,
        connections,
        payload_bytes: options.payload_bytes,
        ciphertext_bytes: world.ciphertext_bytes,
        target_rate: options.rate,
        setup_secs: world.setup.as_secs_f64(),
        duration_secs: seconds,
        sends,
        sends_per_sec: sends as f64 / seconds,
        deliveries: arrived,
        deliveries_per_sec: arrived as f64 / seconds,
        latency_ms: latency,
        expected_deliveries: expected,
        undelivered: expected.saturating_sub(delivered),
        total: Totals {
            secs: load_secs,
            sends: tracker.all_sends.load(Ordering::Relaxed),
            expected_deliveries: all_expected,
            delivered: all_delivered,
            lost: all_expected.saturating_sub(all_delivered),
        },
        errors: Errors {
            send_status: tracker.send_status.load(Ordering::Relaxed),
            send_transport: tracker.send_transport.load(Ordering::Relaxed),
            disconnects: tracker.disconnects.load(Ordering::Relaxed),
            websocket: tracker.websocket.load(Ordering::Relaxed),
            duplicates: tracker.duplicates.load(Ordering::Relaxed),
            unexpected: tracker.unexpected.load(Ordering::Relaxed),
        },
        error_samples,
        cpu,
    };
    Ok(report)
}

impl Error {
    fn context_of(self, what: &str) -> Self {
        Error::new(format!("{what}: {self}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sequence_number_counts_once_in_any_order() {
        let mut seen = Seen::default();
        assert_eq!(seen.record(0), Novelty::New);
        assert_eq!(seen.record(1), Novelty::New);
        assert_eq!(seen.record(1), Novelty::Again);
        // 2 and 3 overtaken by 4, then arriving late: new once, duplicates after.
        assert_eq!(seen.record(4), Novelty::New);
        assert_eq!(seen.record(3), Novelty::New);
        assert_eq!(seen.record(2), Novelty::New);
        assert_eq!(seen.record(2), Novelty::Again);
        assert_eq!(seen.record(0), Novelty::Again);
        assert!(seen.skipped.is_empty());
        assert_eq!(seen.record(5 + MAX_SEQ_GAP + 1), Novelty::TooFar);
        assert_eq!(seen.record(5), Novelty::New);
    }
}
