//! The server's settings, from (in increasing priority) built-in defaults, a TOML file,
//! `SOTTO_*` environment variables and command-line flags.
//!
//! Every setting has the same name in each place: the TOML key `retention_days` is the
//! environment variable `SOTTO_RETENTION_DAYS` and the flag `--retention-days`. The file is
//! named by `--config FILE` or, failing that, `SOTTO_CONFIG`. Values from the environment
//! and from flags are text, converted to the setting's type (`"30"` for a number, `true`,
//! `false`, `yes`, `no`, `on`, `off`, `1` or `0` for a switch); an empty environment variable
//! counts as unset. Relative paths are relative to the working directory, wherever they
//! were given.
//!
//! Unknown keys in the file are an error; `SOTTO_*` variables that name no setting are
//! ignored (tests and tools use that prefix too). A bad value is reported with the setting
//! and where it came from. The database URL may hold a password: it is never part of an
//! error message, and [`crate::Config`]'s `Debug` shows it through
//! [`redact_database_url`].

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::Deserialize;

use crate::tls::TlsFiles;
use crate::Config;

/// The default listening address: loopback, port 8480.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8480);
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "sotto-data";
/// The default retention of undelivered ciphertext, in days (the standard profile).
pub const DEFAULT_RETENTION_DAYS: u16 = 30;
/// The retention of the short profile, in days.
pub const SHORT_RETENTION_DAYS: u16 = 6;
/// The longest retention accepted, in days.
pub const MAX_RETENTION_DAYS: u16 = 365;
/// The default log filter.
pub const DEFAULT_LOG: &str = "info";
/// The environment variable naming the configuration file (overridden by `--config`).
pub const CONFIG_ENV: &str = "SOTTO_CONFIG";
/// The prefix of the settings' environment variables.
pub const ENV_PREFIX: &str = "SOTTO_";
/// The settings, by TOML key.
pub const SETTINGS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "retention_days",
    "tls_cert",
    "tls_key",
    "privacy_profile",
    "log",
];

/// Command-line flags of `sotto-server`; each overrides the file and the environment.
///
/// Values are taken as text here and checked with the other sources' values, so that an
/// error reads the same wherever the value came from.
#[derive(Clone, Default, clap::Parser)]
#[command(
    name = "sotto-server",
    version,
    about = "The Sotto server: relays ciphertext, publishes public keys, keeps sealed backups.",
    long_about = "The Sotto server: relays ciphertext, publishes public keys, keeps sealed \
                  backups.\n\nSettings come from, in increasing priority, built-in defaults, a \
                  TOML file (--config or SOTTO_CONFIG), SOTTO_* environment variables and these \
                  flags. With no settings at all it serves plain HTTP on 127.0.0.1:8480 with \
                  SQLite in ./sotto-data."
)]
pub struct Flags {
    /// TOML configuration file [env: SOTTO_CONFIG].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on; plain HTTP only on loopback [env: SOTTO_LISTEN] [default:
    /// 127.0.0.1:8480].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Data directory, created if missing [env: SOTTO_DATA_DIR] [default: sotto-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// PostgreSQL URL (postgres://…) to use instead of SQLite; prefer the file or the
    /// environment, as flags are visible to other local users [env: SOTTO_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Days undelivered ciphertext is kept, 1 to 365; the short profile is 6 [env:
    /// SOTTO_RETENTION_DAYS] [default: 30].
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<String>,
    /// TLS certificate chain, PEM; needs --tls-key [env: SOTTO_TLS_CERT].
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// TLS private key, PEM; needs --tls-cert [env: SOTTO_TLS_KEY].
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
    /// Record only a salted hash of the acting user in the account-event log
    /// [env: SOTTO_PRIVACY_PROFILE] [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub privacy_profile: Option<String>,
    /// Log filter, e.g. `info` or `sotto_server=debug` [env: SOTTO_LOG] [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

impl Flags {
    /// The flags that were given, by setting name.
    fn values(&self) -> Vec<(&'static str, &str)> {
        let Flags {
            config: _,
            listen,
            data_dir,
            database_url,
            retention_days,
            tls_cert,
            tls_key,
            privacy_profile,
            log,
        } = self;
        [
            ("listen", listen),
            ("data_dir", data_dir),
            ("database_url", database_url),
            ("retention_days", retention_days),
            ("tls_cert", tls_cert),
            ("tls_key", tls_key),
            ("privacy_profile", privacy_profile),
            ("log", log),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_deref().map(|v| (key, v)))
        .collect()
    }
}

/// The merged settings: what [`crate::start`] takes, and what only `main` uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server's configuration.
    pub server: Config,
    /// The log filter (`tracing_subscriber::EnvFilter` syntax), already checked.
    pub log: String,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML. The message never quotes the file.
    #[error(
        "configuration file {path} is not valid TOML: {message} (line {line}, column {column})"
    )]
    Toml {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// Where (1-based).
        line: usize,
        /// Where (1-based, in characters).
        column: usize,
    },
    /// The configuration file has a key that is no setting.
    #[error("configuration file {path}: unknown setting `{key}` (the settings are {known})")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The unknown key.
        key: String,
        /// The known keys, comma-separated.
        known: String,
    },
    /// An environment variable of a setting is not UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    NotUtf8(String),
    /// A setting has a bad value.
    #[error("invalid {setting} from {origin}: {reason}")]
    Invalid {
        /// The setting (its TOML key).
        setting: String,
        /// Where the value came from, e.g. `environment variable SOTTO_LISTEN`.
        origin: String,
        /// What is wrong with it (never the database URL).
        reason: String,
    },
    /// One of `tls_cert` and `tls_key` is set without the other.
    #[error("{set} is set (from {origin}) but {missing} is not: set both or neither")]
    TlsHalf {
        /// The setting that is set.
        set: &'static str,
        /// Where it came from.
        origin: String,
        /// The one missing.
        missing: &'static str,
    },
}

/// Loads the settings from the defaults, the file named by `flags.config` or `SOTTO_CONFIG`,
/// the `SOTTO_*` variables of `env` and `flags`, each overriding the ones before.
///
/// `main` passes `std::env::vars_os()`; tests pass their own environment.
pub fn load<K, V>(
    flags: &Flags,
    env: impl IntoIterator<Item = (K, V)>,
) -> Result<Settings, ConfigError>
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let env = Layer::from_env(env)?;
    let config_file = flags.config.clone().or(env.config_file.clone());
    let mut figment = figment::Figment::new();
    if let Some(path) = &config_file {
        figment = figment.merge(Layer::from_file(path)?);
    }
    let flags = Layer::from_flags(flags);
    let figment = figment.merge(env).merge(flags);
    let raw: Raw = figment.extract_lossy().map_err(invalid)?;
    let origin = |key: &str| {
        figment.find_metadata(key).map_or_else(
            || "the defaults".to_string(),
            |md| md.interpolate(&Profile::Default, &[key]),
        )
    };
    let reject = |setting: &str, reason: &str| ConfigError::Invalid {
        setting: setting.to_string(),
        origin: origin(setting),
        reason: reason.to_string(),
    };

    if raw.data_dir.as_os_str().is_empty() {
        return Err(reject("data_dir", "must not be empty"));
    }
    if let Some(url) = &raw.database_url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(reject(
                "database_url",
                "must be a PostgreSQL URL starting with postgres:// or postgresql://",
            ));
        }
    }
    for key in ["tls_cert", "tls_key"] {
        let path = if key == "tls_cert" {
            &raw.tls_cert
        } else {
            &raw.tls_key
        };
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(reject(key, "must not be empty"));
        }
    }
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::TlsHalf {
                set: "tls_cert",
                origin: origin("tls_cert"),
                missing: "tls_key",
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::TlsHalf {
                set: "tls_key",
                origin: origin("tls_key"),
                missing: "tls_cert",
            })
        }
    };
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log) {
        return Err(reject("log", &e.to_string()));
    }

    Ok(Settings {
        server: Config {
            listen: raw.listen,
            data_dir: raw.data_dir,
            retention_secs: u64::from(raw.retention_days.0) * 24 * 3600,
            database_url: raw.database_url,
            tls,
            privacy_profile: raw.privacy_profile,
        },
        log: raw.log,
        config_file,
    })
}

/// Shows a database URL without its password: `postgres://user:<redacted>@host/db`; any
/// query string (which may carry `password=`) is replaced by `?<redacted>`, and a URL that
/// cannot be split safely is shown as `scheme://<redacted>`.
pub fn redact_database_url(url: &str) -> String {
    const HIDDEN: &str = "<redacted>";
    let Some((scheme, rest)) = url.split_once("://") else {
        return HIDDEN.to_string();
    };
    let (before_query, has_query) = match rest.split_once(['?', '#']) {
        Some((before, _)) => (before, true),
        None => (rest, false),
    };
    let query = if has_query { "?<redacted>" } else { "" };
    match rest.matches('@').count() {
        0 => format!("{scheme}://{before_query}{query}"),
        // One `@`, in the part before any `?`: the userinfo is everything before it.
        1 if before_query.contains('@') => {
            let (userinfo, host) = before_query.split_once('@').unwrap_or(("", before_query));
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:{HIDDEN}@{host}{query}"),
                None => format!("{scheme}://{userinfo}@{host}{query}"),
            }
        }
        _ => format!("{scheme}://{HIDDEN}"),
    }
}

/// The settings as read, before the checks that involve several of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default)]
    database_url: Option<String>,
    #[serde(default)]
    retention_days: RetentionDays,
    #[serde(default)]
    tls_cert: Option<PathBuf>,
    #[serde(default)]
    tls_key: Option<PathBuf>,
    #[serde(default)]
    privacy_profile: bool,
    #[serde(default = "default_log")]
    log: String,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

fn default_log() -> String {
    DEFAULT_LOG.to_string()
}

/// Days of retention, checked to be 1..=365 as it is read.
#[derive(Deserialize)]
#[serde(try_from = "u64")]
struct RetentionDays(u16);

impl Default for RetentionDays {
    fn default() -> Self {
        Self(DEFAULT_RETENTION_DAYS)
    }
}

impl TryFrom<u64> for RetentionDays {
    type Error = String;

    fn try_from(days: u64) -> Result<Self, String> {
        match u16::try_from(days) {
            Ok(d) if (1..=MAX_RETENTION_DAYS).contains(&d) => Ok(Self(d)),
            _ => Err(format!(
                "must be between 1 and {MAX_RETENTION_DAYS} days, not {days}"
            )),
        }
    }
}

/// Turns figment's errors into one naming the setting and the value's origin.
fn invalid(error: figment::Error) -> ConfigError {
    let error = error
        .into_iter()
        .next()
        .unwrap_or_else(|| figment::Error::from(String::new()));
    let setting = if error.path.is_empty() {
        "configuration".to_string()
    } else {
        error.path.join(".")
    };
    let origin = match (&error.metadata, &error.profile) {
        (Some(md), Some(profile)) if !error.path.is_empty() => md.interpolate(profile, &error.path),
        (Some(md), _) => md.name.to_string(),
        (None, _) => "the defaults".to_string(),
    };
    ConfigError::Invalid {
        setting,
        origin,
        reason: error.kind.to_string(),
    }
}

/// Which source a [`Layer`] is; it names a key's origin in errors.
#[derive(Clone)]
enum Source {
    File(PathBuf),
    Env,
    Flags,
}

/// One source's values, as a figment provider.
struct Layer {
    source: Source,
    values: Dict,
    /// `SOTTO_CONFIG`, for the environment layer.
    config_file: Option<PathBuf>,
}

impl Layer {
    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let (line, column) = line_column(&text, e.span().map_or(0, |s| s.start));
            ConfigError::Toml {
                path: path.to_path_buf(),
                message: e.message().trim_end().to_string(),
                line,
                column,
            }
        })?;
        let mut values = Dict::new();
        for (key, value) in table {
            if !SETTINGS.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    key,
                    known: SETTINGS.join(", "),
                });
            }
            values.insert(key, toml_value(value));
        }
        Ok(Self {
            source: Source::File(path.to_path_buf()),
            values,
            config_file: None,
        })
    }

    fn from_env<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let mut values = Dict::new();
        let mut config_file = None;
        for (name, value) in env {
            let Some(name) = name.as_ref().to_str() else {
                continue;
            };
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            let is_config = name == CONFIG_ENV;
            if !is_config && !SETTINGS.contains(&key.as_str()) {
                continue;
            }
            let value = value
                .as_ref()
                .to_str()
                .ok_or_else(|| ConfigError::NotUtf8(name.to_string()))?;
            if value.is_empty() {
                continue;
            }
            if is_config {
                config_file = Some(PathBuf::from(value));
            } else {
                values.insert(key, Value::from(value.to_string()));
            }
        }
        Ok(Self {
            source: Source::Env,
            values,
            config_file,
        })
    }

    fn from_flags(flags: &Flags) -> Self {
        let values = flags
            .values()
            .into_iter()
            .map(|(key, value)| (key.to_string(), Value::from(value.to_string())))
            .collect();
        Self {
            source: Source::Flags,
            values,
            config_file: None,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let source = self.source.clone();
        let name = match &self.source {
            Source::File(_) => "configuration file",
            Source::Env => "environment",
            Source::Flags => "command line",
        };
        let md = Metadata::named(name).interpolater(move |_: &Profile, keys: &[&str]| {
            let key = keys.join(".");
            match &source {
                Source::File(path) => format!("`{key}` in configuration file {}", path.display()),
                Source::Env => format!(
                    "environment variable {ENV_PREFIX}{}",
                    key.to_ascii_uppercase()
                ),
                Source::Flags => format!("flag --{}", key.replace('_', "-")),
            }
        });
        match &self.source {
            Source::File(path) => md.source(path.as_path()),
            _ => md,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// A TOML value as a figment value.
fn toml_value(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::from(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::from(b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(a) => Value::from(a.into_iter().map(toml_value).collect::<Vec<_>>()),
        toml::Value::Table(t) => Value::from(
            t.into_iter()
                .map(|(k, v)| (k, toml_value(v)))
                .collect::<Dict>(),
        ),
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
