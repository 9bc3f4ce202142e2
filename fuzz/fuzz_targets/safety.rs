//! `SafetyNumber::matches` on arbitrary text: no panic, and true exactly when the text is
//! the 60 digits with whitespace anywhere.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sotto_core::safety::{self, SafetyNumber};

static NUMBER: OnceLock<SafetyNumber> = OnceLock::new();

fn key(fill: u8) -> Vec<u8> {
    let mut k = vec![fill; 133];
    k[0] = 0x04;
    k
}

fuzz_target!(|data: &[u8]| {
    let number =
        NUMBER.get_or_init(|| safety::safety_number("alice", &key(1), "bob", &key(2)).unwrap());
    let text = String::from_utf8_lossy(data);
    let expected: String = text.split_whitespace().collect();
    assert_eq!(number.matches(&text), expected == number.digits());
    // The input as whitespace inserted between the real digits.
    let mut spaced = String::new();
    for (i, c) in number.digits().chars().enumerate() {
        if data.get(i).is_some_and(|b| b % 3 == 0) {
            spaced.push(' ');
        }
        spaced.push(c);
    }
    assert!(number.matches(&spaced));
});
