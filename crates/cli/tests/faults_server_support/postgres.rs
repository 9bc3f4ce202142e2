//! A private PostgreSQL cluster for the restart test, stopped and deleted by its drop guard.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::free_port;

/// A throw-away PostgreSQL cluster in a temporary directory, on its own port (never the
/// shared one): stopped and deleted when dropped.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// `None`, saying why, when it cannot be made here.
    pub fn create() -> Option<Self> {
        match std::env::var("SOTTO_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => {}
            _ => {
                eprintln!("skipped: SOTTO_TEST_POSTGRES_URL is not set, so the PostgreSQL restart test did not run");
                return None;
            }
        }
        let Some(bin) = postgres_bin() else {
            eprintln!("skipped: no PostgreSQL server programs (initdb, pg_ctl) in /usr/lib/postgresql/*/bin, so the PostgreSQL restart test did not run");
            return None;
        };
        let root = is_root();
        if root && !Path::new("/usr/sbin/runuser").exists() && which("runuser").is_none() {
            eprintln!("skipped: running as root without runuser, so initdb cannot run as postgres; the PostgreSQL restart test did not run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
        };
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory failed");
        }
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs PostgreSQL's `program` (as the user `postgres` when this is root); must succeed.
    fn pg(&self, program: &str, args: &[&str]) {
        let output = self.pg_command(program, args).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.args(args).stdin(Stdio::null());
        command
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops it: `fast` (clean) or `immediate` (as a crash; recovery replays the log).
    pub fn stop(&self, mode: &str) {
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", mode, "-w", "-t", "60", "stop"],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .pg_command(
                "pg_ctl",
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            )
            .output();
    }
}

/// The directory of PostgreSQL's server programs, the newest version first.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.exists())
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
