//! What the proxy counts, in the Prometheus/OpenMetrics text format (`prometheus-client`):
//! sessions open, started and ended, refusals by cause, bytes each way, handshake and token
//! lookup latency, token-store errors, the drivers loaded and the certificates' expiry.
//! [`crate::metrics_listener`] serves it on `metrics_listen`.
//!
//! No label names a token, a console address or a password: the labels are console kinds,
//! driver names and versions, fixed cause and reason words, and certificate file paths.
//! Every metric, its labels and what to alert on: `docs/OPERATIONS.md`.

use std::path::Path;
use std::time::Duration;

use consolegate_driver_api::abi::CgStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::driver::DriverRegistry;
use crate::error::SessionError;
use crate::relay::RelayEnd;
use crate::token::TokenError;

/// A session's console kind and driver.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindDriver {
    /// `vnc`, `spice` or `serial`.
    pub kind: String,
    /// The driver's name.
    pub driver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ended {
    kind: String,
    driver: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Cause {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreError {
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriverInfo {
    driver: String,
    version: String,
    abi: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Certificate {
    /// `wss`, or the configuration section whose `client_certificate` it is.
    usage: String,
    file: String,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    sessions_open: Family<KindDriver, Gauge>,
    sessions_started: Family<KindDriver, Counter>,
    sessions_ended: Family<Ended, Counter>,
    refusals: Family<Cause, Counter>,
    bytes: Family<Direction, Counter>,
    handshake_seconds: Histogram,
    token_lookup_seconds: Histogram,
    token_store_errors: Family<StoreError, Counter>,
    connections: Gauge,
    handshaking: Gauge,
    drivers: Family<DriverInfo, Gauge>,
    certificate_expiry: Family<Certificate, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `consolegate_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("consolegate");
        let m = Self {
            sessions_open: Family::default(),
            sessions_started: Family::default(),
            sessions_ended: Family::default(),
            refusals: Family::default(),
            bytes: Family::default(),
            // 5 ms to about 20 s.
            handshake_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 13)),
            // 0.5 ms to about 4 s.
            token_lookup_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            token_store_errors: Family::default(),
            connections: Gauge::default(),
            handshaking: Gauge::default(),
            drivers: Family::default(),
            certificate_expiry: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "sessions_open",
            "Sessions relaying now, by console kind and driver",
            m.sessions_open.clone(),
        );
        registry.register(
            "sessions_started",
            "Sessions that finished both handshakes and started relaying",
            m.sessions_started.clone(),
        );
        registry.register(
            "sessions_ended",
            "Relaying sessions that ended, by end reason",
            m.sessions_ended.clone(),
        );
        registry.register(
            "refusals",
            "Connections refused or failed before relaying, by cause",
            m.refusals.clone(),
        );
        registry.register(
            "relayed_bytes",
            "Bytes relayed, up (browser to console) and down, counted when a session ends",
            m.bytes.clone(),
        );
        registry.register(
            "handshake_seconds",
            "Time from accept to relaying: TLS, request, token, console connection, driver handshake",
            m.handshake_seconds.clone(),
        );
        registry.register(
            "token_lookup_seconds",
            "Time the token source took to look a token up",
            m.token_lookup_seconds.clone(),
        );
        registry.register(
            "token_store_errors",
            "Token lookups and consumes that failed in the store itself, by error",
            m.token_store_errors.clone(),
        );
        registry.register(
            "connections",
            "Live connections, handshakes included (max_connections bounds it)",
            m.connections.clone(),
        );
        registry.register(
            "connections_handshaking",
            "Connections not yet upgraded (max_handshakes bounds it)",
            m.handshaking.clone(),
        );
        registry.register(
            "driver_loaded",
            "Drivers loaded (value 1), with their version and ABI version",
            m.drivers.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When each certificate in use expires (Unix time): the wss certificate, the drivers' client certificates",
            m.certificate_expiry.clone(),
        );
        Self { registry, ..m }
    }

    /// The text exposition (OpenMetrics 1.0, which Prometheus reads), with the connection
    /// gauges set to `connections` and `handshaking` first.
    pub fn encode(&self, connections: usize, handshaking: usize) -> String {
        self.connections.set(connections as i64);
        self.handshaking.set(handshaking as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A session finished both handshakes after `handshake`: counted as started and open until
    /// the returned guard is ended.
    pub fn session_started(&self, labels: KindDriver, handshake: Duration) -> OpenSession<'_> {
        self.handshake_seconds.observe(handshake.as_secs_f64());
        self.sessions_started.get_or_create(&labels).inc();
        self.sessions_open.get_or_create(&labels).inc();
        OpenSession {
            metrics: self,
            labels,
            reason: "client_error",
        }
    }

    /// A connection refused or failed before relaying, for `error`'s cause (a browser that just
    /// went away is not counted).
    pub fn refused(&self, error: &SessionError) {
        if let Some(cause) = refusal_cause(error) {
            self.refused_for(cause);
        }
    }

    /// A refusal for `cause` (one of [`refusal_cause`]'s words).
    pub fn refused_for(&self, cause: &'static str) {
        self.refusals.get_or_create(&Cause { cause }).inc();
    }

    /// A token lookup that took `took` and ended as `result`.
    pub fn token_lookup<T>(&self, took: Duration, result: &Result<T, TokenError>) {
        self.token_lookup_seconds.observe(took.as_secs_f64());
        if let Err(e) = result {
            self.token_store_error(e);
        }
    }

    /// Counts `e` if it is the store's failure (not the token's).
    pub fn token_store_error(&self, e: &TokenError) {
        let error = match e {
            TokenError::Unavailable(_) => "unavailable",
            TokenError::Timeout(_) => "timeout",
            TokenError::Malformed { .. } => "malformed_entry",
            _ => return,
        };
        self.token_store_errors
            .get_or_create(&StoreError { error })
            .inc();
    }

    /// Records the loaded drivers.
    pub fn drivers_loaded(&self, drivers: &DriverRegistry) {
        for d in drivers.drivers() {
            self.drivers
                .get_or_create(&DriverInfo {
                    driver: d.name().into(),
                    version: d.version().into(),
                    abi: consolegate_driver_api::abi::CG_ABI_VERSION,
                })
                .set(1);
        }
    }

    /// Reads the expiry of every certificate `config` uses (at start and after SIGHUP): the
    /// wss `ssl_certificate` and each section's `client_certificate`. A file that cannot be
    /// read is logged and left out.
    pub fn read_certificates(&self, config: &Config) {
        self.certificate_expiry.clear();
        let mut files: Vec<(String, String)> = Vec::new();
        if let Some(cert) = &config.ssl_certificate {
            files.push(("wss".into(), cert.display().to_string()));
        }
        for (section, props) in config.ini.iter() {
            let Some(section) = section else { continue };
            for (key, value) in props.iter() {
                if key == "client_certificate" && !value.trim().is_empty() {
                    files.push((section.to_string(), value.trim().to_string()));
                }
            }
        }
        for (usage, file) in files {
            match certificate_expiry(Path::new(&file)) {
                Ok(not_after) => {
                    self.certificate_expiry
                        .get_or_create(&Certificate { usage, file })
                        .set(not_after);
                }
                Err(e) => log::warn!("metrics: cannot read the expiry of {file}: {e}"),
            }
        }
    }
}

/// A relaying session in the metrics: ended (open gauge down, ended counter up) when dropped,
/// with the reason set by [`OpenSession::end`] (`client_error` if none was).
pub struct OpenSession<'a> {
    metrics: &'a Metrics,
    labels: KindDriver,
    reason: &'static str,
}

impl OpenSession<'_> {
    /// How the relay ended, and the bytes it moved.
    pub fn end(&mut self, end: &RelayEnd, up: u64, down: u64) {
        self.reason = end_reason(end);
        let bytes = |direction| {
            self.metrics
                .bytes
                .get_or_create(&Direction { direction })
                .clone()
        };
        bytes("up").inc_by(up);
        bytes("down").inc_by(down);
    }
}

impl Drop for OpenSession<'_> {
    fn drop(&mut self) {
        self.metrics.sessions_open.get_or_create(&self.labels).dec();
        self.metrics
            .sessions_ended
            .get_or_create(&Ended {
                kind: self.labels.kind.clone(),
                driver: self.labels.driver.clone(),
                reason: self.reason,
            })
            .inc();
    }
}

/// The `reason` label of `consolegate_sessions_ended_total`.
pub fn end_reason(end: &RelayEnd) -> &'static str {
    match end {
        RelayEnd::ClientClosed => "client_closed",
        RelayEnd::ConsoleClosed => "console_closed",
        RelayEnd::IdleTimeout => "idle_timeout",
        RelayEnd::Shutdown => "shutdown",
        RelayEnd::MessageTooBig(_) => "message_too_big",
        RelayEnd::ClientProtocol(_) => "client_protocol",
        RelayEnd::ClientError(_) => "client_error",
        RelayEnd::ConsoleError(_) => "console_error",
    }
}

/// The `cause` label of `consolegate_refusals_total` for a session that failed with `error`
/// before relaying; `None` when the browser just went away.
pub fn refusal_cause(error: &SessionError) -> Option<&'static str> {
    Some(match error {
        SessionError::BadRequest(_)
        | SessionError::HeadTooLarge
        | SessionError::BadUpgrade(_)
        | SessionError::NotUpgrade
        | SessionError::NoToken => "bad_request",
        SessionError::OriginRefused(_) => "origin",
        SessionError::Token(e) => match e {
            TokenError::Unknown => "token_unknown",
            TokenError::Expired => "token_expired",
            TokenError::AlreadyUsed => "token_used",
            TokenError::BadFormat(_) => "token_malformed",
            TokenError::Timeout(_) => "timeout",
            _ => "token_store",
        },
        SessionError::NoDriver(_) | SessionError::DriverNotLoaded { .. } => "no_driver",
        SessionError::TargetNotAllowed(_) => "target_not_allowed",
        SessionError::ConsoleUnreachable { .. } => "console_connect",
        SessionError::ConsoleTimeout | SessionError::DriverHung { .. } => "timeout",
        SessionError::Limit(_) => "limit",
        SessionError::ProxyHeader(_) => "proxy_protocol",
        SessionError::Driver { failure, .. } => match failure.status {
            CgStatus::TLS => "tls",
            CgStatus::AUTH => "console_auth",
            CgStatus::PROTOCOL | CgStatus::REFUSED | CgStatus::UNSUPPORTED => "console_protocol",
            CgStatus::TIMEOUT => "timeout",
            CgStatus::IO => "console_connect",
            _ => "driver",
        },
        // A client that closed before finishing TLS (a TCP check, a browser gone) went away.
        SessionError::ClientTls(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        SessionError::ClientTls(_) => "client_tls",
        SessionError::Client(_) => return None,
    })
}

/// The `notAfter` of the first certificate in the PEM file at `path`, as Unix time.
pub fn certificate_expiry(path: &Path) -> Result<i64, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    Ok(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_open_until_its_guard_drops() {
        let m = Metrics::new();
        let labels = KindDriver {
            kind: "vnc".into(),
            driver: "noop".into(),
        };
        {
            let mut open = m.session_started(labels.clone(), Duration::from_millis(30));
            let text = m.encode(1, 0);
            assert!(
                text.contains(r#"consolegate_sessions_open{kind="vnc",driver="noop"} 1"#),
                "{text}"
            );
            open.end(&RelayEnd::ConsoleClosed, 10, 20);
        }
        m.refused(&SessionError::Token(TokenError::Expired));
        let text = m.encode(0, 0);
        for line in [
            r#"consolegate_sessions_open{kind="vnc",driver="noop"} 0"#,
            r#"consolegate_sessions_started_total{kind="vnc",driver="noop"} 1"#,
            r#"consolegate_sessions_ended_total{kind="vnc",driver="noop",reason="console_closed"} 1"#,
            r#"consolegate_relayed_bytes_total{direction="up"} 10"#,
            r#"consolegate_relayed_bytes_total{direction="down"} 20"#,
            r#"consolegate_refusals_total{cause="token_expired"} 1"#,
            "consolegate_handshake_seconds_count 1",
            "consolegate_connections 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
