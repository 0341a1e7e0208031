//! [`DriverError`]: what a Rust driver returns when `init`, `connect` or a channel operation
//! fails; the export shims turn it into a [`CgStatus`] plus a message in the host's buffer.

use std::fmt;
use std::io;

use crate::abi::CgStatus;

/// A failure with its ABI status code and a message for the operator.
///
/// Drivers keep their own precise error enums and convert them into this at the boundary,
/// choosing the status that says whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError {
    /// The status reported to the host.
    pub status: CgStatus,
    /// What failed and, where possible, what to do about it. Never contains secrets.
    pub message: String,
}

impl DriverError {
    /// A new error with a status and a message.
    pub fn new(status: CgStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A configuration error (status `CONFIG`).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(CgStatus::CONFIG, message)
    }
}

/// The failure reason a browser is shown, by the proxy (a websocket close reason) and by drivers
/// that answer the browser in its own protocol (an RFB failure reason): the status's
/// [`browser_phrase`](CgStatus::browser_phrase) and the session number, with which an operator
/// finds the detail in the log.
pub fn browser_reason(status: CgStatus, session_id: u64) -> String {
    format!("{} (session {session_id})", status.browser_phrase())
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status.name())
    }
}

impl std::error::Error for DriverError {}

impl From<io::Error> for DriverError {
    /// Maps an I/O error: one that carries a `DriverError` (a driver's own failure passed
    /// through an `io::Error` edge, such as a TLS failure in a channel's `read`) keeps its
    /// status and message; otherwise `WouldBlock` is `WOULD_BLOCK`, timeouts `TIMEOUT`,
    /// malformed data `PROTOCOL`, anything else `IO`.
    fn from(e: io::Error) -> Self {
        let kind = e.kind();
        let e = match e.downcast::<DriverError>() {
            Ok(inner) => return inner,
            Err(e) => e,
        };
        let status = match kind {
            io::ErrorKind::WouldBlock => CgStatus::WOULD_BLOCK,
            io::ErrorKind::TimedOut => CgStatus::TIMEOUT,
            io::ErrorKind::InvalidData => CgStatus::PROTOCOL,
            _ => CgStatus::IO,
        };
        Self::new(status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_error_inside_an_io_error_keeps_its_status() {
        let inner = DriverError::new(CgStatus::TLS, "the hypervisor's certificate has expired");
        let io = io::Error::new(io::ErrorKind::InvalidData, inner.clone());
        assert_eq!(DriverError::from(io), inner);
        let plain = io::Error::new(io::ErrorKind::InvalidData, "garbage");
        assert_eq!(DriverError::from(plain).status, CgStatus::PROTOCOL);
    }
}
