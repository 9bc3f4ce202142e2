//! The limit on open files. Every WebSocket is a file descriptor at each end — both in
//! this process when the server runs in it — and so is every HTTP connection, so a run of
//! hundreds of devices needs more than the 1,024 that many systems allow by default.

use crate::{Error, Options};

/// The soft limit `raise_open_files` aims for when the hard limit allows more.
const WANTED: u64 = 65_536;
/// Descriptors of everything but the connections: the runtimes, the SQLite files, the
/// standard streams, `/proc` while measuring CPU.
const BASE: u64 = 64;

/// Raises this process's soft limit on open files towards the hard limit (up to 65,536),
/// and returns the soft limit then in force; `None` where it cannot be read (not Unix) or
/// is unlimited.
pub fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        let target = limit.maximum.map_or(WANTED, |hard| hard.min(WANTED));
        if limit.current.is_some_and(|soft| soft < target) {
            // If the system refuses, the limit stays as it was and `check` says so.
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(target),
                    maximum: limit.maximum,
                },
            );
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The fewest open files a run of `options` needs: its WebSockets and the connections it
/// certainly opens (setup requests and closed-loop senders), at both ends when the server
/// runs in this process.
pub fn needed(options: &Options) -> u64 {
    let ends: u64 = if options.server.is_some() { 1 } else { 2 };
    let senders = if options.rate.is_some() {
        0
    } else {
        options.conversations.saturating_mul(options.in_flight)
    };
    let http = options.setup_concurrency.max(senders) as u64;
    ends.saturating_mul((options.receiving_devices() as u64).saturating_add(http))
        .saturating_add(BASE)
}

/// Raises the limit on open files and refuses a run that could not stay under it.
pub(crate) fn check(options: &Options) -> Result<(), Error> {
    let need = needed(options);
    match raise_open_files() {
        Some(limit) if limit < need => Err(Error::new(format!(
            "{} receiving devices need at least {need} open files, but this process may open \
             only {limit} (`ulimit -n`; the hard limit allows no more): raise the hard limit \
             or run fewer devices",
            options.receiving_devices()
        ))),
        _ => Ok(()),
    }
}

/// A hint to add to an error message that says the process ran out of file descriptors.
pub(crate) fn hint(text: &str) -> &'static str {
    if text.contains("os error 24") || text.contains("Too many open files") {
        " (out of file descriptors: raise `ulimit -n` or run fewer devices)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_both_ends_of_an_in_process_run() {
        let options = Options {
            conversations: 300,
            group_size: 3,
            ring: true,
            rate: Some(100.0),
            setup_concurrency: 16,
            ..Options::defaults()
        };
        assert_eq!(needed(&options), 2 * (300 + 16) + BASE);
        let external = Options {
            server: Some("http://127.0.0.1:8480".into()),
            ..options
        };
        assert_eq!(needed(&external), 300 + 16 + BASE);
    }

    #[test]
    fn the_limit_is_raised_or_left_alone() {
        // Whatever the machine allows, raising never lowers the limit.
        let before = raise_open_files();
        let after = raise_open_files();
        assert_eq!(before, after);
        assert!(!hint("Too many open files (os error 24)").is_empty());
        assert!(hint("connection refused").is_empty());
    }
}
