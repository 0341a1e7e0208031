//! The browser-facing side of start-up: binding the `listen` addresses, and the TLS
//! certificate for wss, which SIGHUP reloads without dropping sessions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the listening side could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// A `listen` address could not be bound (in use, or not an address of this host).
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        error: std::io::Error,
    },
    /// Neither a certificate nor `listen_insecure` is set.
    #[error("no ssl_certificate and ssl_key: set them to serve wss, or set listen_insecure = true to serve plain ws")]
    NoCertificate,
    /// The certificate or key file is unreadable or not PEM.
    #[error("cannot use {}: {detail}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the certificate and key (for example, they do not match).
    #[error("the certificate and key cannot be used together: {0}")]
    Tls(String),
}

/// Binds every address (non-blocking, for the accept loop's poll).
pub fn bind(addrs: &[SocketAddr]) -> Result<Vec<mio::net::TcpListener>, ListenerError> {
    addrs
        .iter()
        .map(|addr| {
            mio::net::TcpListener::bind(*addr)
                .map_err(|error| ListenerError::Bind { addr: *addr, error })
        })
        .collect()
}

/// The wss certificate: the current rustls config, replaced on reload.
pub struct TlsIdentity {
    certificate: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsIdentity {
    /// Reads the certificate chain and key.
    pub fn load(certificate: &Path, key: &Path) -> Result<Self, ListenerError> {
        let config = server_config(certificate, key)?;
        Ok(Self {
            certificate: certificate.into(),
            key: key.into(),
            current: RwLock::new(config),
        })
    }

    /// Re-reads the files; on failure the old certificate stays in use.
    pub fn reload(&self) -> Result<(), ListenerError> {
        let config = server_config(&self.certificate, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// The config new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }
}

fn server_config(certificate: &Path, key: &Path) -> Result<Arc<ServerConfig>, ListenerError> {
    let pem = |path: &Path, detail: String| ListenerError::Pem {
        path: path.into(),
        detail,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| pem(certificate, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(certificate, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem(certificate, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ListenerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ListenerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The server's order picks the suite (the provider's: AES-256-GCM first, every suite AEAD
    // with ECDHE), not the client's; TLS audits (testssl's `cipher_order`) flag a server
    // without one.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}
