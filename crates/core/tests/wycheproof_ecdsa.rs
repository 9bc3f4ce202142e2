//! Wycheproof ECDSA secp521r1 / SHA-512 (DER signatures) through `crypto::verify_p521`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sotto_core::crypto::{verify_p521, P521_PUBLIC_KEY_LEN};
use wycheproof::ecdsa::{TestName, TestSet};
use wycheproof::TestResult;

#[test]
fn secp521r1_sha512_der() {
    let set = TestSet::load(TestName::EcdsaSecp521r1Sha512).unwrap();
    let (mut run, mut acceptable) = (0usize, Vec::new());
    for group in &set.test_groups {
        let key: &[u8] = &group.key.key;
        assert_eq!(
            key.len(),
            P521_PUBLIC_KEY_LEN,
            "vectors give uncompressed SEC1 keys"
        );
        for test in &group.tests {
            let verified = verify_p521(key, &test.msg, &test.sig).is_ok();
            match test.result {
                TestResult::Valid => assert!(verified, "valid tcId {} rejected", test.tc_id),
                TestResult::Invalid => assert!(!verified, "invalid tcId {} accepted", test.tc_id),
                TestResult::Acceptable => acceptable.push((test.tc_id, verified)),
            }
            run += 1;
        }
    }
    // "Acceptable" cases may go either way; they are only reported.
    println!("{run} tests run; acceptable (tcId, verified): {acceptable:?}");
    assert_eq!(run, set.number_of_tests);
    assert!(run > 0);
}
