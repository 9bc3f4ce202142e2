//! Bringing the chat's state up to date once the client is free: deleting what expired,
//! sending what was queued, and reading the store again (the conversation list, the unread
//! counts, the selected conversation's messages, marked read as they are shown, and the
//! new notices).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sotto_client::{Client, ClientError, Message};

use super::app::{App, Level, Outgoing};

/// How often the store is read again even when nothing arrived (receipts, expiry).
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How often the client's upkeep runs (a sync does it; live delivery does not).
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

/// Deletes what expired, sends what was queued, and reloads from the store if needed.
pub async fn chores(client: &mut Client, app: &mut App, refreshed: &mut Option<Instant>) {
    match client.purge_expired() {
        Ok(0) => {}
        Ok(_) => app.stale = true,
        Err(e) => app.set_status(Level::Error, e.to_string()),
    }
    while let Some(outgoing) = app.outbox.pop_front() {
        send(client, app, outgoing).await;
    }
    if app.maintained.is_none_or(|t| t.elapsed() >= MAINTAIN_EVERY) {
        app.maintained = Some(Instant::now());
        let report = client.maintain().await;
        if !report.notices.is_empty() {
            app.stale = true;
        }
    }
    if app.stale || refreshed.is_none_or(|t| t.elapsed() >= REFRESH_EVERY) {
        if let Err(e) = app.refresh(client).await {
            app.set_status(Level::Error, e.to_string());
        }
        *refreshed = Some(Instant::now());
    }
}

/// Sends a queued message; on failure its text goes back to the compose line.
async fn send(client: &mut Client, app: &mut App, outgoing: Outgoing) {
    match client
        .send_text(&outgoing.target, &outgoing.text, outgoing.options)
        .await
    {
        Ok(_) => {
            app.status = None;
            app.scroll = 0;
        }
        Err(e) => {
            app.set_status(Level::Error, format!("not sent: {e}"));
            if app.compose.text().is_empty() {
                app.compose.set(outgoing.typed.clone());
                app.next = outgoing.previous;
            }
        }
    }
    app.stale = true;
}

impl App {
    /// Reloads the conversation list, the unread counts and the selected conversation,
    /// marking what it shows as read, and picks up new notices.
    pub async fn refresh(&mut self, client: &mut Client) -> Result<(), ClientError> {
        self.stale = false;
        self.conversations = client.conversations()?;
        if let Some(user) = self.pending.clone() {
            if let Some(id) = client.resolve(&user)? {
                if self.selected.as_deref() == Some(user.as_str()) {
                    self.selected = Some(id);
                }
                self.pending = None;
            }
        }
        let entries = self.entries();
        if !entries
            .iter()
            .any(|e| Some(&e.key) == self.selected.as_ref())
        {
            self.selected = entries.first().map(|e| e.key.clone());
        }
        let mut unread = HashMap::new();
        for c in self.conversations.iter().filter(|c| c.active) {
            if Some(&c.id) != self.selected.as_ref() {
                let list = client.messages(&c.id)?;
                unread.insert(c.id.clone(), list.iter().filter(|m| is_unread(m)).count());
            }
        }
        self.unread = unread;
        let mut notices = client.take_new_notices()?;
        let since = self.notices_since;
        notices.extend(client.notices()?.into_iter().filter(|n| n.at >= since));
        self.notices(notices);
        self.show(client).await
    }

    /// Loads the selected conversation's messages and marks them read.
    async fn show(&mut self, client: &mut Client) -> Result<(), ClientError> {
        if self.shown != self.selected {
            self.shown.clone_from(&self.selected);
            self.burned.clear();
            self.scroll = 0;
        }
        let Some(id) = self.conversation().map(|c| c.id.clone()) else {
            self.messages.clear();
            return Ok(());
        };
        let now = client.now();
        let mut list = client.messages(&id)?;
        let unread = list.iter().any(is_unread);
        // Keep the burn-on-read messages about to be deleted by `mark_read` (even if it
        // then fails half-way), to go on showing them while this conversation is open.
        for m in list.iter().filter(|m| is_unread(m) && m.burn_on_read) {
            if !self.burned.iter().any(|b| b.id == m.id) {
                self.burned.push(m.clone());
            }
        }
        self.burned.retain(|b| b.expires_at > now);
        for b in &self.burned {
            if !list.iter().any(|m| m.id == b.id) {
                list.push(b.clone());
            }
        }
        list.sort_by(|a, b| (a.sent_at, &a.id).cmp(&(b.sent_at, &b.id)));
        self.messages = list;
        if unread {
            client.mark_read(&id).await?;
        }
        Ok(())
    }
}

/// Whether `m` came from someone else and was not read yet.
fn is_unread(m: &Message) -> bool {
    !m.outgoing && !m.read
}
