//! Where the CPU went during the measured window (Linux `/proc`; elsewhere nothing).
//!
//! This process's threads are grouped by name — the in-process server's runtime threads
//! are named `sotto-server`, the generator's `sotto-load` — and every other process by its
//! command name (a PostgreSQL server shows up as `postgres`, other people's builds as
//! `rustc` or `cc1plus`). Threads or processes that ended within the window are missed.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU times at one moment, in clock ticks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// This process's threads, by thread name.
    threads: HashMap<String, u64>,
    /// Other processes, by pid: `(command, ticks)`.
    processes: HashMap<u32, (String, u64)>,
    /// The whole machine: `(busy, all)` ticks.
    machine: Option<(u64, u64)>,
}

/// CPU use over the window, in cores (CPU seconds per second).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuUse {
    /// This process's threads by name, busiest first.
    pub threads: Vec<(String, f64)>,
    /// Other processes by command name, busiest first (the top few).
    pub others: Vec<(String, f64)>,
    /// The whole machine, in cores.
    pub machine: Option<f64>,
    /// Cores of the machine.
    pub cores: usize,
}

/// `(command, utime + stime)` of a `/proc/.../stat` line.
fn parse_stat(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let mut fields = text.get(close + 2..)?.split_whitespace();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

fn machine() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let all: u64 = values.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((all.saturating_sub(idle), all))
}

impl Snapshot {
    /// Reads the current times (empty where `/proc` is unavailable).
    pub fn take() -> Self {
        let mut threads = HashMap::new();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                if let Some((name, ticks)) = parse_stat(&stat) {
                    *threads.entry(name).or_insert(0) += ticks;
                }
            }
        }
        let me = std::process::id();
        let mut processes = HashMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                if pid == me {
                    continue;
                }
                let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                if let Some(parsed) = parse_stat(&stat) {
                    processes.insert(pid, parsed);
                }
            }
        }
        Self {
            threads,
            processes,
            machine: machine(),
        }
    }

    /// The CPU use between `before` and this snapshot, `elapsed` apart; `None` if nothing
    /// could be read.
    pub fn since(&self, before: &Snapshot, elapsed: Duration) -> Option<CpuUse> {
        let secs = elapsed.as_secs_f64();
        if self.threads.is_empty() || secs <= 0.0 {
            return None;
        }
        let cores_of = |ticks: u64| ticks as f64 / TICKS_PER_SEC / secs;
        let mut threads: Vec<(String, f64)> = self
            .threads
            .iter()
            .map(|(name, ticks)| {
                let was = before.threads.get(name).copied().unwrap_or(0);
                (name.clone(), cores_of(ticks.saturating_sub(was)))
            })
            .filter(|(_, cores)| *cores >= 0.005)
            .collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut by_name: HashMap<String, u64> = HashMap::new();
        for (pid, (name, ticks)) in &self.processes {
            let was = before.processes.get(pid).map_or(0, |(_, t)| *t);
            *by_name.entry(name.clone()).or_insert(0) += ticks.saturating_sub(was);
        }
        let mut others: Vec<(String, f64)> = by_name
            .into_iter()
            .map(|(name, ticks)| (name, cores_of(ticks)))
            .filter(|(_, cores)| *cores >= 0.01)
            .collect();
        others.sort_by(|a, b| b.1.total_cmp(&a.1));
        others.truncate(5);
        let machine = match (self.machine, before.machine) {
            (Some((busy, all)), Some((busy0, all0))) if all > all0 => {
                let share = busy.saturating_sub(busy0) as f64 / (all - all0) as f64;
                Some(share * crate::target::cores() as f64)
            }
            _ => None,
        };
        Some(CpuUse {
            threads,
            others,
            machine,
            cores: crate::target::cores(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_a_stat_line_with_spaces_in_the_name() {
        let line = "42 (tokio runtime) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(parse_stat(line), Some(("tokio runtime".into(), 281)));
    }
}
