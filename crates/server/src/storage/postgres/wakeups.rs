//! Wake-ups between server processes through PostgreSQL's `LISTEN`/`NOTIFY`.
//!
//! After a message is stored, the accepting process announces its recipient devices on
//! the [`CHANNEL`] channel (one notification per device, `user/devicehex`); every process
//! listens on a dedicated connection and wakes its own live connections of those
//! devices. Wake-ups only prompt a read of the store, so a spurious one costs a query and
//! a lost one only a delay: when the listening connection fails, every live connection is
//! woken (the store has what was missed) and the listener reconnects.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::PostgresStore;
use crate::storage::{DeviceRef, StoreError, Wakeup, Wakeups};

/// The notification channel.
pub const CHANNEL: &str = "sotto_wake";
/// Wake-ups queued for the hub before the listener waits.
const QUEUE: usize = 1024;
/// Pause before the listener reconnects after a failure.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

fn payload(device: &DeviceRef) -> String {
    format!(
        "{}/{}",
        device.username,
        crate::hex::encode(&device.device_id)
    )
}

fn parse(payload: &str) -> Option<DeviceRef> {
    let (username, device) = payload.rsplit_once('/')?;
    let device_id = crate::hex::decode(device, 16, "device id").ok()?;
    Some(DeviceRef {
        username: username.to_owned(),
        device_id,
    })
}

#[async_trait]
impl Wakeups for PostgresStore {
    async fn announce(&self, devices: &[DeviceRef]) -> Result<(), StoreError> {
        if devices.is_empty() {
            return Ok(());
        }
        let payloads: Vec<String> = devices.iter().map(payload).collect();
        self.client()
            .await?
            .execute(
                "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS t (p)",
                &[&CHANNEL, &payloads],
            )
            .await?;
        Ok(())
    }

    async fn wakeups(&self) -> Option<mpsc::Receiver<Wakeup>> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let config = self.config.clone();
        // Listening before the server starts serving: nothing announced after that is
        // missed while the connection holds.
        let mut listener = Listener::connect(&config).await;
        tokio::spawn(async move {
            loop {
                if let Some(l) = listener {
                    l.forward(&tx).await;
                }
                // Anything announced while not listening may have been missed.
                if tx.send(Wakeup::All).await.is_err() {
                    return;
                }
                tokio::time::sleep(RECONNECT_AFTER).await;
                listener = Listener::connect(&config).await;
            }
        });
        Some(rx)
    }
}

/// A dedicated connection that has run `LISTEN`.
struct Listener {
    /// Keeps the session (and its `LISTEN`) open.
    _client: tokio_postgres::Client,
    messages: mpsc::UnboundedReceiver<AsyncMessage>,
    driver: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn connect(config: &tokio_postgres::Config) -> Option<Self> {
        let Ok((client, mut connection)) = config.connect(NoTls).await else {
            tracing::warn!("cannot open the wake-up listener connection; retrying");
            return None;
        };
        let (messages_tx, messages) = mpsc::unbounded_channel();
        // The connection must be polled for the LISTEN below to complete; its messages
        // are forwarded as they come.
        let driver = tokio::spawn(async move {
            let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = stream.next().await {
                if messages_tx.send(message).is_err() {
                    return;
                }
            }
        });
        if client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .is_err()
        {
            driver.abort();
            return None;
        }
        Some(Self {
            _client: client,
            messages,
            driver,
        })
    }

    /// Forwards wake-ups until the connection fails or the hub goes away.
    async fn forward(mut self, tx: &mpsc::Sender<Wakeup>) {
        while let Some(message) = self.messages.recv().await {
            if let AsyncMessage::Notification(n) = message {
                if let Some(device) = parse(n.payload()) {
                    if tx.send(Wakeup::Device(device)).await.is_err() {
                        break;
                    }
                }
            }
        }
        self.driver.abort();
        tracing::warn!("the wake-up listener connection ended; reconnecting");
    }
}
