//! [`SaslError`], and its one mapping to a [`DriverError`] status.

use std::io;
use std::path::PathBuf;

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::deadline::is_timeout;
use consolegate_driver_api::DriverError;
use consolegate_rfb::WireError;

use crate::options::{KEYS, SECTION};

/// The message of every session whose server offers SASL.
pub const NOT_IMPLEMENTED: &str = "SASL negotiation is not implemented yet (placeholder driver \
    sasl_gssapi); use console_proxy_security_driver = vencrypt with x509 for now";

/// Why the driver refused its configuration or ended a session (it ends every session).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// `[console_proxy_sasl]` has a key the driver does not know (a typo?).
    #[error("[{SECTION}] unknown key '{key}' (known: {})", KEYS.join(", "))]
    UnknownKey {
        /// The key.
        key: String,
    },

    /// A value is malformed.
    #[error("[{SECTION}] {key} = {value:?} is not valid: expected {expected}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },

    /// `keytab` names a file the proxy cannot read.
    #[error("[{SECTION}] keytab = {}: {problem}", path.display())]
    Keytab {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// The server offers SASL (type 20, or VeNCrypt TLSSASL/X509SASL), which this placeholder
    /// cannot negotiate. Use the vencrypt driver with x509 instead.
    #[error("{NOT_IMPLEMENTED}")]
    NotImplemented,

    /// The server offers no form of SASL: the console needs another driver.
    #[error(
        "the VNC server offers no SASL ({offered}); sasl_gssapi (a placeholder) only handles \
         SASL consoles: use console_proxy_security_driver = vencrypt"
    )]
    NoSasl {
        /// What the server offered, for example `security types [1 None]`.
        offered: String,
    },

    /// The server's first bytes are not an RFB ProtocolVersion: not a VNC port.
    #[error("not a VNC server: it greeted with {greeting}")]
    NotRfb {
        /// The greeting, escaped.
        greeting: String,
    },

    /// The server broke the RFB or VeNCrypt protocol.
    #[error("the VNC server broke the protocol: {0}")]
    Protocol(String),

    /// The server refused the connection and said why.
    #[error("the VNC server refused the connection: {reason}")]
    ServerRefused {
        /// Its reason.
        reason: String,
    },

    /// The server did not answer within the handshake timeout.
    #[error("the VNC server did not finish its security offer within handshake_timeout")]
    Timeout,

    /// The server closed the connection, or a socket error.
    #[error("reading the VNC server's security offer failed: {0}")]
    Io(io::Error),
}

impl SaslError {
    /// The ABI status: whose fault it is.
    pub fn status(&self) -> CgStatus {
        match self {
            SaslError::UnknownKey { .. }
            | SaslError::BadValue { .. }
            | SaslError::Keytab { .. } => CgStatus::CONFIG,
            SaslError::NotImplemented => CgStatus::UNSUPPORTED,
            SaslError::NoSasl { .. } | SaslError::ServerRefused { .. } => CgStatus::REFUSED,
            SaslError::NotRfb { .. } | SaslError::Protocol(_) => CgStatus::PROTOCOL,
            SaslError::Timeout => CgStatus::TIMEOUT,
            SaslError::Io(_) => CgStatus::IO,
        }
    }
}

impl From<io::Error> for SaslError {
    /// Timeouts (the deadline-bounded socket says `TimedOut`) become [`SaslError::Timeout`].
    fn from(e: io::Error) -> Self {
        if is_timeout(&e) {
            SaslError::Timeout
        } else {
            SaslError::Io(e)
        }
    }
}

impl From<WireError> for SaslError {
    /// A length over its limit, or a field the step does not allow, is the server breaking
    /// the protocol.
    fn from(e: WireError) -> Self {
        match e {
            WireError::Io(e) => e.into(),
            e @ (WireError::TooLong { .. } | WireError::Unexpected(_)) => {
                SaslError::Protocol(e.to_string())
            }
        }
    }
}

impl From<SaslError> for DriverError {
    fn from(e: SaslError) -> Self {
        DriverError::new(e.status(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_message_is_exact() {
        assert_eq!(
            SaslError::NotImplemented.to_string(),
            "SASL negotiation is not implemented yet (placeholder driver sasl_gssapi); use \
             console_proxy_security_driver = vencrypt with x509 for now"
        );
        assert_eq!(SaslError::NotImplemented.status(), CgStatus::UNSUPPORTED);
    }

    #[test]
    fn timeouts_and_config_errors_map_to_their_status() {
        let e = SaslError::from(io::Error::new(io::ErrorKind::TimedOut, "deadline"));
        assert_eq!(e.status(), CgStatus::TIMEOUT);
        assert_eq!(
            DriverError::from(SaslError::UnknownKey { key: "x".into() }).status,
            CgStatus::CONFIG
        );
    }
}
