//! The scrypt test vectors of RFC 7914 §12, run through `sotto_core::crypto::scrypt`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sotto_core::crypto::scrypt;

/// Derives 64 bytes with `N = 2^log_n` and compares them with the RFC's hex.
fn check(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32, expected: &str) {
    let mut out = [0u8; 64];
    scrypt(password, salt, log_n, r, p, &mut out).unwrap();
    assert_eq!(hex::encode(out), expected);
}

#[test]
fn vector_1_empty() {
    check(
        b"",
        b"",
        4, // N = 16
        1,
        1,
        "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442\
         fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906",
    );
}

#[test]
fn vector_2_password_nacl() {
    check(
        b"password",
        b"NaCl",
        10, // N = 1024
        8,
        16,
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162\
         2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
    );
}

#[test]
fn vector_3_pleaseletmein_16384() {
    check(
        b"pleaseletmein",
        b"SodiumChloride",
        14, // N = 16384
        8,
        1,
        "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2\
         d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887",
    );
}

// Uses 1 GiB of memory and about 3 s (AWS-LC is built optimised even in debug builds, see
// the workspace Cargo.toml).
#[test]
fn vector_4_pleaseletmein_1048576() {
    check(
        b"pleaseletmein",
        b"SodiumChloride",
        20, // N = 1048576: 1 GiB of memory
        8,
        1,
        "2101cb9b6a511aaeaddbbe09cf70f881ec568d574a2ffd4dabe5ee9820adaa47\
         8e56fd8f4ba5d09ffa1c6d927c40f4c337304049e8a952fbcbf45c6fa77a41a4",
    );
}
