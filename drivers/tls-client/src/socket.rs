//! The hypervisor socket the TLS client runs over ([`ConsoleTransport`]), and deadline-bounded
//! blocking I/O on it for a protocol's cleartext steps before TLS ([`DeadlineIo`]).

use std::io::{self, Read, Write};
use std::net::TcpStream;

use consolegate_driver_api::ConsoleSocket;

use crate::deadline::{timeout_kind, Deadline};

/// The hypervisor socket a TLS channel runs over: the host's borrowed [`ConsoleSocket`] in a
/// driver, a plain [`TcpStream`] in tests.
pub trait ConsoleTransport: Read + Write + Send + 'static {
    /// The TCP socket, to set timeouts on.
    fn tcp(&self) -> &TcpStream;
}

impl ConsoleTransport for ConsoleSocket {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl ConsoleTransport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// Blocking, deadline-bounded plain I/O on the hypervisor socket (for a protocol's cleartext
/// steps before TLS). Timeouts come out as `ErrorKind::TimedOut`.
#[derive(Debug)]
pub struct DeadlineIo<'a, S> {
    socket: &'a mut S,
    deadline: Deadline,
}

impl<'a, S: ConsoleTransport> DeadlineIo<'a, S> {
    /// Wraps `socket` until `deadline`.
    pub fn new(socket: &'a mut S, deadline: Deadline) -> Self {
        Self { socket, deadline }
    }
}

impl<S: ConsoleTransport> Read for DeadlineIo<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.deadline.arm(self.socket.tcp())?;
        self.socket.read(buf).map_err(timeout_kind)
    }
}

impl<S: ConsoleTransport> Write for DeadlineIo<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.deadline.arm(self.socket.tcp())?;
        self.socket.write(buf).map_err(timeout_kind)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}
