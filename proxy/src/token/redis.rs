//! `token_source = redis://HOST:PORT/DB` (or `rediss://` for TLS): a Redis key per token, as
//! websockify's TokenRedis reads them, so several proxies can share one store.
//!
//! The key is `[token_redis] prefix` followed by the token. Its value is one of:
//! - a console object in JSON (see [`console_from_json_text`]), such as
//!   `{"type": "vnc", "address": "10.0.0.5:5901", "single_use": true}`;
//! - websockify's `{"host": "10.0.0.5:5901"}`;
//! - a plain target, `10.0.0.5:5901` or `vnc://…`, as in a token file.
//!
//! A lookup is one `GET`; it never consumes. A single-use token is consumed once the session
//! is about to answer `101`, with one `DEL`: Redis answers 1 to exactly one caller, so of many
//! proxies racing on one single-use token exactly one admits it, and a request that is refused
//! (no driver, console unreachable) leaves the key in place. Redis's own expiry (`SET … EX 60`)
//! makes a token unknown when it runs out; `expires` in the JSON is refused as expired, as for
//! every source.
//!
//! Section `[token_redis]`:
//! - `prefix`: prepended to the token to make the key, such as `consolegate:`. Required: with
//!   an empty prefix every key in the database (a session, a cache entry, a lock) would open
//!   whatever console its value names.
//! - `allow_unprefixed_keys_unsafe`: `true` allows an empty `prefix`, for websockify's
//!   bare-key layout while migrating from it. Then the database must hold nothing but tokens;
//!   a warning is logged at start. Default false.
//! - `timeout`: seconds for one lookup, connecting included; at most `connect_timeout`.
//!   Default 3.
//! - `ca_certificate`, `client_certificate`, `client_key`: PEM files for `rediss://` (CA
//!   default: the system's roots; no client certificate by default).
//!
//! A password goes in the URL (`redis://:PASSWORD@host:6379/0`, or `redis://USER:PASSWORD@…`
//! with Redis ACLs); it is never shown in logs.

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use ::redis::{Client, Cmd, Connection, IntoConnectionInfo, RedisConnectionInfo, RedisError};
use consolegate_driver_api::deadline::remaining;
use url::Url;

use super::json::console_from_json_text;
use super::section::Section;
use super::{parse_target, token_hash, Console, TokenError, TokenSource};

/// `[token_redis] timeout` default, in seconds.
pub const DEFAULT_TIMEOUT: f64 = 3.0;

/// Idle connections kept for reuse; more concurrent lookups open (and then close) their own.
const MAX_IDLE: usize = 16;

/// Keys of `[token_redis]`.
const KEYS: &[&str] = &[
    "prefix",
    UNPREFIXED_KEY,
    "timeout",
    "ca_certificate",
    "client_certificate",
    "client_key",
];

/// The `[token_redis]` key that allows an empty `prefix`.
pub const UNPREFIXED_KEY: &str = "allow_unprefixed_keys_unsafe";

/// A `redis://` or `rediss://` token source.
pub struct RedisSource {
    /// Connects without any setup command (no AUTH, SELECT or CLIENT SETINFO): the redis crate
    /// would wait up to the timeout for each of them; [`RedisSource::connect`] sends them
    /// itself within the lookup's deadline.
    client: Client,
    /// `AUTH` arguments from the URL (`[username,] password`), if any.
    auth: Vec<String>,
    /// The database number from the URL.
    db: i64,
    /// The URL without credentials, for logs.
    shown: String,
    prefix: String,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl RedisSource {
    /// Checks the URL and reads `[token_redis]`, then tries to reach Redis once. Redis being
    /// down is only logged: lookups connect again, and answer [`TokenError::Unavailable`] until
    /// it is back.
    pub fn open(url: &str, ini: &ini::Ini) -> Result<Self, TokenError> {
        let section = Section::new(ini, "token_redis", KEYS)?;
        let mut shown = Url::parse(url)
            .map_err(|e| TokenError::Config(format!("token_source: not a valid redis URL: {e}")))?;
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        let shown = shown.to_string();
        let bad = |e: RedisError| TokenError::Config(format!("token_source {shown}: {e}"));
        let info = url.into_connection_info().map_err(bad)?;
        let settings = info.redis_settings();
        let auth: Vec<String> = match settings.password() {
            None => Vec::new(),
            Some(password) => settings
                .username()
                .into_iter()
                .chain([password])
                .map(String::from)
                .collect(),
        };
        let db = settings.db();
        let info = info.set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let tls = section.tls_files()?;
        let client = if url.starts_with("rediss://") {
            install_crypto_provider();
            let certificates = ::redis::TlsCertificates {
                client_tls: tls.client.map(|id| ::redis::ClientTlsConfig {
                    client_cert: id.cert_pem,
                    client_key: id.key_pem,
                }),
                root_cert: tls.ca_pem,
            };
            Client::build_with_tls(info, certificates).map_err(bad)?
        } else if tls.ca_pem.is_some() || tls.client.is_some() {
            return Err(section.invalid(
                "ca_certificate",
                "TLS files are set but token_source is redis:// (use rediss:// for TLS)",
            ));
        } else {
            Client::open(info).map_err(bad)?
        };
        let prefix = key_prefix(&section, &shown)?;
        let source = Self {
            client,
            auth,
            db,
            shown,
            prefix,
            timeout: section.lookup_timeout(ini, DEFAULT_TIMEOUT)?,
            idle: Mutex::new(Vec::new()),
        };
        let deadline = Instant::now() + source.timeout;
        match source.connect(deadline) {
            Ok(connection) => source.give_back(connection),
            Err(e) => log::warn!(
                "{}: not reachable now ({e}); lookups will try again",
                source.shown
            ),
        }
        Ok(source)
    }

    /// Runs the command `name` on `token`'s key within `timeout`. Failures are logged at
    /// debug level with the token's hash.
    fn run<T: ::redis::FromRedisValue>(&self, name: &str, token: &str) -> Result<T, TokenError> {
        let mut cmd = ::redis::cmd(name);
        cmd.arg(format!("{}{token}", self.prefix));
        self.query(&cmd, Instant::now() + self.timeout)
            .inspect_err(|e| {
                log::debug!("{}: token hash {}: {e}", self.shown, token_hash(token));
            })
    }

    /// Runs `cmd` on a pooled or new connection by `deadline`, retrying once on a new
    /// connection when a pooled one turns out to be closed (Redis restarted, idle timeout).
    fn query<T: ::redis::FromRedisValue>(
        &self,
        cmd: &Cmd,
        deadline: Instant,
    ) -> Result<T, TokenError> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let reused = pooled.is_some();
        let mut connection = match pooled {
            Some(c) => c,
            None => self.connect(deadline)?,
        };
        match command(&mut connection, cmd, deadline) {
            Ok(reply) => {
                self.give_back(connection);
                Ok(reply)
            }
            Err(e) if reused && (e.is_connection_dropped() || e.is_connection_refusal()) => {
                let mut connection = self.connect(deadline)?;
                let reply = command(&mut connection, cmd, deadline).map_err(|e| self.failure(e))?;
                self.give_back(connection);
                Ok(reply)
            }
            // The connection is dropped: after a timeout its late reply would answer the next
            // command.
            Err(e) => Err(self.failure(e)),
        }
    }

    /// A new connection, authenticated and on the URL's database, by `deadline`.
    fn connect(&self, deadline: Instant) -> Result<Connection, TokenError> {
        let left = remaining(deadline).ok_or(TokenError::Timeout(self.timeout))?;
        let mut connection = self
            .client
            .get_connection_with_timeout(left)
            .map_err(|e| self.failure(e))?;
        let mut setup = Vec::new();
        if !self.auth.is_empty() {
            setup.push(::redis::cmd("AUTH").arg(&self.auth).clone());
        }
        if self.db != 0 {
            setup.push(::redis::cmd("SELECT").arg(self.db).clone());
        }
        setup.push(::redis::cmd("PING").clone());
        for step in &setup {
            command::<()>(&mut connection, step, deadline).map_err(|e| self.failure(e))?;
        }
        Ok(connection)
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn failure(&self, e: RedisError) -> TokenError {
        if e.is_timeout() {
            TokenError::Timeout(self.timeout)
        } else {
            TokenError::Unavailable(format!("{}: {e}", self.shown))
        }
    }

    /// Where a token's entry is, for errors: the store, the prefix and the token's hash.
    fn location(&self, token: &str) -> String {
        format!(
            "{} key '{}' + token hash {}",
            self.shown,
            self.prefix,
            token_hash(token)
        )
    }
}

impl TokenSource for RedisSource {
    fn lookup(&self, token: &str) -> Result<Console, TokenError> {
        let Some(value) = self.run::<Option<Vec<u8>>>("GET", token)? else {
            return Err(TokenError::Unknown);
        };
        let malformed = |detail: String| TokenError::Malformed {
            location: self.location(token),
            detail,
        };
        console_from_value(&value).map_err(malformed)
    }

    /// Deletes the key; only the caller whose `DEL` removed it gets `Ok`. (Should the
    /// connection drop after Redis ran the `DEL` but before its answer arrived, the retry
    /// finds the key gone: the token is lost, never admitted twice.)
    fn consume(&self, token: &str, _: &Console) -> Result<(), TokenError> {
        match self.run::<i64>("DEL", token)? {
            1 => Ok(()),
            _ => Err(TokenError::AlreadyUsed),
        }
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn check(&self) -> Result<(), TokenError> {
        self.query::<String>(&::redis::cmd("PING"), Instant::now() + self.timeout)
            .map(drop)
    }
}

/// `[token_redis] prefix`, required unless `allow_unprefixed_keys_unsafe = true` (then it must
/// be empty, and a warning is logged).
fn key_prefix(section: &Section, shown: &str) -> Result<String, TokenError> {
    let unprefixed = section.flag(UNPREFIXED_KEY, false)?;
    match (section.get("prefix"), unprefixed) {
        (Some(prefix), false) => Ok(prefix.to_string()),
        (None, false) => Err(section.invalid(
            "prefix",
            &format!(
                "must be set, for example 'prefix = consolegate:' (keys are PREFIX + token); \
                 without one every key in the database acts as a token. To read websockify's \
                 bare keys from a database that holds only tokens, set {UNPREFIXED_KEY} = true"
            ),
        )),
        (Some(_), true) => Err(section.invalid(
            UNPREFIXED_KEY,
            "is true but a prefix is set: remove one of the two",
        )),
        (None, true) => {
            log::warn!(
                "{shown}: [token_redis] {UNPREFIXED_KEY} = true: every key in this database \
                 acts as a token; keep nothing else in it, and set a prefix once migrated"
            );
            Ok(String::new())
        }
    }
}

/// Reads a key's value as a lookup does: a console object or a string target in JSON when it
/// starts with `{` or `"`, else a plain target. The error says what is wrong without repeating
/// a password.
pub fn console_from_value(value: &[u8]) -> Result<Console, String> {
    let text = std::str::from_utf8(value).map_err(|_| "value is not UTF-8".to_string())?;
    if text.trim_start().starts_with(['{', '"']) {
        console_from_json_text(text.as_bytes())
    } else {
        parse_target(text)
    }
}

/// Runs one command, its send and its reply bounded by `deadline`.
fn command<T: ::redis::FromRedisValue>(
    connection: &mut Connection,
    command: &Cmd,
    deadline: Instant,
) -> Result<T, RedisError> {
    let left = remaining(deadline).ok_or_else(|| {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no time left",
        ))
    })?;
    connection.set_read_timeout(Some(left))?;
    connection.set_write_timeout(Some(left))?;
    command.query(connection)
}

/// The redis crate builds its rustls configuration with the process's default crypto provider;
/// make that the ring provider the rest of the proxy uses (if none is installed yet).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another provider is already the default, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_has_no_password() {
        let ini = ini::Ini::load_from_str("[token_redis]\ntimeout = 0.2\nprefix = cg:\n").unwrap();
        let src = RedisSource::open("redis://:hunter2@127.0.0.1:1/3", &ini).unwrap();
        assert_eq!(src.describe(), "redis://127.0.0.1:1/3");
        let err = src.lookup("t").unwrap_err().to_string();
        assert!(
            err.starts_with("token source unavailable: redis://127.0.0.1:1/3: "),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    fn open_with(section: &str) -> Result<RedisSource, TokenError> {
        let text = format!("[token_redis]\ntimeout = 0.1\n{section}");
        RedisSource::open(
            "redis://127.0.0.1:1/0",
            &ini::Ini::load_from_str(&text).unwrap(),
        )
    }

    #[test]
    fn a_prefix_is_required() {
        let err = open_with("").err().unwrap().to_string();
        assert!(
            err.starts_with(
                "token source configuration: [token_redis] prefix: must be set, for example \
                 'prefix = consolegate:'"
            ),
            "{err}"
        );
        assert!(err.contains("allow_unprefixed_keys_unsafe = true"), "{err}");
        assert!(
            open_with("prefix =  \n").is_err(),
            "a blank prefix is no prefix"
        );
        assert_eq!(open_with("prefix = cg:\n").unwrap().prefix, "cg:");
    }

    #[test]
    fn only_the_unsafe_option_allows_bare_keys() {
        let src = open_with("allow_unprefixed_keys_unsafe = true\n").unwrap();
        assert_eq!(src.prefix, "");
        let err = open_with("prefix = cg:\nallow_unprefixed_keys_unsafe = true\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("remove one of the two"), "{err}");
        assert!(open_with("allow_unprefixed_keys_unsafe = false\n").is_err());
    }
}
