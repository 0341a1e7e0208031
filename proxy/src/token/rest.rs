//! `token_source = rest:URL`: libvirt-console-proxy's external resolver protocol.
//!
//! For each lookup the proxy sends `GET URL/token/<token>`. Only well-formed tokens get here
//! ([`format`](super::format): unreserved characters only, never `.` or `..`), so the token is
//! one path segment as it is; it is still percent-encoded (every byte outside `A-Z a-z 0-9 - .
//! _ ~`), as a second guard should this resolver be used without that check. The resolver
//! answers:
//!
//! - `200` with one console object in JSON (see [`console_from_json_text`]): found;
//! - `404`: unknown token;
//! - anything else (redirects are not followed): [`TokenError::Unavailable`] naming the status.
//!
//! A resolver that cannot be reached answers [`TokenError::Unavailable`] at once; one that does
//! not answer within `timeout` answers [`TokenError::Timeout`]. Lookups run on the session's own
//! thread and share nothing but an idle-connection pool, so a hanging resolver holds up only the
//! sessions waiting on it. A resolver that hands out a `single_use` console must itself not hand
//! it out again (this proxy also refuses it a second time, see [`lifetime`](super::lifetime)).
//! The protocol has no separate consume step: such a resolver uses the token up when it
//! answers, even when this proxy then refuses the request (no driver, console unreachable).
//!
//! Section `[token_rest]`:
//! - `ca_certificate`: PEM CA file the resolver's certificate must chain to. Default: the
//!   system's roots.
//! - `client_certificate`, `client_key`: PEM client certificate chain and key, for resolvers
//!   that require one. Default: none.
//! - `timeout`: seconds for one lookup, connecting included; at most `connect_timeout`.
//!   Default 3.
//! - `cache_seconds`: keep positive answers this long and answer from memory (never single-use
//!   ones). Default 0 (off).
//! - `insecure`: must be `true` for an `http://` URL (tokens and console passwords then cross
//!   the network in cleartext). Default false.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
use url::Url;

use super::json::console_from_json_text;
use super::section::{Section, TlsFiles};
use super::{token_digest, token_hash, Console, TokenError, TokenSource};

/// `[token_rest] timeout` default, in seconds.
pub const DEFAULT_TIMEOUT: f64 = 3.0;

/// The largest resolver reply read; a console object is a few hundred bytes.
const MAX_REPLY: u64 = 64 * 1024;

/// Cached answers kept at most; beyond it, stale ones are dropped, then all.
const MAX_CACHED: usize = 10_000;

/// Bytes escaped in the token's path segment: everything but RFC 3986's unreserved characters.
const TOKEN_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Keys of `[token_rest]`.
const KEYS: &[&str] = &[
    "ca_certificate",
    "client_certificate",
    "client_key",
    "timeout",
    "cache_seconds",
    "insecure",
];

/// A `rest:URL` token source.
pub struct RestResolver {
    /// The resolver's base URL, without a trailing `/`.
    base: String,
    agent: ureq::Agent,
    timeout: Duration,
    cache_for: Duration,
    cache: Mutex<HashMap<[u8; 32], (Console, Instant)>>,
}

impl RestResolver {
    /// Checks the URL and reads `[token_rest]` (certificates included); does not contact the
    /// resolver.
    pub fn open(url: &str, ini: &ini::Ini) -> Result<Self, TokenError> {
        let section = Section::new(ini, "token_rest", KEYS)?;
        let bad_url =
            |detail: &str| TokenError::Config(format!("token_source rest:{url}: {detail}"));
        let parsed = Url::parse(url.trim()).map_err(|e| bad_url(&e.to_string()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if section.flag("insecure", false)? => {}
            "http" => return Err(bad_url("plain http needs [token_rest] insecure = true")),
            _ => return Err(bad_url("must be an http:// or https:// URL")),
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad_url("must not have a query or fragment"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad_url(
                "must not carry credentials; use a client certificate",
            ));
        }
        let timeout = section.lookup_timeout(ini, DEFAULT_TIMEOUT)?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .tls_config(tls_config(&section.tls_files()?, &section)?)
            .build()
            .new_agent();
        Ok(Self {
            base: parsed.as_str().trim_end_matches('/').to_string(),
            agent,
            timeout,
            cache_for: section.seconds("cache_seconds", 0.0)?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The lookup URL for `token`.
    fn token_url(&self, token: &str) -> String {
        format!(
            "{}/token/{}",
            self.base,
            utf8_percent_encode(token, TOKEN_SEGMENT)
        )
    }

    fn ask(&self, token: &str) -> Result<Console, TokenError> {
        let mut reply = self
            .agent
            .get(self.token_url(token))
            .call()
            .map_err(|e| self.failure(e))?;
        match reply.status().as_u16() {
            200 => {}
            404 => return Err(TokenError::Unknown),
            status => {
                return Err(TokenError::Unavailable(format!(
                    "resolver {} answered HTTP {status}",
                    self.base
                )))
            }
        }
        let body = reply
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .map_err(|e| self.failure(e))?;
        let malformed = |detail: String| TokenError::Malformed {
            location: format!(
                "reply of resolver {} for token hash {}",
                self.base,
                token_hash(token)
            ),
            detail,
        };
        console_from_json_text(&body).map_err(malformed)
    }

    /// Maps a client error to a [`TokenError`] without repeating the URL (it holds the token).
    fn failure(&self, e: ureq::Error) -> TokenError {
        use std::io::ErrorKind;
        match e {
            ureq::Error::Timeout(_) => TokenError::Timeout(self.timeout),
            ureq::Error::Io(io)
                if matches!(io.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
            {
                TokenError::Timeout(self.timeout)
            }
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                TokenError::Unavailable(format!("resolver {}: cannot build the request", self.base))
            }
            other => TokenError::Unavailable(format!("resolver {}: {other}", self.base)),
        }
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Console> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (console, at) = cache.get(digest)?;
        (at.elapsed() < self.cache_for).then(|| console.clone())
    }

    fn remember(&self, digest: [u8; 32], console: &Console) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (_, at)| at.elapsed() < self.cache_for);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(digest, (console.clone(), Instant::now()));
    }
}

impl TokenSource for RestResolver {
    fn lookup(&self, token: &str) -> Result<Console, TokenError> {
        let digest = (!self.cache_for.is_zero()).then(|| token_digest(token));
        if let Some(console) = digest.as_ref().and_then(|d| self.cached(d)) {
            return Ok(console);
        }
        let result = self.ask(token);
        match (&result, digest) {
            (Ok(console), Some(digest)) if !console.single_use => self.remember(digest, console),
            (Err(e), _) => log::debug!(
                "resolver {}: token hash {}: {e}",
                self.base,
                token_hash(token)
            ),
            _ => {}
        }
        result
    }

    fn describe(&self) -> String {
        format!("rest:{}", self.base)
    }
}

/// ureq's TLS settings from the section's files, on the ring provider rustls already uses here.
fn tls_config(files: &TlsFiles, section: &Section) -> Result<TlsConfig, TokenError> {
    let roots: Vec<Certificate<'static>> = if files.ca.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            return Err(section.invalid(
                "ca_certificate",
                &format!(
                    "not set, and no system CA certificates were found ({:?})",
                    found.errors
                ),
            ));
        }
        found
            .certs
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect()
    } else {
        files
            .ca
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect()
    };
    let client = match &files.client {
        None => None,
        Some(id) => {
            let chain: Vec<Certificate<'static>> = id
                .chain
                .iter()
                .map(|c| Certificate::from_der(c).to_owned())
                .collect();
            let key = PrivateKey::from_pem(&id.key_pem)
                .map_err(|e| section.invalid("client_key", &e.to_string()))?;
            Some(ClientCert::new_with_certs(&chain, key))
        }
    };
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .client_cert(client)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(url: &str, conf: &str) -> Result<RestResolver, TokenError> {
        RestResolver::open(url, &ini::Ini::load_from_str(conf).unwrap())
    }

    #[test]
    fn tokens_are_escaped_into_one_path_segment() {
        let r = resolver("http://127.0.0.1:1/api/", "[token_rest]\ninsecure = true\n").unwrap();
        assert_eq!(
            r.token_url("a/b?c=d#e f~g.h_i-j%"),
            "http://127.0.0.1:1/api/token/a%2Fb%3Fc%3Dd%23e%20f~g.h_i-j%25"
        );
        assert_eq!(r.describe(), "rest:http://127.0.0.1:1/api");
    }

    #[test]
    fn bad_urls_are_refused_at_open() {
        let cases = [
            (
                "http://h/",
                "",
                "plain http needs [token_rest] insecure = true",
            ),
            ("ftp://h/", "", "must be an http:// or https:// URL"),
            ("https://h/?x=1", "", "must not have a query"),
            ("https://u:p@h/", "", "must not carry credentials"),
            (
                "https://h/",
                "[token_rest]\nclient_key = /nonexistent\n",
                "[token_rest] client_key: cannot read",
            ),
        ];
        for (url, conf, expected) in cases {
            let err = resolver(url, conf).err().unwrap().to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
    }
}
