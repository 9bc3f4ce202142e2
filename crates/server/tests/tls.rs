//! HTTPS: the real server over TLS with a certificate made at test time, a client that
//! trusts only that certificate, and the errors of a bad certificate or key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use sotto_server::tls::{server_config, TlsError};
use sotto_server::{start, Config, Scheme, StartError, TlsFiles};
use tokio::sync::oneshot;

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let name: String = sotto_core::crypto::random_array::<8>()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = std::env::temp_dir().join(format!("sotto-tls-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM, DER).
fn self_signed() -> (String, String, CertificateDer<'static>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    (cert.pem(), signing_key.serialize_pem(), cert.der().clone())
}

/// Certificate and key files of a fresh self-signed certificate, and the certificate.
fn tls_files(dir: &TempDir) -> (TlsFiles, CertificateDer<'static>) {
    let (cert, key, der) = self_signed();
    let files = TlsFiles {
        cert: dir.write("cert.pem", &cert),
        key: dir.write("key.pem", &key),
    };
    (files, der)
}

/// A server with TLS on `listen`, and the sender that stops it.
struct TlsServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_tls(dir: &TempDir, listen: &str, files: TlsFiles) -> TlsServer {
    let (stop, stopped) = oneshot::channel::<()>();
    let config = Config {
        tls: Some(files),
        ..Config::new(listen.parse().unwrap(), dir.0.join("data"))
    };
    let running = start(config, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    assert_eq!(running.scheme, Scheme::Https);
    assert_eq!(running.url(), format!("https://{}", running.addr));
    TlsServer {
        addr: running.addr,
        stop,
        task: running.task,
    }
}

impl TlsServer {
    /// Stops gracefully; the task must end (bounded, so a hang fails instead of blocking).
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("server did not shut down")
            .unwrap()
            .unwrap();
    }
}

/// A client configuration on AWS-LC that trusts only `cert` and offers `alpn`.
fn client_config(cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// An HTTPS connection to `addr` (verified as 127.0.0.1), speaking whatever ALPN chose.
enum Connection {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

async fn connect(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> Result<(Connection, rustls::ProtocolVersion), std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = connector.connect(name, tcp).await?;
    let (_, session) = tls.get_ref();
    let version = session.protocol_version().unwrap();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let connection = if h2 {
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        Connection::H2(sender)
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Connection::H1(sender)
    };
    Ok((connection, version))
}

impl Connection {
    /// `GET path`: the response's HTTP version, status and body.
    async fn get(&mut self, addr: SocketAddr, path: &str) -> (Version, StatusCode, Bytes) {
        let response = match self {
            Self::H1(sender) => {
                let request = Request::get(path)
                    .header(hyper::header::HOST, addr.to_string())
                    .body(Empty::new())
                    .unwrap();
                sender.send_request(request).await.unwrap()
            }
            Self::H2(sender) => {
                let request = Request::get(format!("https://{addr}{path}"))
                    .body(Empty::new())
                    .unwrap();
                sender.send_request(request).await.unwrap()
            }
        };
        let (version, status) = (response.version(), response.status());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (version, status, body)
    }
}

#[tokio::test]
async fn https_healthz_with_h2_and_http1() {
    let dir = TempDir::new();
    let (files, cert) = tls_files(&dir);
    let server = start_tls(&dir, "127.0.0.1:0", files).await;

    // ALPN h2 first: the server picks HTTP/2.
    let config = client_config(&cert, &[b"h2", b"http/1.1"]);
    let (mut h2, version) = connect(server.addr, config).await.unwrap();
    assert!(matches!(h2, Connection::H2(_)), "ALPN did not choose h2");
    assert!([
        rustls::ProtocolVersion::TLSv1_3,
        rustls::ProtocolVersion::TLSv1_2
    ]
    .contains(&version));
    let (version, status, body) = h2.get(server.addr, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version, Version::HTTP_2);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    // A client that offers only HTTP/1.1 gets it.
    let config = client_config(&cert, &[b"http/1.1"]);
    let (mut h1, _) = connect(server.addr, config).await.unwrap();
    let (version, status, _) = h1.get(server.addr, "/healthz").await;
    assert_eq!((version, status), (Version::HTTP_11, StatusCode::OK));

    // Unknown routes still get the API's JSON errors over TLS.
    let (_, status, _) = h1.get(server.addr, "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Shutdown is graceful with connections still open: the task ends on its own.
    server.stop().await;
}

#[tokio::test]
async fn tls_1_2_is_offered() {
    let dir = TempDir::new();
    let (files, cert) = tls_files(&dir);
    let server = start_tls(&dir, "127.0.0.1:0", files).await;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (mut conn, version) = connect(server.addr, config).await.unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
    let (_, status, _) = conn.get(server.addr, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn client_that_trusts_another_certificate_is_refused() {
    let dir = TempDir::new();
    let (files, _) = tls_files(&dir);
    let server = start_tls(&dir, "127.0.0.1:0", files).await;
    let (_, _, other) = self_signed();
    let config = client_config(&other, &[b"http/1.1"]);
    let error = connect(server.addr, config)
        .await
        .err()
        .expect("untrusted certificate");
    assert!(error.to_string().contains("certificate"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails() {
    let dir = TempDir::new();
    let (files, cert) = tls_files(&dir);
    let server = start_tls(&dir, "127.0.0.1:0", files).await;
    let plain = common::http_client()
        .get(format!("http://{}/healthz", server.addr))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    // The server is unharmed by it.
    let (mut conn, _) = connect(server.addr, client_config(&cert, &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(conn.get(server.addr, "/healthz").await.1, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn non_loopback_needs_tls() {
    let dir = TempDir::new();
    let config = Config::new("0.0.0.0:0".parse().unwrap(), dir.0.join("data"));
    match start(config, std::future::pending()).await {
        Err(StartError::NotLoopback(addr)) => {
            assert_eq!(addr, "0.0.0.0:0".parse().unwrap());
        }
        other => panic!("plain HTTP on a non-loopback address: {other:?}"),
    }
    // Refused before touching the data directory.
    assert!(!dir.0.join("data").exists());

    // With TLS any address is allowed (reached here through loopback).
    let (files, cert) = tls_files(&dir);
    let server = start_tls(&dir, "0.0.0.0:0", files).await;
    let local = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let (mut conn, _) = connect(local, client_config(&cert, &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(conn.get(local, "/healthz").await.1, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn plain_http_on_loopback_still_works() {
    let server = common::TestServer::start(common::Db::Sqlite).await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(server.base.starts_with("http://"));
    server.stop().await;
}

fn load_error(files: &TlsFiles) -> TlsError {
    match server_config(files) {
        Ok(_) => panic!("loaded {files:?}"),
        Err(e) => e,
    }
}

fn files(cert: &Path, key: &Path) -> TlsFiles {
    TlsFiles {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    }
}

#[test]
fn certificate_and_key_errors_are_clear() {
    let dir = TempDir::new();
    let (cert, key, _) = self_signed();
    let (other_cert, other_key, _) = self_signed();
    let cert = dir.write("cert.pem", &cert);
    let key = dir.write("key.pem", &key);
    assert!(server_config(&files(&cert, &key)).is_ok());

    // Missing files.
    let missing = dir.0.join("missing.pem");
    let e = load_error(&files(&missing, &key));
    assert!(
        matches!(
            e,
            TlsError::Read {
                what: "certificate",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = load_error(&files(&cert, &missing));
    assert!(matches!(e, TlsError::Read { what: "key", .. }), "{e:?}");

    // No certificate: an empty file, or the key given as the certificate.
    let empty = dir.write("empty.pem", "");
    assert!(matches!(
        load_error(&files(&empty, &key)),
        TlsError::NoCertificate(_)
    ));
    let e = load_error(&files(&key, &key));
    assert!(matches!(e, TlsError::NoCertificate(_)), "{e:?}");
    assert!(e.to_string().contains("no certificate in"), "{e}");

    // No key: the certificate given as the key, or an encrypted key.
    let e = load_error(&files(&cert, &cert));
    assert!(matches!(e, TlsError::NoKey(_)), "{e:?}");
    assert!(e.to_string().contains("no private key in"), "{e}");
    let encrypted = dir.write(
        "encrypted.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    assert!(matches!(
        load_error(&files(&cert, &encrypted)),
        TlsError::NoKey(_)
    ));

    // A key that is not a key, and broken PEM.
    let garbage = dir.write(
        "garbage.pem",
        "-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n",
    );
    let e = load_error(&files(&cert, &garbage));
    assert!(matches!(e, TlsError::BadKey { .. }), "{e:?}");
    let truncated = dir.write("truncated.pem", "-----BEGIN PRIVATE KEY-----\nAAEC\n");
    let e = load_error(&files(&cert, &truncated));
    assert!(matches!(e, TlsError::BadKey { .. }), "{e:?}");
    assert!(
        !e.to_string().contains("AAEC"),
        "error quotes the key file: {e}"
    );
    let truncated_cert = dir.write("truncated-cert.pem", "-----BEGIN CERTIFICATE-----\nAAEC\n");
    let e = load_error(&files(&truncated_cert, &key));
    assert!(matches!(e, TlsError::BadCertificate { .. }), "{e:?}");

    // Another certificate's key.
    let other_key = dir.write("other-key.pem", &other_key);
    let e = load_error(&files(&cert, &other_key));
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains("does not match"), "{e}");
    let other_cert = dir.write("other-cert.pem", &other_cert);
    assert!(server_config(&files(&other_cert, &other_key)).is_ok());
}

#[tokio::test]
async fn start_reports_tls_errors() {
    let dir = TempDir::new();
    let config = Config {
        tls: Some(TlsFiles {
            cert: dir.0.join("cert.pem"),
            key: dir.0.join("key.pem"),
        }),
        ..Config::new("127.0.0.1:0".parse().unwrap(), dir.0.join("data"))
    };
    match start(config, std::future::pending()).await {
        Err(e @ StartError::Tls(_)) => {
            assert!(
                e.to_string().contains("cannot read TLS certificate file"),
                "{e}"
            );
        }
        other => panic!("started without a certificate: {other:?}"),
    }
}
