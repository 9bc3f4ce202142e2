//! Keyboard input: a thread reading terminal events, and what each key does.

use std::thread::JoinHandle;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use sotto_client::ClientError;

use super::app::{App, Level, Outgoing};
use super::compose::parse;
use crate::duration::format_remaining;

/// Lines moved by Page Up and Page Down.
const PAGE: usize = 10;

/// Starts a thread that forwards terminal events (or the error that ended them) until
/// the receiver is dropped.
pub fn spawn() -> (
    UnboundedReceiver<Result<Event, ClientError>>,
    JoinHandle<()>,
) {
    let (tx, rx) = unbounded_channel();
    let thread = std::thread::spawn(move || {
        // Polling with a timeout (rather than blocking in `read`) lets the thread notice
        // that the chat ended, so that it can be joined.
        while !tx.is_closed() {
            let ready = match event::poll(Duration::from_millis(100)) {
                Ok(ready) => ready,
                Err(e) => {
                    let _ = tx.send(Err(failed(e)));
                    return;
                }
            };
            if ready {
                let read = event::read().map_err(failed);
                let failed = read.is_err();
                if tx.send(read).is_err() || failed {
                    return;
                }
            }
        }
    });
    (rx, thread)
}

fn failed(e: std::io::Error) -> ClientError {
    ClientError::Invalid(format!("cannot read the terminal: {e}"))
}

/// Whether `event` asks to quit: Escape, Ctrl-C or Ctrl-D.
pub fn is_quit(event: &Event) -> bool {
    let Event::Key(key) = event else {
        return false;
    };
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    key.kind != KeyEventKind::Release
        && (key.code == KeyCode::Esc || (ctrl && matches!(key.code, KeyCode::Char('c' | 'd'))))
}

impl App {
    /// Acts on a terminal event. Only the app changes: what needs the client (sending,
    /// loading another conversation) is queued for the main loop.
    pub fn on_event(&mut self, event: Event) {
        if is_quit(&event) {
            self.quit = true;
        } else if let Event::Key(key) = event {
            if key.kind != KeyEventKind::Release {
                self.on_key(key);
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Tab | KeyCode::Down => self.select(1),
            KeyCode::Char('n') if ctrl => self.select(1),
            KeyCode::BackTab | KeyCode::Up => self.select(-1),
            KeyCode::Char('p') if ctrl => self.select(-1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(PAGE),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(PAGE),
            KeyCode::Enter => self.submit(),
            KeyCode::Backspace => self.compose.backspace(),
            KeyCode::Delete => self.compose.delete(),
            KeyCode::Left => self.compose.step(-1),
            KeyCode::Right => self.compose.step(1),
            KeyCode::Home => self.compose.jump(false),
            KeyCode::Char('a') if ctrl => self.compose.jump(false),
            KeyCode::End => self.compose.jump(true),
            KeyCode::Char('e') if ctrl => self.compose.jump(true),
            KeyCode::Char('u') if ctrl => drop(self.compose.take()),
            KeyCode::Char(c) if !ctrl && !c.is_control() => self.compose.insert(c),
            _ => {}
        }
    }

    /// Enter: applies the compose line's commands and queues its text for sending.
    fn submit(&mut self) {
        let typed = self.compose.take();
        if typed.trim().is_empty() {
            return;
        }
        let mut next = self.next;
        match parse(&typed, &mut next) {
            Err(e) => {
                self.set_status(Level::Error, e);
                self.compose.set(typed);
            }
            Ok(None) => {
                self.next = next;
                let text = format!(
                    "next message: {}",
                    describe(next.ttl_seconds, next.burn_on_read)
                );
                self.set_status(Level::Info, text);
            }
            Ok(Some(text)) => {
                let Some(target) = self.selected.clone() else {
                    self.set_status(
                        Level::Error,
                        "no conversation to send to: start one with `sotto chat <username>`",
                    );
                    self.compose.set(typed);
                    return;
                };
                let previous = std::mem::take(&mut self.next);
                self.set_status(Level::Info, "sending…");
                self.outbox.push_back(Outgoing {
                    target,
                    text,
                    options: next,
                    typed,
                    previous,
                });
            }
        }
    }
}

/// How the options of a message read: `ttl 10m, burn on read`.
pub fn describe(ttl: Option<u32>, burn: bool) -> String {
    let ttl = match ttl {
        Some(seconds) => format!("ttl {}", format_remaining(u64::from(seconds))),
        None => "default ttl".to_owned(),
    };
    if burn {
        format!("{ttl}, burn on read")
    } else {
        ttl
    }
}
