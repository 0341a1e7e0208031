//! Token sources: where a token from the browser is turned into the [`Console`] it opens.
//!
//! Every source (the websockify-style [`file`](mod@file), libvirt-console-proxy's [`json`] file, the
//! [`rest`] resolver and [`redis`]) returns the same [`Console`] and the same [`TokenError`]s, so
//! the rest of the proxy does not know which source it has. [`open`] wraps the source in
//! [`lifetime::Lifetime`], which applies `expires`, `single_use` and the SPICE grace time the
//! same way for all of them. A token is looked up ([`TokenSource::lookup`]) and, if single-use,
//! consumed ([`TokenSource::consume`]) in two steps, so that only a request that gets `101`
//! uses it up. Tokens are secrets: nothing here logs one; use [`token_hash`] in
//! logs.

mod change_watch;
pub mod file;
pub mod format;
pub mod json;
pub mod lifetime;
pub mod redis;
pub mod rest;
mod section;
pub mod target;

use std::fmt;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

pub use consolegate_driver_api::Kind;
pub use target::parse_target;

/// The console a token opens.
#[derive(Clone, PartialEq, Eq)]
pub struct Console {
    /// VNC, SPICE or serial.
    pub kind: Kind,
    /// The hypervisor's name or IP literal (no brackets).
    pub hypervisor: String,
    /// Hypervisor port.
    pub port: u16,
    /// Username for the console (VeNCrypt X509Plain), if any.
    pub username: Option<String>,
    /// Password for the console (VNC password, SPICE ticket), if any. Never logged.
    pub password: Option<String>,
    /// The first connection consumes the token.
    pub single_use: bool,
    /// The token is refused after this time.
    pub expires: Option<SystemTime>,
    /// The driver that must serve this console (`driver` in a console object), among those
    /// loaded; `None`: the first loaded driver for its kind.
    pub driver: Option<String>,
    /// The control plane's opaque fields for the audit lines (JSON, REST and Redis sources).
    pub audit: crate::audit::AuditFields,
}

impl Console {
    /// A console with no credentials and no lifetime limits.
    pub fn new(kind: Kind, hypervisor: impl Into<String>, port: u16) -> Self {
        Self {
            kind,
            hypervisor: hypervisor.into(),
            port,
            username: None,
            password: None,
            single_use: false,
            expires: None,
            driver: None,
            audit: crate::audit::AuditFields::default(),
        }
    }

    /// `host:port`, with IPv6 hosts in brackets, for logs and connecting.
    pub fn address(&self) -> String {
        if self.hypervisor.contains(':') {
            format!("[{}]:{}", self.hypervisor, self.port)
        } else {
            format!("{}:{}", self.hypervisor, self.port)
        }
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|t| now >= t)
    }
}

impl fmt::Debug for Console {
    /// Shows everything but the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("kind", &self.kind)
            .field("address", &self.address())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("single_use", &self.single_use)
            .field("expires", &self.expires)
            .field("audit", &self.audit)
            .finish()
    }
}

/// Why a token did not resolve to a console.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// No console is known for the token. The client gets 404.
    #[error("unknown token")]
    Unknown,
    /// The token's `expires` time has passed. The client gets 404 (as for an unknown token).
    #[error("token expired")]
    Expired,
    /// A single-use token was already consumed. The client gets 404.
    #[error("single-use token already used")]
    AlreadyUsed,
    /// The token itself breaks the token format (see [`mod@format`]); no source was asked. The
    /// client gets 400.
    #[error("malformed token: {0}")]
    BadFormat(format::FormatViolation),
    /// The entry for the token exists but cannot be understood; fix the named entry.
    #[error("malformed token entry at {location}: {detail}")]
    Malformed {
        /// Where the entry is: `FILE:LINE`, a Redis key, a JSON key (never the token itself).
        location: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The source itself is broken or out of reach (file unreadable, resolver down, Redis
    /// refused). The client gets 502; other sessions are unaffected.
    #[error("token source unavailable: {0}")]
    Unavailable(String),
    /// The source did not answer in time. The client gets 504.
    #[error("token source did not answer within {0:?}")]
    Timeout(Duration),
    /// The source's configuration (`token_source`, its INI section, its certificate files) is
    /// wrong; found when the source is opened, so the daemon does not start. Fix the named key.
    #[error("token source configuration: {0}")]
    Config(String),
}

/// Looks tokens up and consumes single-use ones. Implementations are shared by all session
/// threads.
///
/// A session first [looks the token up](TokenSource::lookup), which never consumes it, and
/// [consumes](TokenSource::consume) a single-use token only once everything else has succeeded
/// and the browser is about to get `101`: a refused request (no driver, console unreachable,
/// target not allowed) leaves the token usable.
pub trait TokenSource: Send + Sync {
    /// Resolves `token` to its console. Never consumes anything: a single-use token answers
    /// the same until [`TokenSource::consume`] succeeds for it.
    fn lookup(&self, token: &str) -> Result<Console, TokenError>;

    /// Consumes the single-use `token`, which [`TokenSource::lookup`] resolved to `console`,
    /// atomically: of all callers (across proxies, where the source's store is shared) exactly
    /// one gets `Ok`, the others [`TokenError::AlreadyUsed`]. The default does nothing, for
    /// sources that keep no shared state ([`lifetime::Lifetime`] remembers consumed tokens for
    /// this process).
    fn consume(&self, token: &str, console: &Console) -> Result<(), TokenError> {
        let _ = (token, console);
        Ok(())
    }

    /// Re-reads the source's backing data (on SIGHUP). Sources that read live data do nothing.
    fn reload(&self) -> Result<(), TokenError> {
        Ok(())
    }

    /// A short description for logs, such as `file:/etc/consolegate/tokens`.
    fn describe(&self) -> String;

    /// Whether the store answers now (for `/readyz`), within the source's own timeout. Sources
    /// held in memory (files) are always reachable; Redis is sent a `PING`.
    fn check(&self) -> Result<(), TokenError> {
        Ok(())
    }
}

/// Opens the token source named by the `token_source` setting: `file:PATH`, `json:PATH`,
/// `rest:URL`, `redis://HOST:PORT/DB` or `rediss://HOST:PORT/DB`. `ini` is the whole
/// configuration, for the sources' own sections (`[token_rest]`, `[token_redis]`) and for
/// `[tokens]`, read by [`lifetime::Lifetime`], which wraps every source; outside it,
/// [`format::FormatChecked`] refuses malformed tokens before any lookup.
pub fn open(spec: &str, ini: &ini::Ini) -> Result<Box<dyn TokenSource>, TokenError> {
    let spec = spec.trim();
    let source: Box<dyn TokenSource> = if let Some(path) = spec.strip_prefix("file:") {
        Box::new(file::TokenFile::open(path)?)
    } else if let Some(path) = spec.strip_prefix("json:") {
        Box::new(json::JsonFile::open(path)?)
    } else if let Some(url) = spec.strip_prefix("rest:") {
        Box::new(rest::RestResolver::open(url, ini)?)
    } else if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        Box::new(redis::RedisSource::open(spec, ini)?)
    } else {
        return Err(TokenError::Config(format!(
            "unknown token_source '{spec}' (expected file:PATH, json:PATH, rest:URL, \
             redis://HOST:PORT/DB or rediss://HOST:PORT/DB)"
        )));
    };
    let lifetime = lifetime::Lifetime::new(source, ini)?;
    Ok(Box::new(format::FormatChecked::new(Box::new(lifetime))))
}

/// A short, stable, non-reversible name for a token in logs: the first 12 hex digits of its
/// SHA-256.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The full SHA-256 of a token: a key for in-memory tables that must not hold the token itself.
pub(crate) fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_short_and_stable() {
        assert_eq!(token_hash("secret"), "2bb80d537b1d");
        assert_ne!(token_hash("secret"), token_hash("secreT"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let mut c = Console::new(Kind::Vnc, "::1", 5901);
        c.password = Some("hunter2".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[::1]:5901"), "{shown}");
    }
}
