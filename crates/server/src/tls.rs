//! TLS for the server: a PEM certificate chain and private key, loaded into a rustls
//! configuration on AWS-LC (the project's one crypto backend), and the HTTPS serving loop.
//!
//! TLS 1.3 and 1.2 are offered with rustls' default (AEAD-only, forward-secret) cipher
//! suites and key exchanges of the AWS-LC provider; ALPN offers `h2` then `http/1.1`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a client may take to complete the TLS handshake before it is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate chain and private key files of a TLS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM file with the private key of the first certificate (PKCS#8, PKCS#1 or SEC1,
    /// unencrypted).
    pub key: PathBuf,
}

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read TLS {what} file {path}: {source}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("no certificate in {0}: expected one or more PEM \"BEGIN CERTIFICATE\" blocks")]
    NoCertificate(PathBuf),
    /// The certificate file is not valid PEM.
    #[error("invalid certificate file {path}: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        reason: String,
    },
    /// The key file holds no PEM private key.
    #[error(
        "no private key in {0}: expected an unencrypted PEM \"BEGIN PRIVATE KEY\", \
         \"BEGIN EC PRIVATE KEY\" or \"BEGIN RSA PRIVATE KEY\" block"
    )]
    NoKey(PathBuf),
    /// The key file holds something that is not a usable private key.
    #[error("invalid private key in {path}: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the key's content).
        reason: String,
    },
    /// The private key is not the key of the (first) certificate.
    #[error("the private key in {key} does not match the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the configuration for another reason (for example a certificate it
    /// cannot parse).
    #[error("cannot use the certificate in {cert}: {source}")]
    Rustls {
        /// The certificate file.
        cert: PathBuf,
        /// The reason.
        source: rustls::Error,
    },
}

/// Reads `files` and builds the server's rustls configuration: AWS-LC provider, TLS 1.3 and
/// 1.2, ALPN `h2` and `http/1.1`, no client certificates.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certificates(&files.cert)?;
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsError::Rustls {
            cert: files.cert.clone(),
            source,
        })?
        .with_no_client_auth();
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|source| match source {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                }
            }
            // The provider could not load the key: unsupported algorithm or bad encoding.
            rustls::Error::General(reason) => TlsError::BadKey {
                path: files.key.clone(),
                reason,
            },
            source => TlsError::Rustls {
                cert: files.cert.clone(),
                source,
            },
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("certificate", path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            reason: describe(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = zeroize::Zeroizing::new(read("key", path)?);
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey(path.to_path_buf()),
        e => TlsError::BadKey {
            path: path.to_path_buf(),
            reason: describe(&e),
        },
    })
}

/// A PEM error in words, without the file's content (which may be key material).
fn describe(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "malformed PEM BEGIN line".into(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        pem::Error::NoItemsFound => "nothing of the expected kind".into(),
        pem::Error::SectionTooLarge => "a PEM block is too large".into(),
        _ => "not valid PEM".into(),
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then shuts down
/// gracefully like plain HTTP does: no new connections, requests in flight finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )
    .handshake_timeout(HANDSHAKE_TIMEOUT);
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle.clone())
        .serve(app.into_make_service());
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = shutdown => handle.graceful_shutdown(None),
    }
    server.await
}
