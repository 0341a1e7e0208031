//! [`TlsClient`]: the rustls client configuration, built once at `init` from [`TlsOptions`]
//! and shared by every session.

use std::path::Path;
use std::sync::Arc;

use consolegate_driver_api::Options;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use rustls::ClientConnection;

use crate::channel::TlsChannel;
use crate::deadline::Deadline;
use crate::error::{TlsConfigError, TlsError};
use crate::handshake;
use crate::options::{TlsOptions, KEY_CA_CERTIFICATE, KEY_CLIENT_CERTIFICATE, KEY_CLIENT_KEY};
use crate::socket::ConsoleTransport;

/// A TLS client towards hypervisors: TLS 1.2 and 1.3 only, the ring provider, the configured
/// CA bundle as the only trust anchors, and the client certificate if configured. Cheap to
/// clone (the configuration is behind an `Arc`).
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl TlsClient {
    /// Reads the shared TLS keys of `section` and loads the files they name.
    pub fn from_options(options: &Options, section: &str) -> Result<Self, TlsConfigError> {
        Self::new(&TlsOptions::from_options(options, section)?)
    }

    /// Loads the CA bundle and the client identity and builds the rustls configuration.
    pub fn new(options: &TlsOptions) -> Result<Self, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        let ca_path = &options.ca_certificate;
        for (i, cert) in load_certificates(KEY_CA_CERTIFICATE, ca_path)?
            .into_iter()
            .enumerate()
        {
            roots
                .add(cert)
                .map_err(|reason| TlsConfigError::BadCaCertificate {
                    path: ca_path.clone(),
                    index: i + 1,
                    reason,
                })?;
        }

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsConfigError::Provider)?
            .with_root_certificates(roots);
        let config = match &options.client_identity {
            Some(identity) => {
                let chain = load_certificates(KEY_CLIENT_CERTIFICATE, &identity.certificate)?;
                let key = load_private_key(KEY_CLIENT_KEY, &identity.key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|reason| TlsConfigError::BadClientIdentity {
                        certificate: identity.certificate.clone(),
                        key: identity.key.clone(),
                        reason,
                    })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            config: Arc::new(config),
            server_name: options.server_name.clone(),
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name to verify the hypervisor's certificate against: `server_name` if configured,
    /// else the session's `host` (an IP literal becomes an IP-address name).
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => ServerName::try_from(host.to_owned()).map_err(|_| TlsError::NameMismatch {
                expected: host.to_owned(),
                presented: "(not checked: the session host is not a valid DNS name or IP \
                            address; set server_name)"
                    .to_owned(),
            }),
        }
    }
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::ReadFile {
        key,
        path: path.to_owned(),
        source,
    })
}

fn bad_pem(key: &'static str, path: &Path, problem: String) -> TlsConfigError {
    TlsConfigError::BadPem {
        key,
        path: path.to_owned(),
        problem,
    }
}

/// Every `CERTIFICATE` block of a PEM file; at least one.
fn load_certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = read_file(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(key, path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad_pem(
            key,
            path,
            "holds no BEGIN CERTIFICATE block".into(),
        ));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
fn load_private_key(
    key: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let pem = read_file(key, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            bad_pem(key, path, "holds no PRIVATE KEY block".into())
        }
        e => bad_pem(key, path, format!("not a valid PEM private key: {e}")),
    })
}

impl TlsClient {
    /// Runs the TLS handshake with the hypervisor on `socket` (blocking, until `deadline`) and
    /// returns the channel. The hypervisor's certificate is checked against the configured CA
    /// and against `server_name`, else `host`.
    pub fn connect<S: ConsoleTransport>(
        &self,
        host: &str,
        socket: S,
        deadline: Deadline,
    ) -> Result<TlsChannel<S>, TlsError> {
        let name = self.server_name(host)?;
        let conn = ClientConnection::new(self.config().clone(), name.clone())
            .map_err(TlsError::Protocol)?;
        let mut channel = TlsChannel::new(conn, socket);
        let (conn, socket) = channel.parts();
        handshake::run(conn, socket, deadline, &name)?;
        log::debug!(
            "TLS with {host} up: {:?}, {:?}",
            conn.protocol_version(),
            conn.negotiated_cipher_suite().map(|s| s.suite())
        );
        Ok(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ClientIdentity;
    use crate::test_pki::TestPki;

    fn opts(pki: &TestPki, identity: bool) -> TlsOptions {
        TlsOptions {
            section: "tls".into(),
            ca_certificate: pki.path("ca-cert.pem"),
            client_identity: identity.then(|| ClientIdentity {
                certificate: pki.path("client-cert.pem"),
                key: pki.path("client-key.pem"),
            }),
            server_name: None,
        }
    }

    #[test]
    fn builds_with_and_without_a_client_identity() {
        let pki = TestPki::trusted();
        TlsClient::new(&opts(&pki, true)).unwrap();
        let client = TlsClient::new(&opts(&pki, false)).unwrap();
        assert!(matches!(
            client.server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            client.server_name("localhost"),
            Ok(ServerName::DnsName(_))
        ));
    }

    /// The configuration error after `edit` changes the options of the test PKI.
    fn config_error(edit: impl FnOnce(&TestPki, &mut TlsOptions)) -> String {
        let pki = TestPki::trusted();
        let mut o = opts(&pki, true);
        edit(&pki, &mut o);
        TlsClient::new(&o).unwrap_err().to_string()
    }

    fn set_key(o: &mut TlsOptions, key: std::path::PathBuf) {
        if let Some(id) = o.client_identity.as_mut() {
            id.key = key;
        }
    }

    #[test]
    fn missing_file_names_key_and_path() {
        let e = config_error(|p, o| o.ca_certificate = p.path("nope.pem"));
        assert!(
            e.starts_with("ca_certificate = ") && e.contains("nope.pem: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn a_key_file_as_certificate_is_refused() {
        let e = config_error(|p, o| o.ca_certificate = p.path("client-key.pem"));
        assert!(e.contains("holds no BEGIN CERTIFICATE block"), "{e}");
        let e = config_error(|p, o| set_key(o, p.path("client-cert.pem")));
        assert!(
            e.starts_with("client_key = ") && e.contains("holds no PRIVATE KEY block"),
            "{e}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let e = config_error(|p, o| set_key(o, p.path("server-key.pem")));
        assert!(e.contains("unusable as a client identity"), "{e}");
    }
}
