//! A real server on a fresh data directory, and helpers, for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use reqwest::StatusCode;
use sotto_api::{
    Account, ApiError, Bytes, Challenge, ChallengeRequest, ErrorCode, RegisterAccount,
    RegisterDevice, Session, SessionRequest, UploadKeyPackages,
};
use sotto_core::auth::sign_challenge;
use sotto_core::crypto::SigningKey;
use sotto_core::device::{Device, NewDevice};
use sotto_core::identity::{DeviceId, UserId, UserRootKey};
use sotto_server::{start, Config};
use tokio::sync::oneshot;

mod live;
mod people;
#[allow(unused_imports)] // not every test file uses a WebSocket
pub use live::*;
#[allow(unused_imports)] // not every test file talks MLS
pub use people::*;

/// Which back-end a test runs against.
#[derive(Debug, Clone)]
pub enum Db {
    /// Embedded SQLite in the test's data directory.
    Sqlite,
    /// A fresh schema in the PostgreSQL database at this URL, dropped afterwards.
    Postgres(String),
}

impl Db {
    /// PostgreSQL, if `SOTTO_TEST_POSTGRES_URL` names a database; otherwise says the test
    /// was skipped.
    pub fn postgres() -> Option<Db> {
        match std::env::var("SOTTO_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Db::Postgres(url)),
            _ => {
                eprintln!("skipped: SOTTO_TEST_POSTGRES_URL is not set, so this test did not run against PostgreSQL");
                None
            }
        }
    }
}

/// Runs each listed `async fn name(db: Db)` as two tests, `sqlite::name` and
/// `postgres::name` (the latter skipped, saying so, without `SOTTO_TEST_POSTGRES_URL`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::common::Db::postgres() {
                        super::$name(db).await
                    }
                }
            )*
        }
    };
}

/// What a test server keeps between runs: its data directory and, on PostgreSQL, its
/// schema. Dropped, both are removed.
pub struct Stored {
    pub dir: PathBuf,
    /// `(admin URL, schema)` on PostgreSQL.
    pg: Option<(String, String)>,
    /// An alias of another `Stored`, which alone cleans up.
    alias: bool,
}

fn random_name() -> String {
    sotto_core::crypto::random_array::<8>()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Stored {
    /// A fresh data directory, and a fresh schema on PostgreSQL.
    pub async fn new(db: &Db) -> Self {
        let name = random_name();
        let dir = std::env::temp_dir().join(format!("sotto-server-test-{name}"));
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres(url) => {
                let schema = format!("sotto_test_{name}");
                let client = pg_connect(url).await;
                client
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .unwrap();
                Some((url.clone(), schema))
            }
        };
        Self {
            dir,
            pg,
            alias: false,
        }
    }

    /// The same store, for a second server; dropping the alias removes nothing.
    pub fn alias(&self) -> Stored {
        Stored {
            dir: self.dir.clone(),
            pg: self.pg.clone(),
            alias: true,
        }
    }

    /// The server configuration for this store.
    pub fn config(&self) -> Config {
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), self.dir.clone());
        config.database_url = self
            .pg
            .as_ref()
            .map(|(url, schema)| with_schema(url, schema));
        config
    }

    /// Whether any stored byte sequence contains `needle`: every file of the data
    /// directory, and on PostgreSQL every row of the schema (text, and byte strings in
    /// hex).
    pub async fn contains(&self, needle: &[u8]) -> bool {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
        let Some((url, schema)) = &self.pg else {
            return false;
        };
        let client = pg_connect(&with_schema(url, schema)).await;
        let hex_needle: String = needle.iter().map(|b| format!("{b:02x}")).collect();
        let text_needle = String::from_utf8_lossy(needle).into_owned();
        for table in self.tables().await {
            let rows = client
                .query(&format!("SELECT t::text FROM {schema}.{table} t"), &[])
                .await
                .unwrap();
            for row in rows {
                let text: String = row.get(0);
                if text.contains(&hex_needle) || text.contains(&text_needle) {
                    return true;
                }
            }
        }
        false
    }

    /// The tables of the store.
    pub async fn tables(&self) -> Vec<String> {
        match &self.pg {
            None => {
                let db = self.sqlite();
                let mut stmt = db
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .unwrap();
                let names = stmt
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<Vec<String>, _>>()
                    .unwrap();
                names
            }
            Some((url, schema)) => pg_connect(url)
                .await
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = $1",
                    &[schema],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        }
    }

    /// The column names of `table`, in order.
    pub async fn columns(&self, table: &str) -> Vec<String> {
        match &self.pg {
            None => {
                let db = self.sqlite();
                let stmt = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
                stmt.column_names().into_iter().map(String::from).collect()
            }
            Some((url, schema)) => pg_connect(url)
                .await
                .query(
                    "SELECT column_name::text FROM information_schema.columns
                     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    &[schema, &table],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        }
    }

    /// The result of a query returning one integer (`SELECT COUNT(*) ...`), in plain SQL
    /// both back-ends understand.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.pg {
            None => self.sqlite().query_row(sql, [], |r| r.get(0)).unwrap(),
            Some((url, schema)) => pg_connect(&with_schema(url, schema))
                .await
                .query_one(sql, &[])
                .await
                .unwrap()
                .get(0),
        }
    }

    /// Rows of text columns of a query, in plain SQL both back-ends understand.
    pub async fn text_rows(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.pg {
            None => {
                let db = self.sqlite();
                let mut stmt = db.prepare(sql).unwrap();
                let n = stmt.column_count();
                let rows = stmt
                    .query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                    .unwrap()
                    .collect::<Result<Vec<Vec<String>>, _>>()
                    .unwrap();
                rows
            }
            Some((url, schema)) => pg_connect(&with_schema(url, schema))
                .await
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                .collect(),
        }
    }

    /// Runs statements that return nothing, in plain SQL of the store's back-end.
    pub async fn execute(&self, sql: &str) {
        match &self.pg {
            None => self.sqlite().execute_batch(sql).unwrap(),
            Some((url, schema)) => pg_connect(&with_schema(url, schema))
                .await
                .batch_execute(sql)
                .await
                .unwrap(),
        }
    }

    /// Whether this store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join(sotto_server::DATABASE_FILE)).unwrap()
    }
}

impl Drop for Stored {
    fn drop(&mut self) {
        if self.alias {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((url, schema)) = self.pg.take() {
            // Drop runs inside the test's runtime: clean up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let client = pg_connect(&url).await;
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                });
            })
            .join();
        }
    }
}

/// `url` with its search path set to `schema`.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// A fresh store of `db`, opened through the storage interface (no server).
pub async fn open_store(db: &Db) -> (Stored, sotto_server::storage::Store) {
    let stored = Stored::new(db).await;
    std::fs::create_dir_all(&stored.dir).unwrap();
    let store = sotto_server::storage::open(&stored.config().backend())
        .await
        .unwrap();
    (stored, store)
}

/// A server on a fresh store; dropped, it shuts down and removes its data.
pub struct TestServer {
    pub base: String,
    pub stored: Stored,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a server on `stored` (a new one, or one a stopped server left).
    pub async fn start_on(stored: Stored) -> Self {
        let config = stored.config();
        Self::start_with(stored, config).await
    }

    /// Starts a server on `stored` with `config` (which should be `stored.config()` with
    /// changes).
    pub async fn start_with(stored: Stored, config: Config) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let running = start(config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        Self {
            base: format!("http://{}", running.addr),
            stored,
            stop: Some(stop),
            task: Some(running.task),
            http: http_client(),
        }
    }

    /// Starts a server on a fresh store of `db`.
    pub async fn start(db: Db) -> Self {
        Self::start_on(Stored::new(&db).await).await
    }

    /// A handle on a server that runs elsewhere (e.g. the `sotto-server` binary in a child
    /// process) at `base`, over `stored`; the caller starts and stops it.
    pub fn external(base: String, stored: Stored) -> Self {
        Self {
            base,
            stored,
            stop: None,
            task: None,
            http: http_client(),
        }
    }

    /// Stops gracefully and returns the store (kept until dropped).
    pub async fn stop(mut self) -> Stored {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.stored
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn register(&self, root: &UserRootKey) -> reqwest::Response {
        let body = RegisterAccount {
            username: root.user().to_string(),
            root_public_key: Bytes(root.public_key().as_bytes().to_vec()),
        };
        self.http
            .post(self.url("/v1/accounts"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn add_device(&self, user: &str, certificate: Vec<u8>) -> reqwest::Response {
        let body = RegisterDevice {
            certificate: Bytes(certificate),
        };
        let url = self.url(&format!("/v1/accounts/{user}/devices"));
        self.http.post(url).json(&body).send().await.unwrap()
    }
}

pub fn root(name: &str) -> UserRootKey {
    UserRootKey::generate(UserId::new(name).unwrap()).unwrap()
}

pub fn certificate(root: &UserRootKey, device: u8) -> Vec<u8> {
    let key = SigningKey::generate().unwrap().public_key();
    root.certify_device(DeviceId([device; 16]), &key, 1)
        .unwrap()
        .to_bytes()
        .unwrap()
}

pub async fn error(response: reqwest::Response, status: StatusCode, code: ErrorCode) -> String {
    assert_eq!(response.status(), status);
    let body: ApiError = response.json().await.unwrap();
    assert_eq!(body.error, code);
    body.message
}

/// A registered user with one registered device.
pub async fn registered(server: &TestServer, name: &str) -> (UserRootKey, NewDevice) {
    let root = root(name);
    server.register(&root).await;
    let device = NewDevice::generate(&root, 1).unwrap();
    let response = server
        .add_device(name, device.certificate.to_bytes().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (root, device)
}

pub async fn ask(server: &TestServer, user: &str, device: &str) -> reqwest::Response {
    let body = ChallengeRequest {
        username: user.into(),
        device_id: device.into(),
    };
    server
        .http
        .post(server.url("/v1/auth/challenge"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn answer(
    server: &TestServer,
    user: &str,
    device: &str,
    challenge: &[u8],
    sig: Vec<u8>,
) -> reqwest::Response {
    let body = SessionRequest {
        username: user.into(),
        device_id: device.into(),
        challenge: Bytes(challenge.to_vec()),
        signature: Bytes(sig),
    };
    server
        .http
        .post(server.url("/v1/auth/session"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub fn sign(device: &NewDevice, challenge: &[u8]) -> Vec<u8> {
    let who = device.certificate.verify().unwrap();
    sign_challenge(
        &device.secret,
        challenge.try_into().unwrap(),
        &who.user,
        &who.device_id,
    )
    .unwrap()
}

/// Logs `device` of `user` in and returns its session token.
pub async fn login(server: &TestServer, user: &str, device: &NewDevice) -> String {
    let id = device.certificate.verify().unwrap().device_id.to_hex();
    let challenge: Challenge = ask(server, user, &id).await.json().await.unwrap();
    let signature = sign(device, &challenge.challenge.0);
    let session: Session = answer(server, user, &id, &challenge.challenge.0, signature)
        .await
        .json()
        .await
        .unwrap();
    session.token
}

/// An in-memory MLS device for the same certified key as `device`.
pub fn mls_device(device: &NewDevice) -> Device {
    Device::in_memory(NewDevice {
        certificate: device.certificate.clone(),
        secret: device.secret.clone(),
    })
    .unwrap()
}

impl TestServer {
    /// `GET /v1/accounts/{user}`, which must succeed.
    pub async fn account(&self, user: &str) -> Account {
        let url = self.url(&format!("/v1/accounts/{user}"));
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /v1/me` with `token`.
    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `POST /v1/key-packages` with `token`.
    pub async fn upload_key_packages(
        &self,
        token: &str,
        key_packages: Vec<Vec<u8>>,
        last_resort: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let body = UploadKeyPackages {
            key_packages: key_packages.into_iter().map(Bytes).collect(),
            last_resort: last_resort.map(Bytes),
        };
        let url = self.url("/v1/key-packages");
        self.http
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// A plain HTTP client. reqwest is built with rustls (for the client crate) and without a
/// built-in crypto provider, so the process-wide one is AWS-LC's.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}
