//! What the command line prints: text for people, or one JSON object per line (`--json`).

use serde_json::{json, Value};
use sotto_client::{ConversationInfo, DeviceEntry, Message, Notice};

use crate::duration::format_remaining;

/// Prints records as text or JSON lines.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// JSON lines instead of text.
    pub json: bool,
}

/// `HH:MM:SS` (UTC) of a time in milliseconds since the Unix epoch.
pub fn clock(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Replaces what could drive the terminal or disguise text (control characters, such as
/// the escape that starts a terminal sequence, and bidirectional overrides) in text from
/// other users. Tabs become spaces; new lines are kept (the chat wraps on them).
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => '\n',
            '\t' => ' ',
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' => '\u{fffd}',
            '\u{2066}'..='\u{2069}' => '\u{fffd}',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// Writes a line to standard output. A closed pipe (`sotto … | head`) is not an error:
/// the reader has what it wanted.
pub fn emit(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

/// The JSON record of a message.
pub fn message_json(m: &Message) -> Value {
    json!({
        "type": "message",
        "conversation": m.conversation,
        "id": m.id,
        "from": m.from,
        "text": m.text,
        "sent_at": m.sent_at,
        "expires_at": m.expires_at,
        "burn_on_read": m.burn_on_read,
        "outgoing": m.outgoing,
        "read": m.read,
        "delivered_to": m.delivered_to,
        "read_by": m.read_by,
        "attachment": m.attachment.as_ref().map(|a| json!({
            "file_name": a.file_name,
            "size": a.size,
        })),
    })
}

/// One line of text for a message, with its remaining life.
pub fn message_line(m: &Message, now_ms: u64) -> String {
    let left = format_remaining(m.expires_at.saturating_sub(now_ms) / 1000);
    let mut flags = vec![format!("{left} left")];
    if m.burn_on_read {
        flags.push("burn on read".into());
    }
    if m.outgoing && !m.read_by.is_empty() {
        flags.push(format!("read by {}", m.read_by.join(", ")));
    } else if m.outgoing && !m.delivered_to.is_empty() {
        flags.push(format!("delivered to {}", m.delivered_to.join(", ")));
    }
    let body = match &m.attachment {
        Some(a) => format!("[file {} ({} bytes)]", a.file_name, a.size),
        None => m.text.clone(),
    };
    let body = clean(&body);
    format!(
        "{} UTC {} ({}): {}",
        clock(m.sent_at),
        m.from,
        flags.join(", "),
        body
    )
}

/// A conversation's display name.
pub fn title(c: &ConversationInfo, me: &str) -> String {
    match &c.name {
        Some(name) => clean(name),
        None => c
            .members
            .iter()
            .filter(|m| *m != me)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    }
}

impl Printer {
    /// Prints a JSON value (JSON mode) or a line of text.
    pub fn record(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            emit(&value.to_string());
        } else {
            emit(&text());
        }
    }

    /// Prints a message.
    pub fn message(&self, m: &Message, now_ms: u64) {
        self.record(message_json(m), || message_line(m, now_ms));
    }

    /// Prints a conversation.
    pub fn conversation(&self, c: &ConversationInfo, me: &str) {
        let value = json!({
            "type": "conversation",
            "id": c.id,
            "name": c.name,
            "members": c.members,
            "managers": c.managers,
            "max_ttl_seconds": c.max_ttl_seconds,
            "burn_on_read_policy": c.burn_on_read,
            "active": c.active,
        });
        self.record(value, || {
            let state = if c.active {
                ""
            } else {
                " (no longer a member)"
            };
            format!(
                "{}  {}{}  members: {}  managers: {}  max ttl {}  burn on read: {}",
                c.id,
                title(c, me),
                state,
                c.members.join(", "),
                c.managers.join(", "),
                format_remaining(u64::from(c.max_ttl_seconds)),
                c.burn_on_read
            )
        });
    }

    /// Prints a device.
    pub fn device(&self, d: &DeviceEntry) {
        let value = json!({
            "type": "device",
            "device_id": d.device_id,
            "created_at": d.created_at,
            "this_device": d.this_device,
        });
        self.record(value, || {
            let mark = if d.this_device { "  (this device)" } else { "" };
            format!("{}{}", d.device_id, mark)
        });
    }

    /// Prints a notice (to stderr in text mode, so that scripts reading stdout are not
    /// disturbed).
    pub fn notice(&self, n: &Notice) {
        if self.json {
            emit(&json!({"type": "notice", "at": n.at, "text": n.text}).to_string());
        } else {
            eprintln!("warning: {}", clean(&n.text));
        }
    }

    /// Prints a confirmation.
    pub fn done(&self, what: &str, fields: Value) {
        let mut value = json!({"type": "ok", "what": what});
        if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), fields) {
            object.extend(extra);
        }
        self.record(value, || what.to_owned());
    }
}
