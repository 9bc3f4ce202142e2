//! What a run measured.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::CpuUse;

/// Delivery latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Deliveries measured (of messages sent in the window).
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds.
    pub fn of(micros: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if micros.is_empty() {
            return Self::default();
        }
        Self {
            samples: micros.len(),
            p50: ms(micros.value_at_quantile(0.50)),
            p90: ms(micros.value_at_quantile(0.90)),
            p99: ms(micros.value_at_quantile(0.99)),
            p999: ms(micros.value_at_quantile(0.999)),
            max: ms(micros.max()),
            mean: micros.mean() / 1000.0,
        }
    }
}

/// Errors counted during the run (all of it, warm-up and drain included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// Sends answered with anything but `201 Created` and a fresh sequence number.
    pub send_status: u64,
    /// Sends that failed on the way (connection, timeout).
    pub send_transport: u64,
    /// WebSockets that failed, were closed by the server or could not send an
    /// acknowledgement before the run ended.
    pub disconnects: u64,
    /// Error frames from the server, unreadable frames, receivers that failed or did not
    /// stop.
    pub websocket: u64,
    /// Frames one device received twice: the same mailbox cursor again, or the same
    /// message (conversation and sequence number) under another cursor.
    pub duplicates: u64,
    /// Frames no device should have received: for a conversation the device is not in,
    /// or of a message whose send was never answered.
    pub unexpected: u64,
}

/// The total, then each kind: "3 (send status 1, send transport 0, …)".
impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (send status {}, send transport {}, disconnects {}, websocket {}, \
             duplicates {}, unexpected {})",
            self.total(),
            self.send_status,
            self.send_transport,
            self.disconnects,
            self.websocket,
            self.duplicates,
            self.unexpected
        )
    }
}

impl Errors {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.send_status
            + self.send_transport
            + self.disconnects
            + self.websocket
            + self.duplicates
            + self.unexpected
    }
}

/// Every message of the run, warm-up included (the window's figures count only the
/// sends started in the window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Seconds of load, warm-up and window.
    pub secs: f64,
    /// Successful sends.
    pub sends: u64,
    /// Deliveries owed for them: each send times its recipient devices.
    pub expected_deliveries: u64,
    /// Of those, how many arrived (a device's first copy of a message; further copies
    /// are counted as duplicates).
    pub delivered: u64,
    /// Of those owed, how many had not arrived when the drain ended: lost, or later than
    /// `--drain`.
    pub lost: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The server's back-end.
    pub backend: String,
    /// Conversations (one sender each).
    pub conversations: usize,
    /// Devices per conversation, the sender included.
    pub group_size: usize,
    /// Whether every device both sends (in one conversation) and receives (in others).
    pub ring: bool,
    /// Devices enrolled.
    pub devices: usize,
    /// Recipient WebSockets (one per receiving device).
    pub connections: usize,
    /// Bytes of text per message.
    pub payload_bytes: usize,
    /// Bytes of each MLS ciphertext.
    pub ciphertext_bytes: usize,
    /// Sends per second asked for; `None`: as fast as possible.
    pub target_rate: Option<f64>,
    /// Seconds the setup took.
    pub setup_secs: f64,
    /// Seconds measured.
    pub duration_secs: f64,
    /// Successful sends started in the window.
    pub sends: u64,
    /// `sends` per second.
    pub sends_per_sec: f64,
    /// Frames (message × recipient device) received in the window.
    pub deliveries: u64,
    /// `deliveries` per second.
    pub deliveries_per_sec: f64,
    /// From the start of a send (when it was due, at a target rate) to a recipient's
    /// receipt of the frame, over the messages sent in the window.
    pub latency_ms: Latency,
    /// Deliveries owed for the sends of the window.
    pub expected_deliveries: u64,
    /// Of those, how many had not arrived by the end of the drain.
    pub undelivered: u64,
    /// Every message of the run, warm-up included.
    pub total: Totals,
    /// Errors counted.
    pub errors: Errors,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// CPU use during the window, where it could be read.
    pub cpu: Option<CpuUse>,
}

impl Report {
    /// What kept the run from being error-free, one sentence each; empty when every
    /// request and connection succeeded, at least one message was sent, and every message
    /// reached every recipient device exactly once.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let e = &self.errors;
        if e.total() > 0 {
            problems.push(format!("{e} errors"));
        }
        let t = &self.total;
        if t.lost > 0 {
            problems.push(format!(
                "{} of {} deliveries had not arrived when the drain ended",
                t.lost, t.expected_deliveries
            ));
        }
        if t.sends == 0 {
            problems.push("no message was sent".into());
        }
        problems
    }

    /// Whether the run was error-free (see [`Report::problems`]).
    pub fn is_clean(&self) -> bool {
        self.problems().is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = match self.target_rate {
            Some(rate) => format!("target {rate:.0} sends/s (open loop)"),
            None => "as fast as possible (closed loop)".into(),
        };
        let ring = if self.ring {
            ", in a ring (every device sends and receives)"
        } else {
            ""
        };
        writeln!(
            f,
            "backend {}: {} conversations of {} devices{ring}; {} devices, {} recipient \
             WebSockets; {} B text = {} B ciphertext, {rate}",
            self.backend,
            self.conversations,
            self.group_size,
            self.devices,
            self.connections,
            self.payload_bytes,
            self.ciphertext_bytes
        )?;
        writeln!(
            f,
            "setup {:.1} s, measured {:.1} s",
            self.setup_secs, self.duration_secs
        )?;
        writeln!(
            f,
            "sends:      {:>10.0}/s  ({} sends)",
            self.sends_per_sec, self.sends
        )?;
        writeln!(
            f,
            "deliveries: {:>10.0}/s  ({} frames)",
            self.deliveries_per_sec, self.deliveries
        )?;
        let l = &self.latency_ms;
        writeln!(
            f,
            "latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}  ({} deliveries)",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean, l.samples
        )?;
        writeln!(
            f,
            "undelivered after drain: {} of {}",
            self.undelivered, self.expected_deliveries
        )?;
        let t = &self.total;
        writeln!(
            f,
            "whole run ({:.1} s of load): {} sends, {} of {} deliveries arrived, {} lost",
            t.secs, t.sends, t.delivered, t.expected_deliveries, t.lost
        )?;
        let e = &self.errors;
        writeln!(f, "errors: {e}")?;
        for sample in &self.error_samples {
            writeln!(f, "  e.g. {sample}")?;
        }
        if let Some(cpu) = &self.cpu {
            let list = |items: &[(String, f64)]| {
                items
                    .iter()
                    .map(|(name, cores)| format!("{name} {cores:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            writeln!(
                f,
                "cpu (cores of {}): machine {}; this process: {}; others: {}",
                cpu.cores,
                cpu.machine.map_or("?".into(), |m| format!("{m:.2}")),
                list(&cpu.threads),
                list(&cpu.others)
            )?;
        }
        Ok(())
    }
}
