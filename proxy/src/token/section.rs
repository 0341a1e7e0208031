//! Reading a token source's INI section (`[tokens]`, `[token_rest]`, `[token_redis]`): known keys
//! only, seconds, file paths, and the rule that a lookup's own timeout fits inside
//! `connect_timeout`, which bounds the whole lookup-and-connect phase of a session.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TokenError;
use crate::config::DEFAULT_CONNECT_TIMEOUT_SECS;

/// One section of the configuration, with its keys checked against the ones the source reads.
pub(crate) struct Section<'a> {
    name: &'static str,
    props: Option<&'a ini::Properties>,
}

impl<'a> Section<'a> {
    /// The section `[name]`; a key not in `known` is refused (most likely a typo).
    pub(crate) fn new(
        ini: &'a ini::Ini,
        name: &'static str,
        known: &[&str],
    ) -> Result<Self, TokenError> {
        let props = ini.section(Some(name));
        if let Some(props) = props {
            if let Some((key, _)) = props.iter().find(|(k, _)| !known.contains(k)) {
                return Err(TokenError::Config(format!(
                    "unknown key '{key}' in [{name}] (known: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(Self { name, props })
    }

    /// The trimmed value of `key`; an empty value counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.props?
            .get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// `key` as a boolean (`true`/`false`, `yes`/`no`, `1`/`0`), `default` when absent.
    pub(crate) fn flag(&self, key: &str, default: bool) -> Result<bool, TokenError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "yes" | "1") => Ok(true),
            Some("false" | "no" | "0") => Ok(false),
            Some(_) => Err(self.invalid(key, "must be true or false")),
        }
    }

    /// `key` as a non-negative number of seconds, `default` when absent.
    pub(crate) fn seconds(&self, key: &str, default: f64) -> Result<Duration, TokenError> {
        let Some(text) = self.get(key) else {
            return Ok(Duration::from_secs_f64(default));
        };
        text.parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| self.invalid(key, "must be a number of seconds, 0 or more"))
    }

    /// The section's lookup `timeout` (default `default` seconds): more than zero and no more
    /// than `[DEFAULT] connect_timeout`, so that a slow source cannot hold a session past it.
    pub(crate) fn lookup_timeout(
        &self,
        ini: &ini::Ini,
        default: f64,
    ) -> Result<Duration, TokenError> {
        let timeout = self.seconds("timeout", default)?;
        if timeout.is_zero() {
            return Err(self.invalid("timeout", "must be more than 0"));
        }
        let connect = ini
            .general_section()
            .get("connect_timeout")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(Duration::from_secs_f64(DEFAULT_CONNECT_TIMEOUT_SECS));
        if timeout > connect {
            return Err(self.invalid(
                "timeout",
                &format!(
                    "{timeout:?} is longer than connect_timeout ({connect:?}), which bounds the \
                     token lookup"
                ),
            ));
        }
        Ok(timeout)
    }

    /// The contents of the file named by `key`, if the key is set.
    pub(crate) fn file(&self, key: &str) -> Result<Option<Vec<u8>>, TokenError> {
        let Some(path) = self.get(key) else {
            return Ok(None);
        };
        std::fs::read(Path::new(path))
            .map(Some)
            .map_err(|e| self.invalid(key, &format!("cannot read {path}: {e}")))
    }

    /// The TLS material named by `ca_certificate`, `client_certificate` and `client_key`,
    /// parsed and checked (the key must match the certificate) so that a bad file stops
    /// start-up instead of failing every lookup.
    pub(crate) fn tls_files(&self) -> Result<TlsFiles, TokenError> {
        let ca_pem = self.file("ca_certificate")?;
        let ca = match &ca_pem {
            Some(pem) => self.certificates("ca_certificate", pem)?,
            None => Vec::new(),
        };
        let client = match (self.file("client_certificate")?, self.file("client_key")?) {
            (None, None) => None,
            (Some(cert_pem), Some(key_pem)) => {
                let chain = self.certificates("client_certificate", &cert_pem)?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    self.invalid("client_key", &format!("no usable private key: {e}"))
                })?;
                check_identity(&chain, &key)
                    .map_err(|e| self.invalid("client_key", &format!("{e}")))?;
                Some(ClientIdentity {
                    cert_pem,
                    key_pem,
                    chain,
                })
            }
            (Some(_), None) => {
                return Err(self.invalid("client_key", "needed with client_certificate"))
            }
            (None, Some(_)) => {
                return Err(self.invalid("client_certificate", "needed with client_key"))
            }
        };
        Ok(TlsFiles { ca_pem, ca, client })
    }

    fn certificates(
        &self,
        key: &str,
        pem: &[u8],
    ) -> Result<Vec<CertificateDer<'static>>, TokenError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.invalid(key, &format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(self.invalid(key, "holds no PEM certificate"));
        }
        Ok(certs)
    }

    /// A configuration error about `key` in this section.
    pub(crate) fn invalid(&self, key: &str, detail: &str) -> TokenError {
        TokenError::Config(format!("[{}] {key}: {detail}", self.name))
    }
}

/// A section's TLS files (see [`Section::tls_files`]).
pub(crate) struct TlsFiles {
    /// `ca_certificate` as written, if set.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// Its certificates (empty when unset: use the system's roots).
    pub(crate) ca: Vec<CertificateDer<'static>>,
    /// `client_certificate` and `client_key`, if set.
    pub(crate) client: Option<ClientIdentity>,
}

/// A client certificate chain and its key, as PEM and parsed.
pub(crate) struct ClientIdentity {
    /// The chain's PEM file.
    pub(crate) cert_pem: Vec<u8>,
    /// The key's PEM file.
    pub(crate) key_pem: Vec<u8>,
    /// The chain, leaf first.
    pub(crate) chain: Vec<CertificateDer<'static>>,
}

/// Whether rustls accepts `key` for `chain` (the key type is supported and matches the leaf).
fn check_identity(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), rustls::Error> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(chain.to_vec(), key.clone_key())
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ini(text: &str) -> ini::Ini {
        ini::Ini::load_from_str(text).unwrap()
    }

    #[test]
    fn unknown_keys_are_refused() {
        let i = ini("[token_rest]\ntimout = 3\n");
        let err = Section::new(&i, "token_rest", &["timeout"]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "token source configuration: unknown key 'timout' in [token_rest] (known: timeout)"
        );
    }

    #[test]
    fn timeout_must_fit_in_connect_timeout() {
        let i = ini("connect_timeout = 2\n[token_rest]\ntimeout = 3\n");
        let s = Section::new(&i, "token_rest", &["timeout"]).unwrap();
        let err = s.lookup_timeout(&i, 3.0).unwrap_err().to_string();
        assert!(
            err.contains("[token_rest] timeout: 3s is longer than connect_timeout (2s)"),
            "{err}"
        );
        let i = ini("[token_rest]\n");
        let s = Section::new(&i, "token_rest", &["timeout"]).unwrap();
        assert_eq!(s.lookup_timeout(&i, 3.0).unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn seconds_and_flags_say_what_is_wrong() {
        let i = ini("[tokens]\nspice_grace_seconds = soon\ninsecure = maybe\n");
        let s = Section::new(&i, "tokens", &["spice_grace_seconds", "insecure"]).unwrap();
        assert!(s
            .seconds("spice_grace_seconds", 30.0)
            .unwrap_err()
            .to_string()
            .contains("[tokens] spice_grace_seconds: must be a number of seconds"));
        assert!(s.flag("insecure", false).is_err());
        assert_eq!(s.seconds("absent", 30.0).unwrap(), Duration::from_secs(30));
    }
}
