//! Turning a deadline into socket timeouts, so every blocking step of a handshake ends on time:
//! [`DeadlineSocket`] re-arms the timeout before every read and write, so a deadline bounds a
//! whole phase, not each read.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sets `sock`'s read and write timeouts to the time left until `deadline`; fails with
/// `TimedOut` if none is left.
pub fn set_socket_deadline(sock: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = remaining(deadline)?;
    sock.set_read_timeout(Some(left))?;
    sock.set_write_timeout(Some(left))
}

pub use consolegate_driver_api::deadline::is_timeout;

/// The time left until `deadline` (at least 1 ms), or `TimedOut`.
pub fn remaining(deadline: Instant) -> io::Result<Duration> {
    consolegate_driver_api::deadline::remaining(deadline)
        .map(|left| left.max(Duration::from_millis(1)))
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
}

/// A TCP socket whose blocking reads and writes are all held to one deadline: before each call
/// the socket's timeout is set to the time left, so a peer that trickles bytes cannot stretch a
/// phase past its deadline, however it spaces them. Without a deadline (the relay, where the
/// socket is non-blocking) calls go straight to the socket.
#[derive(Debug)]
pub struct DeadlineSocket {
    sock: TcpStream,
    deadline: Option<Instant>,
}

impl DeadlineSocket {
    /// Wraps `sock`, held to `deadline` if there is one.
    pub fn new(sock: TcpStream, deadline: Option<Instant>) -> Self {
        Self { sock, deadline }
    }

    /// Holds every later blocking call to `deadline` (`None`: no deadline).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// The deadline in force, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The socket.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }
}

impl Read for DeadlineSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            self.sock.set_read_timeout(Some(remaining(deadline)?))?;
        }
        self.sock.read(buf)
    }
}

impl Write for DeadlineSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            self.sock.set_write_timeout(Some(remaining(deadline)?))?;
        }
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}
