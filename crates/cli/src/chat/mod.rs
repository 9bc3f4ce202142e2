//! `sotto chat`: the interactive terminal chat.
//!
//! The loop alternates between two phases. While the client is busy (waiting up to
//! [`link::WAIT`] for live messages, or syncing, or connecting), key presses only change the
//! screen state ([`App`]): typing, moving the selection, queueing a message. The client's
//! work is never cancelled half-way (a message taken off the WebSocket but not yet stored
//! would be lost until the next sync), except to quit. Once the client is free, the loop
//! sends what was queued, reloads from the store what changed, and redraws.

mod app;
mod compose;
mod keys;
mod lines;
mod link;
mod refresh;
mod stop;
mod view;

use std::future::Future;
use std::pin::pin;
use std::time::Instant;

use ratatui::crossterm::event::Event;
use ratatui::DefaultTerminal;
use sotto_client::{Client, ClientError};

use app::{App, LinkState};
use link::{handle, turn, Link};
use refresh::chores;

/// Runs the chat until the user quits. The terminal is restored however it ends.
pub async fn run(client: &mut Client, target: Option<&str>) -> Result<(), ClientError> {
    let mut app = App::new(client, target)?;
    let mut terminal = ratatui::try_init().map_err(|e| {
        ratatui::restore();
        terminal_error(e)
    })?;
    let (mut events, input) = keys::spawn();
    let result = event_loop(client, &mut terminal, &mut app, &mut events).await;
    ratatui::restore();
    drop(events);
    let _ = input.join();
    result
}

type Events = tokio::sync::mpsc::UnboundedReceiver<Result<Event, ClientError>>;

async fn event_loop(
    client: &mut Client,
    terminal: &mut DefaultTerminal,
    app: &mut App,
    events: &mut Events,
) -> Result<(), ClientError> {
    let mut link = Link::start();
    app.link = Some(LinkState::Connecting);
    let mut stop = stop::Stop::new();
    let mut refreshed: Option<Instant> = None;
    draw(terminal, app, client.now())?;
    loop {
        // Sending and reloading may wait on the network: only a request to quit
        // interrupts them; other key presses are applied afterwards.
        let mut held = Vec::new();
        let chores = chores(client, app, &mut refreshed);
        if unless_quit(chores, events, &mut stop, &mut held)
            .await?
            .is_none()
        {
            return Ok(());
        }
        for event in held {
            app.on_event(event);
        }
        let offset = client.now().saturating_sub(sotto_client::client::now_ms());
        let now = || sotto_client::client::now_ms().saturating_add(offset);
        draw(terminal, app, now())?;
        if app.quit {
            return Ok(());
        }
        let work = {
            let mut turn = pin!(turn(client, &mut link));
            loop {
                tokio::select! {
                    work = &mut turn => break Some(work),
                    () = stop.requested() => break None,
                    event = events.recv() => app.on_event(input(event)?),
                }
                if app.quit {
                    break None;
                }
                draw(terminal, app, now())?;
            }
        };
        let Some(work) = work else {
            return Ok(());
        };
        handle(work, &mut link, app);
    }
}

/// Runs `work` to its end (`Some`), unless the user quits first (`None`); other terminal
/// events that come meanwhile are kept in `held`.
async fn unless_quit<T>(
    work: impl Future<Output = T>,
    events: &mut Events,
    stop: &mut stop::Stop,
    held: &mut Vec<Event>,
) -> Result<Option<T>, ClientError> {
    let mut work = pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Ok(Some(done)),
            () = stop.requested() => return Ok(None),
            event = events.recv() => match input(event)? {
                event if keys::is_quit(&event) => return Ok(None),
                event => held.push(event),
            },
        }
    }
}

fn draw(terminal: &mut DefaultTerminal, app: &mut App, now: u64) -> Result<(), ClientError> {
    terminal
        .draw(|frame| view::draw(frame, app, now))
        .map(drop)
        .map_err(terminal_error)
}

/// A terminal event, or why there are no more.
fn input(event: Option<Result<Event, ClientError>>) -> Result<Event, ClientError> {
    event.unwrap_or_else(|| Err(ClientError::Invalid("the terminal input ended".into())))
}

fn terminal_error(e: std::io::Error) -> ClientError {
    ClientError::Invalid(format!("the terminal failed: {e}"))
}
