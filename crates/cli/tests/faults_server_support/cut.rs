//! A TCP proxy in front of the server that cuts and restores the connection, and a live
//! wait through it.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::User;

/// closed, new ones closed at once) and restored. It counts open live (WebSocket)
/// connections.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: SocketAddr,
    open: AtomicBool,
    stopped: AtomicBool,
    live: AtomicUsize,
    next: AtomicU64,
    /// Both sockets of each proxied connection, to close them on a cut.
    connections: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState {
            upstream,
            open: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            next: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if shared.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if !shared.open.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || shared.relay(client));
            }
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection, and every new one at once, until [`Self::restore`].
    pub fn cut(&self) {
        self.state.open.store(false, Ordering::SeqCst);
        for (_, (a, b)) in self.state.connections.lock().unwrap().drain() {
            let _ = a.shutdown(std::net::Shutdown::Both);
            let _ = b.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.state.open.store(true, Ordering::SeqCst);
    }

    /// Open live (WebSocket) connections.
    fn live(&self) -> usize {
        self.state.live.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.state.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `stopped`.
        let _ = TcpStream::connect(self.addr);
    }
}

impl ProxyState {
    fn relay(&self, client: TcpStream) {
        let Ok(server) = TcpStream::connect(self.upstream) else {
            return;
        };
        // A live connection starts with its upgrade request.
        let mut start = [0u8; 11];
        let is_live = client
            .peek(&mut start)
            .map(|n| start[..n].starts_with(b"GET /v1/ws "))
            .unwrap_or(false);
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        {
            let mut connections = self.connections.lock().unwrap();
            if !self.open.load(Ordering::SeqCst) {
                return;
            }
            connections.insert(
                id,
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
            );
        }
        if is_live {
            self.live.fetch_add(1, Ordering::SeqCst);
        }
        let copy = |mut from: TcpStream, mut to: TcpStream| {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = from.shutdown(std::net::Shutdown::Both);
            let _ = to.shutdown(std::net::Shutdown::Both);
        };
        let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let upward = std::thread::spawn(move || copy(c, s));
        copy(server, client);
        let _ = upward.join();
        self.connections.lock().unwrap().remove(&id);
        if is_live {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Starts `sotto --json sync --wait 60` as `user` and waits until its live connection
/// is open.
pub async fn start_live(user: &User, proxy: &Proxy, what: &str, limit: Duration) -> Child {
    let mut command = user.command();
    command
        .args(["--json", "sync", "--wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut live = command.spawn().unwrap();
    let deadline = Instant::now() + limit;
    while proxy.live() != 1 && live.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = live.kill();
            let output = live.wait_with_output().unwrap();
            panic!(
                "timed out waiting until {what} ({} live connections): {}",
                proxy.live(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if live.try_wait().unwrap().is_some() {
        let output = live.wait_with_output().unwrap();
        panic!(
            "the live wait ended before {what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    live
}
