//! Turning a deadline into socket timeouts, so every blocking step of a handshake ends on time.

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sets `sock`'s read and write timeouts to the time left until `deadline`; fails with
/// `TimedOut` if none is left.
pub fn set_socket_deadline(sock: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = remaining(deadline)?;
    sock.set_read_timeout(Some(left))?;
    sock.set_write_timeout(Some(left))
}

/// The time left until `deadline` (at least 1 ms), or `TimedOut`.
pub fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    Ok(left.max(Duration::from_millis(1)))
}

/// Whether an I/O error is a socket timeout (Linux reports `WouldBlock` for SO_RCVTIMEO).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}
