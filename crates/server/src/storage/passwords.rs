//! Storage for password login: OPAQUE records with sealed root-key backups, pending
//! logins, and the per-username lockout.
//!
//! Every login start is counted as a failure for its username, and a successful finish
//! forgets them all: a wrong password (the client then sends nothing), an abandoned login
//! and a forged finalization all look alike to the server, and each start lets the client
//! test one guess. [`LOCKOUT`] says how many starts are allowed and for how long a
//! username is then locked. Unknown usernames are counted the same way, so a lockout
//! reveals nothing about which usernames exist.

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::StoreError;

/// How password logins are limited per username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Login starts allowed within one window; the last of them locks the username.
    pub max_failures: u32,
    /// Length of the window, counted from its first start.
    pub window_secs: u64,
    /// Length of the first lock; each further lock doubles it.
    pub base_lock_secs: u64,
    /// The longest lock.
    pub max_lock_secs: u64,
    /// How long after its last lock has ended a username's locks are forgotten (and the
    /// doubling starts over).
    pub memory_secs: u64,
}

/// The lockout policy: 10 starts per hour, then 15 minutes locked, doubling up to a day;
/// the doubling is forgotten a day after the last lock ended.
pub const LOCKOUT: LockoutPolicy = LockoutPolicy {
    max_failures: 10,
    window_secs: 3600,
    base_lock_secs: 15 * 60,
    max_lock_secs: 24 * 3600,
    memory_secs: 24 * 3600,
};

/// The lockout state of one username, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginLimit {
    /// Starts counted in the current window.
    pub failures: u32,
    /// When the current window began.
    pub window_start: u64,
    /// Unix time until which logins are refused (0: never locked).
    pub locked_until: u64,
    /// Locks so far, for the doubling.
    pub lockouts: u32,
}

impl LockoutPolicy {
    /// Whether `limit` no longer has any effect at `now` (the sweeper deletes such rows).
    pub fn forgotten(&self, limit: &LoginLimit, now: u64) -> bool {
        now >= limit.window_start.saturating_add(self.window_secs)
            && now >= limit.locked_until.saturating_add(self.memory_secs)
    }

    /// Counts one login start at `now`: the new state, or `Err(locked_until)` (nothing
    /// counted) while the username is locked.
    pub fn attempt(&self, limit: LoginLimit, now: u64) -> Result<LoginLimit, u64> {
        if limit.locked_until > now {
            return Err(limit.locked_until);
        }
        let mut next = if self.forgotten(&limit, now) {
            LoginLimit::default()
        } else {
            limit
        };
        if next.failures == 0 || now >= next.window_start.saturating_add(self.window_secs) {
            next.failures = 0;
            next.window_start = now;
        }
        next.failures += 1;
        if next.failures >= self.max_failures {
            let doubling = 1u64.checked_shl(next.lockouts).unwrap_or(u64::MAX);
            let lock = self
                .base_lock_secs
                .saturating_mul(doubling)
                .min(self.max_lock_secs);
            next.locked_until = now.saturating_add(lock);
            next.lockouts = next.lockouts.saturating_add(1);
            next.failures = 0;
        }
        Ok(next)
    }
}

/// The answer to a login start.
pub enum LoginGate {
    /// The start was counted; the username's OPAQUE record, if it has one.
    Open(Option<Zeroizing<Vec<u8>>>),
    /// The username is locked until this Unix time; nothing was counted.
    Locked {
        /// When logins are allowed again.
        until: u64,
    },
}

impl std::fmt::Debug for LoginGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open(_) => f.write_str("Open(<redacted>)"),
            Self::Locked { until } => f.debug_struct("Locked").field("until", until).finish(),
        }
    }
}

/// A login between its start and its finish.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// SHA-256 of the login id handed to the client.
    pub id_hash: Vec<u8>,
    /// The username the login is for (which may have no account).
    pub username: String,
    /// The server's OPAQUE login state, encrypted by the server.
    pub state: Vec<u8>,
    /// Unix time from which it can no longer be finished.
    pub expires_at: u64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Password records, sealed backups, pending logins and the lockout.
#[async_trait]
pub trait Passwords: Send + Sync {
    /// Stores (or replaces) the OPAQUE record and sealed backup of an existing account,
    /// and drops its pending logins (they were started against the old record).
    async fn put_password(
        &self,
        username: &str,
        record: &[u8],
        backup: &[u8],
        now: u64,
    ) -> Result<(), StoreError>;
    /// Replaces the sealed backup alone; [`StoreError::NotFound`] if the account has no
    /// password record.
    async fn put_backup(&self, username: &str, backup: &[u8], now: u64) -> Result<(), StoreError>;
    /// Counts a login start for `username` at `now` under [`LOCKOUT`] and returns its
    /// record, or says it is locked. Atomic: concurrent starts are counted one by one.
    async fn begin_login(&self, username: &str, now: u64) -> Result<LoginGate, StoreError>;
    /// Stores a pending login until it is taken or expires.
    async fn put_login(&self, login: &PendingLogin) -> Result<(), StoreError>;
    /// Takes (deletes) an unexpired pending login by the hash of its id.
    async fn take_login(
        &self,
        id_hash: &[u8],
        now: u64,
    ) -> Result<Option<PendingLogin>, StoreError>;
    /// After a successful finish: forgets the username's failures and locks, records the
    /// event (as `actor`), and returns the sealed backup (`None` without a record).
    async fn complete_login(
        &self,
        username: &str,
        actor: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The stored lockout state of `username` (for audits and tests).
    async fn login_limit(&self, username: &str) -> Result<Option<LoginLimit>, StoreError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;

    fn run(limit: &mut LoginLimit, n: u32, now: u64) -> u32 {
        (0..n)
            .filter(|_| match LOCKOUT.attempt(*limit, now) {
                Ok(next) => {
                    *limit = next;
                    true
                }
                Err(_) => false,
            })
            .count() as u32
    }

    #[test]
    fn ten_starts_then_a_doubling_lock() {
        let mut limit = LoginLimit::default();
        assert_eq!(run(&mut limit, 15, T), 10);
        assert_eq!(limit.locked_until, T + 900);
        assert_eq!(LOCKOUT.attempt(limit, T + 899), Err(T + 900));
        assert_eq!(run(&mut limit, 15, T + 900), 10);
        assert_eq!(limit.locked_until, T + 900 + 1800);
        for _ in 0..20 {
            let now = limit.locked_until;
            run(&mut limit, 10, now);
        }
        assert_eq!(limit.locked_until - limit.window_start, 24 * 3600);
        // A day after the last lock ended, the doubling starts over.
        let later = limit.locked_until + 24 * 3600;
        assert!(LOCKOUT.forgotten(&limit, later));
        assert_eq!(run(&mut limit, 10, later), 10);
        assert_eq!(limit.locked_until, later + 900);
    }

    #[test]
    fn starts_spread_over_windows_do_not_lock() {
        let mut limit = LoginLimit::default();
        assert_eq!(run(&mut limit, 9, T), 9);
        assert_eq!(run(&mut limit, 9, T + 3600), 9);
        assert_eq!(limit.locked_until, 0);
        assert_eq!(run(&mut limit, 1, T + 3601), 1);
        assert_eq!(run(&mut limit, 1, T + 3602), 0);
    }
}
