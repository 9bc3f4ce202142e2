//! `DeviceCertificate::from_bytes`: no panic, typed errors, canonical encoding; and any
//! alteration of a valid certificate that still decodes must fail `verify()`.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // The input as a certificate.
    if let Some(cert) = common::check_certificate(data) {
        if cert.verify().is_ok() {
            // Only a genuine certificate (e.g. a seed) gets here; it certifies its own key.
            assert!(cert.verify_for_key(cert.device_key()).is_ok());
        }
    }

    // The first 32 input bytes as up to 8 edits of a valid certificate.
    let template = TEMPLATE.get_or_init(common::certificate);
    let bytes = common::mutate(template, &data[..data.len().min(32)]);
    if let Some(cert) = common::check_certificate(&bytes) {
        let verified = cert.verify();
        if bytes == *template {
            assert!(verified.is_ok());
        } else {
            assert!(
                verified.is_err(),
                "altered certificate verifies: {}",
                common::hex(&bytes)
            );
        }
    }
});
