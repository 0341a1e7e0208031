//! [`Deadline`]: the instant by which a session's whole handshake must be done, and the socket
//! timeouts that hold each blocking step to it.

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The instant by which a session's whole handshake must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self(Instant::now() + timeout)
    }

    /// The time left, or `None` once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        consolegate_driver_api::deadline::remaining(self.0)
    }

    /// Sets the socket's read and write timeouts to the time left; `Err(TimedOut)` once the
    /// deadline has passed. Call before every blocking socket operation.
    pub fn arm(&self, socket: &TcpStream) -> io::Result<()> {
        let left = self.remaining().ok_or_else(|| {
            io::Error::new(io::ErrorKind::TimedOut, "the handshake deadline has passed")
        })?;
        socket.set_read_timeout(Some(left))?;
        socket.set_write_timeout(Some(left))
    }
}

pub use consolegate_driver_api::deadline::is_timeout;

/// A socket timeout as the deadline it means: `ErrorKind::TimedOut`.
pub(crate) fn timeout_kind(e: io::Error) -> io::Error {
    if is_timeout(&e) {
        io::Error::new(io::ErrorKind::TimedOut, "the handshake deadline has passed")
    } else {
        e
    }
}
