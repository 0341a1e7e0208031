//! The shared TLS keys of a driver's INI section (for example `[console_proxy_tls]`) as a
//! typed [`TlsOptions`].

use std::path::PathBuf;

use consolegate_driver_api::Options;
use rustls::pki_types::ServerName;

use crate::error::TlsConfigError;

/// INI key: PEM bundle of the CA(s) that sign the hypervisors' certificates. Required.
pub const KEY_CA_CERTIFICATE: &str = "ca_certificate";
/// INI key: PEM certificate (chain) the proxy presents to the hypervisor. Optional, with
/// [`KEY_CLIENT_KEY`].
pub const KEY_CLIENT_CERTIFICATE: &str = "client_certificate";
/// INI key: PEM private key of [`KEY_CLIENT_CERTIFICATE`].
pub const KEY_CLIENT_KEY: &str = "client_key";
/// INI key: the name the hypervisor's certificate must carry. Defaults to the session's host.
pub const KEY_SERVER_NAME: &str = "server_name";

/// The shared TLS options of one INI section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The section they were read from (for messages).
    pub section: String,
    /// `ca_certificate`: the only trust anchors (the system's roots are never used).
    pub ca_certificate: PathBuf,
    /// `client_certificate` + `client_key`, if set. Defaults to none (a warning is logged: a
    /// hypervisor that verifies clients then refuses every session).
    pub client_identity: Option<ClientIdentity>,
    /// `server_name`: the name checked against the hypervisor's certificate. Defaults to the
    /// session's host; an IP literal is matched against the certificate's IP SANs.
    pub server_name: Option<ServerName<'static>>,
}

/// The certificate and key the proxy presents to the hypervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// `client_certificate`: PEM certificate, optionally followed by intermediates.
    pub certificate: PathBuf,
    /// `client_key`: PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsOptions {
    /// Reads the shared TLS keys of `section`. Empty values count as unset.
    pub fn from_options(options: &Options, section: &str) -> Result<Self, TlsConfigError> {
        let get = |key: &str| {
            options
                .get(section, key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };

        let ca_certificate = get(KEY_CA_CERTIFICATE).ok_or_else(|| TlsConfigError::MissingKey {
            section: section.to_owned(),
            key: KEY_CA_CERTIFICATE,
            hint: "the PEM file of the CA that signs the hypervisors' certificates",
        })?;

        let incomplete = |present, missing| TlsConfigError::IncompleteClientIdentity {
            section: section.to_owned(),
            present,
            missing,
        };
        let client_identity = match (get(KEY_CLIENT_CERTIFICATE), get(KEY_CLIENT_KEY)) {
            (Some(certificate), Some(key)) => Some(ClientIdentity {
                certificate: certificate.into(),
                key: key.into(),
            }),
            (Some(_), None) => return Err(incomplete(KEY_CLIENT_CERTIFICATE, KEY_CLIENT_KEY)),
            (None, Some(_)) => return Err(incomplete(KEY_CLIENT_KEY, KEY_CLIENT_CERTIFICATE)),
            (None, None) => {
                log::warn!(
                    "[{section}] sets neither {KEY_CLIENT_CERTIFICATE} nor {KEY_CLIENT_KEY}: the \
                     proxy presents no client certificate, and a hypervisor that verifies \
                     clients (QEMU's default, verify-peer=on) will close every session"
                );
                None
            }
        };

        let server_name = get(KEY_SERVER_NAME)
            .map(|value| {
                ServerName::try_from(value.to_owned()).map_err(|_| {
                    TlsConfigError::InvalidServerName {
                        section: section.to_owned(),
                        value: value.to_owned(),
                    }
                })
            })
            .transpose()?;

        Ok(Self {
            section: section.to_owned(),
            ca_certificate: ca_certificate.into(),
            client_identity,
            server_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Options {
        Options::new(
            pairs
                .iter()
                .map(|(k, v)| ("tls".to_owned(), k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn reads_all_keys() {
        let o = TlsOptions::from_options(
            &options(&[
                ("ca_certificate", "/ca.pem"),
                ("client_certificate", " /c.pem "),
                ("client_key", "/k.pem"),
                ("server_name", "10.0.0.1"),
            ]),
            "tls",
        )
        .unwrap();
        assert_eq!(o.ca_certificate, PathBuf::from("/ca.pem"));
        let id = o.client_identity.unwrap();
        assert_eq!(id.certificate, PathBuf::from("/c.pem"));
        assert_eq!(id.key, PathBuf::from("/k.pem"));
        assert!(matches!(o.server_name, Some(ServerName::IpAddress(_))));
    }

    #[test]
    fn missing_ca_names_the_key_and_section() {
        let e = TlsOptions::from_options(&options(&[("ca_certificate", " ")]), "tls").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("[tls] ca_certificate is required"),
            "{e}"
        );
    }

    #[test]
    fn cert_without_key_is_refused() {
        let e = TlsOptions::from_options(
            &options(&[
                ("ca_certificate", "/ca.pem"),
                ("client_certificate", "/c.pem"),
            ]),
            "tls",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "[tls] client_certificate is set but client_key is not: set both or neither"
        );
        let e = TlsOptions::from_options(
            &options(&[("ca_certificate", "/ca.pem"), ("client_key", "/k.pem")]),
            "tls",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("client_key is set but client_certificate is not"),
            "{e}"
        );
    }

    #[test]
    fn neither_cert_nor_key_is_allowed() {
        let o =
            TlsOptions::from_options(&options(&[("ca_certificate", "/ca.pem")]), "tls").unwrap();
        assert_eq!(o.client_identity, None);
        assert_eq!(o.server_name, None);
    }

    #[test]
    fn bad_server_name_is_refused() {
        let e = TlsOptions::from_options(
            &options(&[
                ("ca_certificate", "/ca.pem"),
                ("server_name", "not a name!"),
            ]),
            "tls",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("server_name = \"not a name!\""),
            "{e}"
        );
    }
}
