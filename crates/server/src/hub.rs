//! The notification hub: wakes a device's live connections when its mailbox grows, and
//! tells them when the server shuts down.
//!
//! The hub carries no messages. Ordering and completeness come from the store: a woken
//! connection reads the mailbox from the last cursor it sent. Each connected device has
//! one entry, a `watch` channel whose version [`Hub::notify`] bumps; the entry is removed
//! when the device's last connection ends, so the hub holds nothing for devices that are
//! not connected, and at most [`MAX_CONNECTIONS_PER_DEVICE`] connections per device.
//!
//! A wake-up cannot be lost: receiving it marks the version seen *before* the connection
//! reads the store, so an append the read missed bumps the version again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::DeviceRef;

/// Most simultaneous live connections of one device.
pub const MAX_CONNECTIONS_PER_DEVICE: usize = 4;
/// How long shutdown waits for live connections to say goodbye.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Wakes live connections; cheap to clone (all clones are the same hub).
#[derive(Clone)]
pub struct Hub(Arc<Inner>);

struct Inner {
    devices: Mutex<HashMap<DeviceRef, Entry>>,
    /// Set once, when the server begins to shut down.
    closing: watch::Sender<bool>,
    /// Open connections, over all devices.
    connections: watch::Sender<usize>,
}

struct Entry {
    wake: watch::Sender<()>,
    connections: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &*self.0.connections.borrow())
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The device has [`MAX_CONNECTIONS_PER_DEVICE`] open already.
    TooMany,
    /// The server is shutting down.
    ShuttingDown,
}

/// What woke a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The device's mailbox may have grown, or its session may have ended.
    Wake,
    /// The server is shutting down: close.
    Closing,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            devices: Mutex::new(HashMap::new()),
            closing: watch::channel(false).0,
            connections: watch::channel(0).0,
        }))
    }

    fn devices(&self) -> MutexGuard<'_, HashMap<DeviceRef, Entry>> {
        // Nothing panics while holding the lock; if it ever did, the map is still valid.
        self.0
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a live connection of `device`; it is counted until the [`Subscription`] is
    /// dropped.
    pub fn subscribe(&self, device: &DeviceRef) -> Result<Subscription, Refused> {
        if *self.0.closing.borrow() {
            return Err(Refused::ShuttingDown);
        }
        let mut devices = self.devices();
        let entry = devices.entry(device.clone()).or_insert_with(|| Entry {
            wake: watch::channel(()).0,
            connections: 0,
        });
        if entry.connections >= MAX_CONNECTIONS_PER_DEVICE {
            return Err(Refused::TooMany);
        }
        entry.connections += 1;
        let wake = entry.wake.subscribe();
        drop(devices);
        self.0.connections.send_modify(|n| *n += 1);
        Ok(Subscription {
            hub: self.clone(),
            device: device.clone(),
            wake,
            closing: self.0.closing.subscribe(),
        })
    }

    /// Wakes every live connection of `device` (nothing if it has none).
    pub fn notify(&self, device: &DeviceRef) {
        if let Some(entry) = self.devices().get(device) {
            entry.wake.send_replace(());
        }
    }

    /// Wakes every live connection (after wake-ups from other processes may have been
    /// missed).
    pub fn notify_all(&self) {
        for entry in self.devices().values() {
            entry.wake.send_replace(());
        }
    }

    /// How many devices have live connections.
    pub fn devices_connected(&self) -> usize {
        self.devices().len()
    }

    /// Tells every live connection to close, and refuses new ones.
    pub fn close(&self) {
        self.0.closing.send_replace(true);
    }

    /// Waits until no live connection is left, or `grace` has passed.
    pub async fn closed(&self, grace: Duration) {
        let mut connections = self.0.connections.subscribe();
        let _ = tokio::time::timeout(grace, connections.wait_for(|n| *n == 0)).await;
    }

    /// `shutdown`, then closing the live connections and waiting up to [`CLOSE_GRACE`] for
    /// them. Upgraded connections are not ones a graceful HTTP shutdown waits for, so the
    /// server's shutdown signal goes through this.
    pub fn close_after(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let hub = self.clone();
        async move {
            shutdown.await;
            hub.close();
            hub.closed(CLOSE_GRACE).await;
        }
    }
}

/// One live connection's registration with the hub; dropping it unregisters.
#[derive(Debug)]
pub struct Subscription {
    hub: Hub,
    device: DeviceRef,
    wake: watch::Receiver<()>,
    closing: watch::Receiver<bool>,
}

impl Subscription {
    /// Waits for the next wake-up or for shutdown. Cancel-safe: a wake-up that arrives
    /// while nobody waits is kept until the next call.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            biased;
            _ = self.closing.wait_for(|c| *c) => Signal::Closing,
            changed = self.wake.changed() => match changed {
                Ok(()) => Signal::Wake,
                // The entry outlives its subscriptions; this is unreachable in practice.
                Err(_) => Signal::Closing,
            },
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut devices = self.hub.devices();
        if let Some(entry) = devices.get_mut(&self.device) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                devices.remove(&self.device);
            }
        }
        drop(devices);
        self.hub
            .0
            .connections
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn device(n: u8) -> DeviceRef {
        DeviceRef {
            username: "alice".into(),
            device_id: vec![n; 16],
        }
    }

    async fn woken(s: &mut Subscription) -> bool {
        tokio::time::timeout(Duration::from_millis(50), s.next())
            .await
            .is_ok_and(|signal| signal == Signal::Wake)
    }

    #[tokio::test]
    async fn wakes_only_the_devices_connections_and_keeps_a_wake_for_later() {
        let hub = Hub::new();
        let (mut a1, mut a2, mut b) = (
            hub.subscribe(&device(1)).unwrap(),
            hub.subscribe(&device(1)).unwrap(),
            hub.subscribe(&device(2)).unwrap(),
        );
        // Notified before anyone waits: the wake is kept, once.
        hub.notify(&device(1));
        hub.notify(&device(1));
        assert!(woken(&mut a1).await);
        assert!(woken(&mut a2).await);
        assert!(!woken(&mut a1).await);
        assert!(!woken(&mut b).await);
        hub.notify(&device(3)); // not connected: nothing to do, nothing stored
        assert_eq!(hub.devices_connected(), 2);
    }

    #[tokio::test]
    async fn entries_go_with_the_last_connection_and_connections_are_capped() {
        let hub = Hub::new();
        let subs: Vec<_> = (0..MAX_CONNECTIONS_PER_DEVICE)
            .map(|_| hub.subscribe(&device(1)).unwrap())
            .collect();
        assert_eq!(hub.subscribe(&device(1)).unwrap_err(), Refused::TooMany);
        assert_eq!(hub.devices_connected(), 1);
        drop(subs);
        assert_eq!(hub.devices_connected(), 0);
        hub.closed(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn closing_reaches_every_connection_and_refuses_new_ones() {
        let hub = Hub::new();
        let mut s = hub.subscribe(&device(1)).unwrap();
        hub.notify(&device(1));
        hub.close();
        assert_eq!(s.next().await, Signal::Closing);
        assert_eq!(
            hub.subscribe(&device(2)).unwrap_err(),
            Refused::ShuttingDown
        );
        let waiting = tokio::spawn({
            let hub = hub.clone();
            async move { hub.closed(Duration::from_secs(30)).await }
        });
        drop(s);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
    }
}
