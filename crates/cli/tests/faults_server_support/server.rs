//! The server as a process of its own (see [`server_process`](crate::server_process)): started,
//! killed (SIGKILL) and restarted on a fixed address, and its health check.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Set in the environment of the server processes these tests start.
pub const CHILD: &str = "SOTTO_FAULT_SERVER_CHILD";

/// Whether the server at `addr` answers `GET /healthz` with 200 (its database answers).
pub async fn healthy(addr: SocketAddr) -> bool {
    tokio::task::spawn_blocking(move || {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer.starts_with(b"HTTP/1.1 200")
    })
    .await
    .unwrap()
}

/// Waits (at most 30 s) until the server's health check passes again.
pub async fn wait_until_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(addr).await {
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `sotto-server` process (see [`server_process`](crate::server_process)) on a fixed
/// address, which can be killed and started again; killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    data_dir: PathBuf,
    database_url: Option<String>,
    log: PathBuf,
    /// The process, and its standard input (see [`server_process`](crate::server_process)).
    child: Option<(Child, std::process::ChildStdin)>,
}

impl ServerProcess {
    /// Starts a server on a free loopback port with its data in `data_dir` (SQLite) or in
    /// `database_url`; its output goes to `log`.
    pub async fn start(data_dir: &Path, database_url: Option<String>, log: PathBuf) -> Self {
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            data_dir: data_dir.to_owned(),
            database_url,
            log,
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the process (which must not be running) and waits until it serves.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running already");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .unwrap();
            let mut command = Command::new(std::env::current_exe().unwrap());
            // Only the test `server_process` of this binary (at the crate root, so that is
            // its exact name) runs in the child.
            command
                .args(["server_process", "--exact", "--nocapture", "--quiet"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env(CHILD, "1")
                .env("SOTTO_LISTEN", self.addr.to_string())
                .env("SOTTO_DATA_DIR", &self.data_dir)
                .env("SOTTO_LOG", "warn")
                .stdin(Stdio::piped())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            if let Some(url) = &self.database_url {
                command.env("SOTTO_DATABASE_URL", url);
            }
            let mut child = command.spawn().unwrap();
            loop {
                if child.try_wait().unwrap().is_some() {
                    // It stopped before serving (the port not free yet, say): again.
                    break;
                }
                if healthy(self.addr).await {
                    let stdin = child.stdin.take().unwrap();
                    self.child = Some((child, stdin));
                    return;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the server did not start; its log:\n{}", self.log_text());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start; its log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some((mut child, _stdin)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics unless the process is still running (it did not crash).
    pub fn assert_alive(&mut self) {
        let (child, _) = self.child.as_mut().expect("the server is not running");
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the server exited ({status}); its log:\n{}",
                self.log_text()
            );
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics if the server's output shows a panic.
    pub fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("the server's log:\n{}", self.log_text());
        }
    }
}
