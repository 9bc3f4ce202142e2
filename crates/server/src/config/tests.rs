//! Tests of the configuration: sources, priority, validation and redaction.
// Tests fail loudly: unwrap and panic are how a test reports a broken expectation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use clap::Parser;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A TOML file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sotto-config-test-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn flags(args: &[&str]) -> Flags {
    Flags::try_parse_from(std::iter::once("sotto-server").chain(args.iter().copied())).unwrap()
}

const NO_ENV: [(&str, &str); 0] = [];

fn error(flags: &Flags, env: &[(&str, &str)]) -> String {
    match load(flags, env.iter().copied()) {
        Ok(settings) => panic!("loaded {settings:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_serve_sqlite_on_loopback() {
    let settings = load(&flags(&[]), NO_ENV).unwrap();
    let server = &settings.server;
    assert_eq!(server.listen, "127.0.0.1:8480".parse().unwrap());
    assert_eq!(server.data_dir, PathBuf::from("sotto-data"));
    assert_eq!(server.database_url, None);
    assert_eq!(server.retention_secs, 30 * 24 * 3600);
    assert_eq!(server.retention_secs, crate::DEFAULT_RETENTION_SECS);
    assert_eq!(server.tls, None);
    assert!(!server.privacy_profile);
    assert_eq!(settings.log, "info");
    assert_eq!(settings.config_file, None);
}

#[test]
fn file_then_environment_then_flags() {
    let file = TempFile::new(
        r#"
        listen = "127.0.0.1:1001"
        data_dir = "/srv/from-file"
        retention_days = 10
        log = "debug"
        privacy_profile = true
        tls_cert = "/etc/sotto/cert.pem"
        tls_key = "/etc/sotto/key.pem"
        "#,
    );
    let env = [
        ("SOTTO_CONFIG", file.path()),
        ("SOTTO_LISTEN", "127.0.0.1:1002"),
        ("SOTTO_RETENTION_DAYS", "20"),
        ("SOTTO_PRIVACY_PROFILE", "off"),
        ("PATH", "/usr/bin"),
    ];
    let settings = load(&flags(&["--listen", "127.0.0.1:1003"]), env).unwrap();
    let server = &settings.server;
    assert_eq!(
        server.listen,
        "127.0.0.1:1003".parse().unwrap(),
        "flag wins"
    );
    assert_eq!(
        server.retention_secs,
        20 * 24 * 3600,
        "environment beats file"
    );
    assert!(!server.privacy_profile, "environment beats file");
    assert_eq!(server.data_dir, PathBuf::from("/srv/from-file"));
    assert_eq!(settings.log, "debug");
    assert_eq!(
        server.tls,
        Some(TlsFiles {
            cert: "/etc/sotto/cert.pem".into(),
            key: "/etc/sotto/key.pem".into(),
        })
    );
    assert_eq!(settings.config_file.as_deref(), Some(file.0.as_path()));

    // Without the flag the environment decides; without either, the file.
    let settings = load(&flags(&[]), env).unwrap();
    assert_eq!(settings.server.listen, "127.0.0.1:1002".parse().unwrap());
    let settings = load(&flags(&["--config", file.path()]), NO_ENV).unwrap();
    assert_eq!(settings.server.listen, "127.0.0.1:1001".parse().unwrap());
    assert_eq!(settings.server.retention_secs, 10 * 24 * 3600);
    assert!(settings.server.privacy_profile);
}

#[test]
fn config_flag_beats_config_variable() {
    let from_env = TempFile::new("retention_days = 7\n");
    let from_flag = TempFile::new("retention_days = 8\n");
    let settings = load(
        &flags(&["--config", from_flag.path()]),
        [("SOTTO_CONFIG", from_env.path())],
    )
    .unwrap();
    assert_eq!(settings.server.retention_secs, 8 * 24 * 3600);
}

#[test]
fn every_setting_has_a_flag_and_a_variable() {
    let args = [
        "--listen=[::1]:9000",
        "--data-dir=d",
        "--database-url=postgres://db/sotto",
        "--retention-days=6",
        "--tls-cert=c.pem",
        "--tls-key=k.pem",
        "--privacy-profile",
        "--log=warn",
    ];
    let env = [
        ("SOTTO_LISTEN", "[::1]:9000"),
        ("SOTTO_DATA_DIR", "d"),
        ("SOTTO_DATABASE_URL", "postgres://db/sotto"),
        ("SOTTO_RETENTION_DAYS", "6"),
        ("SOTTO_TLS_CERT", "c.pem"),
        ("SOTTO_TLS_KEY", "k.pem"),
        ("SOTTO_PRIVACY_PROFILE", "true"),
        ("SOTTO_LOG", "warn"),
    ];
    assert_eq!(args.len(), SETTINGS.len());
    assert_eq!(env.len(), SETTINGS.len());
    for settings in [
        load(&flags(&args), NO_ENV).unwrap(),
        load(&flags(&[]), env).unwrap(),
    ] {
        let server = settings.server;
        assert_eq!(server.listen, "[::1]:9000".parse().unwrap());
        assert_eq!(server.data_dir, PathBuf::from("d"));
        assert_eq!(server.database_url.as_deref(), Some("postgres://db/sotto"));
        assert_eq!(server.retention_secs, 6 * 24 * 3600);
        assert_eq!(
            server.tls,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert!(server.privacy_profile);
        assert_eq!(settings.log, "warn");
    }
}

#[test]
fn environment_values_are_text() {
    // Figment's own environment provider would read these as a number and a list.
    let env = [("SOTTO_DATA_DIR", "2024"), ("SOTTO_LOG", "[sotto]")];
    let settings = load(&flags(&[]), env).unwrap();
    assert_eq!(settings.server.data_dir, PathBuf::from("2024"));
    assert_eq!(settings.log, "[sotto]");
}

#[test]
fn empty_and_foreign_variables_are_ignored() {
    let env = [
        ("SOTTO_DATABASE_URL", ""),
        (
            "SOTTO_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1/postgres",
        ),
        ("SOTTO_SOMETHING_ELSE", "x"),
    ];
    let settings = load(&flags(&[]), env).unwrap();
    assert_eq!(settings.server.database_url, None);
}

#[test]
fn privacy_profile_flag_can_switch_off() {
    let env = [("SOTTO_PRIVACY_PROFILE", "yes")];
    assert!(load(&flags(&[]), env).unwrap().server.privacy_profile);
    let off = flags(&["--privacy-profile=false"]);
    assert!(!load(&off, env).unwrap().server.privacy_profile);
}

#[test]
fn unknown_key_in_file_is_named() {
    let file = TempFile::new("listen = \"127.0.0.1:1\"\nretention = 6\n");
    let message = error(&flags(&["--config", file.path()]), &[]);
    assert!(message.contains("unknown setting `retention`"), "{message}");
    assert!(message.contains(file.path()), "{message}");
    assert!(
        message.contains("retention_days"),
        "lists the settings: {message}"
    );
}

#[test]
fn bad_values_name_the_setting_and_the_source() {
    let message = error(&flags(&[]), &[("SOTTO_RETENTION_DAYS", "0")]);
    assert!(message.contains("retention_days"), "{message}");
    assert!(
        message.contains("environment variable SOTTO_RETENTION_DAYS"),
        "{message}"
    );
    assert!(message.contains("between 1 and 365"), "{message}");

    let message = error(&flags(&["--retention-days", "366"]), &[]);
    assert!(message.contains("flag --retention-days"), "{message}");

    let message = error(&flags(&["--retention-days", "thirty"]), &[]);
    assert!(message.contains("flag --retention-days"), "{message}");

    let message = error(&flags(&["--listen", "localhost"]), &[]);
    assert!(
        message.contains("invalid listen from flag --listen"),
        "{message}"
    );

    let file = TempFile::new("privacy_profile = \"maybe\"\n");
    let message = error(&flags(&["--config", file.path()]), &[]);
    assert!(message.contains("privacy_profile"), "{message}");
    assert!(message.contains(file.path()), "{message}");

    let message = error(&flags(&["--log", "sotto_server=loud"]), &[]);
    assert!(message.contains("invalid log from flag --log"), "{message}");

    let file = TempFile::new("data_dir = \"\"\n");
    let message = error(&flags(&["--config", file.path()]), &[]);
    assert!(message.contains("data_dir"), "{message}");
}

#[test]
fn missing_or_broken_file_is_an_error() {
    let message = error(&flags(&["--config", "/nonexistent/sotto.toml"]), &[]);
    assert!(message.contains("cannot read configuration file /nonexistent/sotto.toml"));

    let file =
        TempFile::new("listen = \"127.0.0.1:1\"\ndatabase_url = \"postgres://u:hunter2@db/x\n");
    let message = error(&flags(&["--config", file.path()]), &[]);
    assert!(message.contains("not valid TOML"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(!message.contains("hunter2"), "quotes the file: {message}");
}

#[test]
fn certificate_without_key_is_refused() {
    let message = error(&flags(&["--tls-cert", "cert.pem"]), &[]);
    assert!(message.contains("tls_cert is set"), "{message}");
    assert!(message.contains("flag --tls-cert"), "{message}");
    assert!(message.contains("tls_key is not"), "{message}");

    let message = error(&flags(&[]), &[("SOTTO_TLS_KEY", "key.pem")]);
    assert!(message.contains("tls_key is set"), "{message}");
    assert!(message.contains("SOTTO_TLS_KEY"), "{message}");
}

#[test]
fn database_url_is_never_shown() {
    let url = "postgres://sotto:hunter2@db.example:5432/sotto?sslmode=require";
    let settings = load(&flags(&[]), [("SOTTO_DATABASE_URL", url)]).unwrap();
    assert_eq!(settings.server.database_url.as_deref(), Some(url));
    for shown in [
        format!("{:?}", settings.server),
        format!("{settings:?}"),
        format!("{:#?}", settings.server),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://sotto:<redacted>@db.example:5432/sotto"));
    }

    let message = error(&flags(&["--database-url", "mysql://u:hunter2@db/x"]), &[]);
    assert!(message.contains("database_url"), "{message}");
    assert!(message.contains("flag --database-url"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let file = TempFile::new("database_url = \"http://u:hunter2@db/x\"\n");
    let message = error(&flags(&["--config", file.path()]), &[]);
    assert!(message.contains(file.path()), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn redaction() {
    for (url, shown) in [
        ("postgres://db/sotto", "postgres://db/sotto"),
        ("postgres://u@db/sotto", "postgres://u@db/sotto"),
        (
            "postgres://u:pw@db/sotto",
            "postgres://u:<redacted>@db/sotto",
        ),
        ("postgresql://u:p/w@db", "postgresql://u:<redacted>@db"),
        (
            "postgres://db/sotto?user=u&password=pw",
            "postgres://db/sotto?<redacted>",
        ),
        ("postgres://u:p?w@db/sotto", "postgres://<redacted>"),
        ("postgres://u:p@w@db/sotto", "postgres://<redacted>"),
        ("postgres://db/x?password=p@w", "postgres://<redacted>"),
        ("host=db password=pw", "<redacted>"),
    ] {
        assert_eq!(redact_database_url(url), shown, "{url}");
    }
}
