//! Text for the terminal: untrusted text made safe to show, word wrapping, and the lines
//! of a message.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use sotto_client::Message;

use crate::duration::format_remaining;
use crate::output::clock;

pub use crate::output::clean;

/// The columns `text` takes in a terminal.
pub fn width(text: &str) -> usize {
    Span::raw(text).width()
}

fn char_width(c: char) -> usize {
    let mut buf = [0; 4];
    width(c.encode_utf8(&mut buf))
}

/// Splits `text` into lines at most `columns` wide, breaking between words where it can.
pub fn wrap(text: &str, columns: usize) -> Vec<String> {
    let columns = columns.max(1);
    let mut out = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut used = 0;
        let mut broken = false;
        for word in paragraph.split_inclusive(' ') {
            if used > 0 && used + width(word.trim_end_matches(' ')) > columns {
                out.push(line.trim_end().to_owned());
                line.clear();
                used = 0;
                broken = true;
            }
            for c in word.chars() {
                let w = char_width(c);
                if used > 0 && used + w > columns && c != ' ' {
                    out.push(line.trim_end().to_owned());
                    line.clear();
                    used = 0;
                    broken = true;
                }
                if used == 0 && broken && c == ' ' {
                    continue;
                }
                line.push(c);
                used += w;
            }
        }
        out.push(line.trim_end().to_owned());
    }
    out
}

/// The lines of `m` for a pane `columns` wide at time `now` (ms): a header with the time,
/// sender, remaining life, burn-on-read marker and receipts, then the text, indented.
pub fn message_lines(m: &Message, me: &str, now: u64, columns: usize) -> Vec<Line<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    let sep = || Span::styled("  ·  ", dim);
    let left = m.expires_at.saturating_sub(now) / 1000;
    let countdown = if left < 60 {
        Color::LightRed
    } else {
        Color::Yellow
    };
    let sender = if m.outgoing || m.from == me {
        Span::styled(
            format!("{} (you)", clean(&m.from)),
            Style::new().fg(Color::Green).bold(),
        )
    } else {
        Span::styled(clean(&m.from), Style::new().fg(Color::Cyan).bold())
    };
    let mut header = vec![
        Span::styled(clock(m.sent_at), dim),
        Span::raw("  "),
        sender,
        sep(),
        Span::styled(
            format!("{} left", format_remaining(left)),
            Style::new().fg(countdown),
        ),
    ];
    if m.burn_on_read {
        header.push(sep());
        header.push(Span::styled(
            "🔥 burn on read",
            Style::new().fg(Color::LightRed),
        ));
    }
    if m.outgoing && !m.read_by.is_empty() {
        header.push(sep());
        header.push(Span::styled(
            format!("✓✓ read by {}", clean(&m.read_by.join(", "))),
            dim,
        ));
    } else if m.outgoing && !m.delivered_to.is_empty() {
        let to = clean(&m.delivered_to.join(", "));
        header.push(sep());
        header.push(Span::styled(format!("✓ delivered to {to}"), dim));
    }
    let body = match &m.attachment {
        Some(a) => format!("📎 {} ({} bytes)", a.file_name, a.size),
        None => m.text.clone(),
    };
    let mut lines = vec![Line::from(header)];
    for text in wrap(&clean(&body), columns.saturating_sub(2)) {
        lines.push(Line::from(vec![Span::raw("  "), Span::raw(text)]));
    }
    lines
}

/// A styled span that stands out (bold).
pub fn strong(text: String, color: Color) -> Span<'static> {
    Span::styled(text, Style::new().fg(color).add_modifier(Modifier::BOLD))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_cannot_reach_the_terminal() {
        assert_eq!(
            clean("a\u{1b}[2Jb\tc\u{202e}d\ne"),
            "a\u{fffd}[2Jb c\u{fffd}d\ne"
        );
    }

    #[test]
    fn wraps_between_words_and_inside_long_ones() {
        assert_eq!(wrap("hello big world", 9), ["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\ntwo", 10), ["one", "two"]);
        assert_eq!(wrap("🔥🔥🔥", 4), ["🔥🔥", "🔥"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
