//! What the browser is told and what the log says, in one place: for a [`SessionError`] (why a
//! session ended early) its HTTP refusal before the websocket upgrade, its close code and reason
//! after it, and its log level; for a [`Refusal`] at accept its 503; for how a relay ended
//! ([`RelayEnd`]) its Close frame. (Static files answer their own 304/403/404/405 in
//! `static_files/`; they are not sessions. Drivers that answer the browser in RFB use the same
//! phrases, [`CgStatus::browser_phrase`].)
//!
//! The browser gets a generic reason it can show and, after the upgrade, the session number; it
//! never gets host names, addresses, certificate subjects or configuration hints. The log gets
//! the detail (the error's `Display`), under the same session number.

use std::io;

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::text::truncate_utf8;
use consolegate_driver_api::{browser_reason, Kind};
use http::StatusCode;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::driver::ConnectFailure;
use crate::http_upgrade::{BadUpgrade, RequestError};
use crate::relay::RelayEnd;
use crate::sessions::Refusal;
use crate::token::TokenError;

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The client sent something that is not an HTTP request head.
    #[error("bad request: {0}")]
    BadRequest(#[source] RequestError),
    /// The request head is larger than the proxy reads.
    #[error("request head too large")]
    HeadTooLarge,
    /// A websocket upgrade request the proxy cannot answer with `101`.
    #[error("bad websocket upgrade: {0}")]
    BadUpgrade(BadUpgrade),
    /// A plain HTTP request arrived and no `web` directory is configured.
    #[error("expected a websocket upgrade")]
    NotUpgrade,
    /// The request carries no token.
    #[error("no token in the request (query parameter or cookie 'token')")]
    NoToken,
    /// The `Origin` is neither the proxy's own host nor in `allowed_origins`.
    #[error("origin not allowed: {0}")]
    OriginRefused(String),
    /// The token did not resolve.
    #[error("token refused: {0}")]
    Token(#[from] TokenError),
    /// No configured driver serves the console's kind.
    #[error("no security driver serves {0} consoles")]
    NoDriver(Kind),
    /// The console names a driver (`driver` in its console object) that is not loaded, or
    /// that does not serve its kind. Load it (`console_proxy_security_driver`) or fix the
    /// token issuer.
    #[error(
        "the console names driver '{name}', which is not loaded for {kind} consoles (see \
         console_proxy_security_driver)"
    )]
    DriverNotLoaded {
        /// The driver named.
        name: String,
        /// The console's kind.
        kind: Kind,
    },
    /// The console's target is outside `allowed_targets`; nothing was connected. The detail
    /// (naming the target) is for the log; the browser gets a generic 403.
    #[error("console target refused: {0}")]
    TargetNotAllowed(#[from] crate::allowed_targets::TargetRefused),
    /// The hypervisor refused or reset the TCP connection, or its name did not resolve.
    #[error("console {address} unreachable: {source}")]
    ConsoleUnreachable {
        /// `host:port`, or the host name that did not resolve.
        address: String,
        /// What the connect or the name lookup said.
        source: io::Error,
    },
    /// The hypervisor did not accept the TCP connection within `connect_timeout`.
    #[error("console did not answer within connect_timeout")]
    ConsoleTimeout,
    /// A connection limit refused the connection at accept.
    #[error("refused at accept: {0}")]
    Limit(#[from] Refusal),
    /// The driver's handshake failed.
    #[error("driver '{driver}' failed: {failure} ({status})", status = failure.status.name())]
    Driver {
        /// Driver name.
        driver: String,
        /// Its status and message.
        failure: ConnectFailure,
    },
    /// The driver did not return from its handshake within `handshake_timeout` (a driver bug):
    /// the watchdog shut the session's sockets down.
    #[error("driver '{driver}' ignored the handshake deadline; its session was cut off")]
    DriverHung {
        /// Driver name.
        driver: String,
    },
    /// A connection's PROXY protocol header was missing (from a trusted proxy), unwanted (from
    /// anyone else) or malformed; the connection is closed unanswered.
    #[error("refused: {0}")]
    ProxyHeader(crate::client_address::ProxyHeaderError),
    /// The TLS handshake with the browser failed or ran out of time.
    #[error("TLS handshake with the client failed: {0}")]
    ClientTls(#[source] io::Error),
    /// The browser went away, or its connection failed.
    #[error("client connection failed: {0}")]
    Client(#[source] io::Error),
}

impl From<crate::client_address::ProxyHeaderError> for SessionError {
    /// A socket failure or a close while the header is read is the client's going away (a load
    /// balancer's TCP check); anything else is a refusal.
    fn from(e: crate::client_address::ProxyHeaderError) -> Self {
        match e {
            crate::client_address::ProxyHeaderError::Io(io) => SessionError::Client(io),
            other => SessionError::ProxyHeader(other),
        }
    }
}

/// The longest websocket close reason sent (the protocol allows 123 bytes).
pub const MAX_CLOSE_REASON: usize = 120;

impl SessionError {
    /// The HTTP status and one-line reason sent when the error happens before the upgrade;
    /// `None` when nothing should be sent (the client is gone).
    pub fn http_refusal(&self) -> Option<(StatusCode, &'static str)> {
        Some(match self {
            SessionError::BadRequest(_) => (StatusCode::BAD_REQUEST, "malformed request"),
            SessionError::HeadTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request header fields too large",
            ),
            SessionError::BadUpgrade(e) => (StatusCode::BAD_REQUEST, e.reason()),
            SessionError::NotUpgrade => (StatusCode::BAD_REQUEST, "expected a websocket upgrade"),
            SessionError::NoToken => (
                StatusCode::BAD_REQUEST,
                "no token in the request (query parameter or cookie 'token')",
            ),
            SessionError::OriginRefused(_) => (StatusCode::FORBIDDEN, "origin not allowed"),
            SessionError::Token(e) => match e {
                TokenError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "token source unavailable"),
                TokenError::Timeout(_) => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "token source did not answer in time",
                ),
                TokenError::BadFormat(_) => (StatusCode::BAD_REQUEST, "malformed token"),
                _ => (StatusCode::NOT_FOUND, "unknown or expired token"),
            },
            SessionError::NoDriver(kind) => (
                StatusCode::BAD_GATEWAY,
                match kind {
                    Kind::Vnc => "no security driver serves vnc consoles",
                    Kind::Spice => "no security driver serves spice consoles",
                    Kind::Serial => "no security driver serves serial consoles",
                },
            ),
            SessionError::DriverNotLoaded { .. } => (
                StatusCode::BAD_GATEWAY,
                "the console's driver is not loaded",
            ),
            SessionError::TargetNotAllowed(_) => (StatusCode::FORBIDDEN, "console not allowed"),
            SessionError::ConsoleUnreachable { .. } => {
                (StatusCode::BAD_GATEWAY, "console unreachable")
            }
            SessionError::ConsoleTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "console did not answer in time",
            ),
            SessionError::Limit(_) => (StatusCode::SERVICE_UNAVAILABLE, "too many connections"),
            SessionError::Driver { .. } => (StatusCode::BAD_GATEWAY, "console handshake failed"),
            SessionError::Client(_)
            | SessionError::ClientTls(_)
            | SessionError::ProxyHeader(_)
            | SessionError::DriverHung { .. } => return None,
        })
    }

    /// The Close frame sent when the error happens after the upgrade: 1011 and
    /// [`SessionError::close_reason`].
    pub fn close_frame(&self, session_id: u64) -> (CloseCode, String) {
        (CloseCode::Error, self.close_reason(session_id))
    }

    /// The websocket close reason sent when the error happens after the upgrade: generic, with
    /// the session number so that an operator can find the detail in the log.
    pub fn close_reason(&self, session_id: u64) -> String {
        let status = match self {
            SessionError::Driver { failure, .. } => failure.status,
            SessionError::DriverHung { .. } => CgStatus::TIMEOUT,
            _ => CgStatus::IO,
        };
        truncate_utf8(&browser_reason(status, session_id), MAX_CLOSE_REASON).to_string()
    }
}

impl SessionError {
    /// The level the session's failure is logged at: what the browser did (went away, sent no
    /// HTTP) at debug, everything an operator may act on at warn.
    pub fn log_level(&self) -> log::Level {
        match self {
            SessionError::Client(_) | SessionError::ClientTls(_) | SessionError::BadRequest(_) => {
                log::Level::Debug
            }
            _ => log::Level::Warn,
        }
    }
}

/// The Close frame the browser gets when the relay ended as `end`; `None` when the browser
/// itself closed or went away.
pub fn relay_goodbye(end: &RelayEnd, session_id: u64) -> Option<(CloseCode, String)> {
    Some(match end {
        RelayEnd::ConsoleClosed => (CloseCode::Normal, "console closed".into()),
        RelayEnd::IdleTimeout => (CloseCode::Away, "idle timeout".into()),
        RelayEnd::Shutdown => (CloseCode::Away, "proxy shutting down".into()),
        RelayEnd::ConsoleError(_) => (CloseCode::Error, browser_reason(CgStatus::IO, session_id)),
        RelayEnd::MessageTooBig(_) => (CloseCode::Size, "message too big".into()),
        RelayEnd::ClientProtocol(_) => (CloseCode::Protocol, "websocket protocol error".into()),
        RelayEnd::ClientClosed | RelayEnd::ClientError(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_do_not_tell_unknown_from_expired() {
        for e in [
            TokenError::Unknown,
            TokenError::Expired,
            TokenError::AlreadyUsed,
        ] {
            let (status, reason) = SessionError::Token(e).http_refusal().unwrap();
            assert_eq!((status.as_u16(), reason), (404, "unknown or expired token"));
        }
    }

    #[test]
    fn close_reasons_are_generic_with_the_session_number() {
        let e = SessionError::Driver {
            driver: "vencrypt".into(),
            failure: ConnectFailure {
                status: CgStatus::TLS,
                message: "certificate for hv7.internal (10.1.2.3) CN=hv7: expired".into(),
            },
        };
        let reason = e.close_reason(42);
        assert_eq!(
            reason,
            "the secure connection to the console failed (session 42)"
        );
        assert!(
            e.to_string().contains("hv7.internal"),
            "the log keeps the detail"
        );
    }
}
