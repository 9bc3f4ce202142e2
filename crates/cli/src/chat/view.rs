//! Drawing the chat: the conversation list on the left, the selected conversation's
//! messages on the right, the compose line and the status line at the bottom.

use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, HighlightSpacing, List, ListItem, ListState, Padding, Paragraph};
use ratatui::Frame;

use super::app::{App, Level, LinkState};
use super::keys::describe;
use super::lines::{clean, message_lines, strong, width, wrap};
use crate::duration::format_remaining;

/// How long a confirmation stays on the status line.
const INFO_FOR: Duration = Duration::from_secs(5);
/// What the status line shows when there is nothing to report.
const HELP: &str =
    "Tab/↑↓ switch  ·  Enter send  ·  /ttl 10m  ·  /burn  ·  PgUp/PgDn scroll  ·  Esc quit";

/// Draws the whole screen; `now` is the time in ms (for the countdowns).
pub fn draw(frame: &mut Frame<'_>, app: &mut App, now: u64) {
    let area = frame.area();
    let status = status_text(app, area.width);
    let status_height = u16::try_from(status.lines.len()).unwrap_or(1);
    let [main, compose, bottom] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(status_height),
    ])
    .areas(area);
    let list_width = (area.width / 4).clamp(18, 34);
    let [list, messages] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Min(10)]).areas(main);
    draw_list(frame, app, list);
    draw_messages(frame, app, messages, now);
    draw_compose(frame, app, compose);
    frame.render_widget(Paragraph::new(status), bottom);
}

fn draw_list(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let entries = app.entries();
    let selected = entries
        .iter()
        .position(|e| Some(&e.key) == app.selected.as_ref());
    let items: Vec<ListItem<'_>> = entries
        .iter()
        .map(|e| {
            let mut spans = vec![Span::raw(clean(&e.title))];
            if e.pending {
                spans.push(Span::styled(
                    " (new)",
                    Style::new().fg(Color::DarkGray).italic(),
                ));
            } else if !e.active {
                spans.push(Span::styled(" (left)", Style::new().fg(Color::DarkGray)));
            }
            if e.unread > 0 {
                spans.push(strong(format!(" ({})", e.unread), Color::Yellow));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let link = match &app.link {
        Some(LinkState::Live) => Span::styled(" ● live ", Style::new().fg(Color::Green)),
        Some(LinkState::Down) => Span::styled(" ○ offline ", Style::new().fg(Color::LightRed)),
        None | Some(LinkState::Connecting) => {
            Span::styled(" ◌ connecting ", Style::new().fg(Color::Yellow))
        }
    };
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::raw(" Sotto · "),
            Span::raw(clean(&app.me)).bold(),
            Span::raw(" "),
        ]))
        .title_bottom(link);
    let list = if items.is_empty() {
        let hint = Text::from("No conversations yet.\nStart one with\n`sotto chat <user>`.");
        frame.render_widget(Paragraph::new(hint.dark_gray()).block(block), area);
        return;
    } else {
        List::new(items)
            .block(block)
            .highlight_symbol("▶ ")
            .highlight_spacing(HighlightSpacing::Always)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
    };
    let mut state = ListState::default().with_selected(selected);
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_messages(frame: &mut Frame<'_>, app: &mut App, area: Rect, now: u64) {
    let entry = app
        .entries()
        .into_iter()
        .find(|e| Some(&e.key) == app.selected.as_ref());
    let mut block = Block::bordered().padding(Padding::horizontal(1));
    if let Some(e) = &entry {
        block = block.title(Line::from(vec![
            Span::raw(" "),
            Span::raw(clean(&e.title)).bold(),
            Span::raw(" "),
        ]));
    }
    if let Some(c) = app.conversation() {
        let mut policy = format!(
            " max life {}",
            format_remaining(u64::from(c.max_ttl_seconds))
        );
        if c.burn_on_read != "allowed" {
            policy.push_str(&format!(" · burn on read {}", c.burn_on_read));
        }
        if c.name.is_some() {
            policy = format!(" {} members ·{policy}", c.members.len());
        }
        block = block.title(Line::from(format!("{policy} ")).right_aligned().dark_gray());
    }
    let inner = block.inner(area);
    let columns = usize::from(inner.width);
    let mut lines: Vec<Line<'static>> = Vec::new();
    if app.showing_selected() {
        for m in app.messages.iter().filter(|m| m.expires_at > now) {
            if !lines.is_empty() {
                lines.push(Line::default());
            }
            lines.extend(message_lines(m, &app.me, now, columns));
        }
    }
    if lines.is_empty() {
        let hint = match &entry {
            _ if !app.showing_selected() => "Loading…".to_owned(),
            Some(e) if e.pending => format!(
                "No conversation with {} yet: your first message starts one.",
                clean(&e.title)
            ),
            Some(_) => "No messages. Type below and press Enter to send one.".to_owned(),
            None => String::new(),
        };
        lines = wrap(&hint, columns)
            .into_iter()
            .map(|l| Line::from(l).dark_gray())
            .collect();
    }
    let height = usize::from(inner.height);
    let back = app.scroll.min(lines.len().saturating_sub(height));
    app.scroll = back;
    if back > 0 {
        block = block.title_bottom(
            Line::from(format!(" ↓ {back} lines newer: PgDn "))
                .right_aligned()
                .yellow(),
        );
    }
    let top = lines.len().saturating_sub(height).saturating_sub(back);
    let top = u16::try_from(top).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(lines).block(block).scroll((top, 0)), area);
}

fn draw_compose(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let to = app
        .entries()
        .into_iter()
        .find(|e| Some(&e.key) == app.selected.as_ref())
        .map(|e| format!(" Message to {} ", clean(&e.title)))
        .unwrap_or_else(|| " Message ".to_owned());
    let next = if app.next.ttl_seconds.is_some() || app.next.burn_on_read {
        let text = format!(
            " next: {} ",
            describe(app.next.ttl_seconds, app.next.burn_on_read)
        );
        Line::from(text).right_aligned().yellow()
    } else {
        Line::from(" /ttl <time> · /burn ")
            .right_aligned()
            .dark_gray()
    };
    let block = Block::bordered()
        .padding(Padding::horizontal(1))
        .title(to)
        .title(next);
    let inner = block.inner(area);
    let cursor = width(app.compose.before_cursor());
    let offset = cursor.saturating_sub(usize::from(inner.width).saturating_sub(1));
    let offset_cols = u16::try_from(offset).unwrap_or(u16::MAX);
    let text = Paragraph::new(app.compose.text().to_owned())
        .block(block)
        .scroll((0, offset_cols));
    frame.render_widget(text, area);
    let x = u16::try_from(cursor - offset).unwrap_or(0);
    frame.set_cursor_position((inner.x.saturating_add(x), inner.y));
}

fn status_text(app: &App, columns: u16) -> Text<'static> {
    let shown = app
        .status
        .as_ref()
        .filter(|s| s.level != Level::Info || s.at.elapsed() < INFO_FOR);
    let Some(status) = shown else {
        let help = wrap(HELP, usize::from(columns)).into_iter().take(2);
        return Text::from(help.map(|l| Line::from(l).dark_gray()).collect::<Vec<_>>());
    };
    let (mark, style) = match status.level {
        Level::Info => ("", Style::new().fg(Color::Green)),
        Level::Warning => ("⚠ ", Style::new().fg(Color::Yellow).bold()),
        Level::Error => ("✗ ", Style::new().fg(Color::LightRed).bold()),
    };
    let lines = wrap(
        &format!("{mark}{}", clean(&status.text)),
        usize::from(columns),
    );
    let mut text: Vec<Line<'static>> = lines
        .into_iter()
        .take(3)
        .map(|l| Line::styled(l, style))
        .collect();
    if text.is_empty() {
        text.push(Line::default());
    }
    Text::from(text)
}
