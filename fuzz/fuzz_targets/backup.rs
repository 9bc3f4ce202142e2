//! `SealedBackup::from_bytes`: no panic, typed errors, canonical encoding; and any
//! alteration of a valid sealed backup that still parses must fail to open.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sotto_core::backup::BackupError;

static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // The input as a sealed backup. It is not opened: hostile parameters may legitimately
    // cost up to 1 GiB of scrypt memory.
    common::check_backup(data);

    // The first 24 input bytes as up to 6 edits of a valid backup (cheap scrypt parameters).
    let template = TEMPLATE.get_or_init(common::sealed_backup);
    let bytes = common::mutate(template, &data[..data.len().min(24)]);
    if let Some(sealed) = common::check_backup(&bytes) {
        let p = sealed.params();
        if (p.log_n(), p.r(), p.p()) != (10, 1, 1) {
            return; // a parameter edit that stays in range: would cost real scrypt time
        }
        let opened = sealed.open(common::BACKUP_PASSWORD, common::BACKUP_CONTEXT);
        if bytes == *template {
            assert!(opened.is_ok());
        } else {
            assert!(
                matches!(opened, Err(BackupError::WrongPasswordOrCorrupt)),
                "altered backup opened: {}",
                common::hex(&bytes)
            );
        }
    }
});
