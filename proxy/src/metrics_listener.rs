//! The second listener, `metrics_listen` (off unless set): `/metrics` (the Prometheus text
//! format of [`crate::metrics`], behind a bearer token when `metrics_token_file` is set),
//! `/healthz` (the process answers) and `/readyz` (it accepts connections, its drivers are
//! loaded and its token store answers). Requests are parsed with `httparse`
//! ([`http_upgrade::read_request`]); each connection gets one answer within
//! [`REQUEST_DEADLINE`] and is closed.
//!
//! Nothing served here names a token, a console address or a password; `/readyz` says which
//! check failed, and the log says why.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use sha2::{Digest, Sha256};

use crate::deadline::DeadlineSocket;
use crate::http_upgrade::{self, Transport};
use crate::session::Shared;

/// How long one request may take, from accept to the last byte of the answer.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Requests served at once; more are closed unanswered.
const MAX_CONCURRENT: usize = 8;
/// The Content-Type of `/metrics` (what `prometheus-client` writes).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsListenerError {
    /// `metrics_listen` could not be bound.
    #[error("cannot listen on metrics_listen {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        error: io::Error,
    },
    /// `metrics_token_file` cannot be read or is empty.
    #[error("metrics_token_file {path}: {detail}")]
    Token {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// The bearer token `/metrics` requires, kept only as its SHA-256.
#[derive(Clone)]
pub struct BearerToken([u8; 32]);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// Reads the token from `path` (surrounding white space ignored; must not be empty).
    pub fn read(path: &Path) -> Result<Self, MetricsListenerError> {
        let fail = |detail: String| MetricsListenerError::Token {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(fail("the file is empty".into()));
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `header` (an `Authorization` value) is `Bearer <the token>`.
    fn admits(&self, header: Option<&[u8]>) -> bool {
        let Some(given) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(given.trim_ascii()).into();
        // Comparing digests: how long the comparison takes says nothing about the token.
        digest == self.0
    }
}

/// Binds `addr` (at start-up, so that a wrong address stops the daemon).
pub fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsListenerError> {
    TcpListener::bind(addr).map_err(|error| MetricsListenerError::Bind { addr, error })
}

/// Serves `listener` on a thread of its own for the life of the process.
pub fn spawn(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: Option<BearerToken>,
) -> io::Result<()> {
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT {
                    busy.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                let (shared, token, done) = (Arc::clone(&shared), token.clone(), Arc::clone(&busy));
                let spawned = std::thread::Builder::new()
                    .name("metrics-request".into())
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        if let Err(e) = answer(stream, &shared, token.as_ref()) {
                            log::debug!("metrics listener: {e}");
                        }
                        done.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    busy.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })?;
    Ok(())
}

/// Reads one request and answers it.
fn answer(stream: TcpStream, shared: &Shared, token: Option<&BearerToken>) -> io::Result<()> {
    let mut sock = DeadlineSocket::new(stream, Some(Instant::now() + REQUEST_DEADLINE));
    let request = match http_upgrade::read_request(&mut sock) {
        Ok(r) => r.request,
        Err(http_upgrade::RequestError::Io(e)) => return Err(e),
        Err(_) => {
            return respond(
                &mut sock,
                StatusCode::BAD_REQUEST,
                "text/plain",
                "malformed request\n",
            )
        }
    };
    if request.method() != http::Method::GET {
        return respond(
            &mut sock,
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n",
        );
    }
    match request.uri().path() {
        "/healthz" => respond(&mut sock, StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            let (ready, body) = readiness(shared);
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond(&mut sock, status, "text/plain", &body)
        }
        "/metrics" => {
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            if token.is_some_and(|t| !t.admits(authorization)) {
                return respond(
                    &mut sock,
                    StatusCode::UNAUTHORIZED,
                    "text/plain",
                    "a bearer token is required\n",
                );
            }
            let sessions = &shared.sessions;
            let body = shared
                .metrics
                .encode(sessions.active(), sessions.handshaking());
            respond(&mut sock, StatusCode::OK, OPENMETRICS, &body)
        }
        _ => respond(
            &mut sock,
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n",
        ),
    }
}

/// `/readyz`: whether the daemon accepts connections, has drivers and reaches its token store;
/// the body has one line per check.
pub fn readiness(shared: &Shared) -> (bool, String) {
    let accepting = shared.accepting.load(Ordering::Acquire);
    let drivers = shared.drivers.drivers().len();
    let store = shared.tokens.check();
    if let Err(e) = &store {
        log::warn!("readyz: the token store does not answer: {e}");
    }
    let line = |ok: bool, what: &str| format!("{} {what}\n", if ok { "ok" } else { "FAIL" });
    let body = [
        line(accepting, "accepting connections"),
        line(drivers > 0, &format!("drivers loaded: {drivers}")),
        line(store.is_ok(), "token store reachable"),
    ]
    .concat();
    (accepting && drivers > 0 && store.is_ok(), body)
}

fn respond(
    sock: &mut DeadlineSocket,
    status: StatusCode,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let mut head =
        http_upgrade::response_head(status, content_type, body.len() as u64, Transport::Plain);
    if status == StatusCode::UNAUTHORIZED {
        // After the status line.
        head = head.replacen("\r\n", "\r\nWWW-Authenticate: Bearer\r\n", 1);
    }
    sock.write_all(head.as_bytes())?;
    sock.write_all(body.as_bytes())?;
    sock.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let dir = consolegate_tests::scratch::TempDir::new("metrics-token");
        let path = dir.write("token", "s3cret\n");
        let token = BearerToken::read(&path).unwrap();
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Basic s3cret")));
        assert!(!token.admits(None));
        let empty = dir.write("empty", " \n");
        assert!(BearerToken::read(&empty)
            .unwrap_err()
            .to_string()
            .contains("the file is empty"));
    }
}
