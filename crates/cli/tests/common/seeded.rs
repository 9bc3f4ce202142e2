//! The seeded generator that places faults, repeatable with `SOTTO_FAULT_SEED`.

use std::time::Duration;

/// A small deterministic generator (xorshift), enough to place the faults.
pub struct Seeded(u64);

impl Seeded {
    /// The generator of `SOTTO_FAULT_SEED` (default 1), and the seed, which is printed.
    pub fn from_env(test: &str) -> (u64, Self) {
        let seed: u64 = std::env::var("SOTTO_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        eprintln!("{test}: fault seed {seed} (repeat with SOTTO_FAULT_SEED={seed})");
        (seed, Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1))
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A pause of `from` to `to` milliseconds.
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}
