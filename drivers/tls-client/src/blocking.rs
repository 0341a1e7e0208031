//! [`BlockingTls`]: deadline-bounded blocking plaintext I/O through an established
//! [`TlsChannel`], for the steps of a driver's handshake that run inside TLS.
//!
//! It implements `std::io::Read`/`Write`, so that protocol code written against them (RFB,
//! VeNCrypt) runs unchanged inside TLS; a TLS failure therefore travels as an `io::Error` that
//! carries the [`TlsError`](crate::TlsError), which [`TlsError::from_io`](crate::TlsError::from_io)
//! takes back out. Inside the crate TLS failures are `TlsError`s; only these trait edges wrap.

use std::io::{self, Read, Write};

use crate::channel::TlsChannel;
use crate::deadline::Deadline;
use crate::error::TlsError;
use crate::socket::ConsoleTransport;

/// Blocking, deadline-bounded plaintext I/O through an established [`TlsChannel`], for a
/// protocol's steps inside TLS that still belong to the handshake (for example VNC
/// authentication). `read` returns `Ok(0)` when the hypervisor closed the connection, with or
/// without close_notify. TLS failures come out as `InvalidData` errors carrying a
/// [`TlsError`] (see [`TlsError::from_io`]); timeouts as `TimedOut`.
#[derive(Debug)]
pub struct BlockingTls<'a, S: ConsoleTransport> {
    channel: &'a mut TlsChannel<S>,
    deadline: Deadline,
}

impl<'a, S: ConsoleTransport> BlockingTls<'a, S> {
    /// Wraps `channel` until `deadline`. Its socket must still be in blocking mode.
    pub fn new(channel: &'a mut TlsChannel<S>, deadline: Deadline) -> Self {
        Self { channel, deadline }
    }
}

impl<S: ConsoleTransport> Read for BlockingTls<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self
                .channel
                .take_plaintext(buf)
                .map_err(TlsError::into_io)?
            {
                return Ok(n);
            }
            self.flush()?;
            self.deadline.arm(self.channel.socket().tcp())?;
            self.channel.pull().map_err(TlsError::into_io)?;
        }
    }
}

impl<S: ConsoleTransport> Write for BlockingTls<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.channel.accept_plaintext(buf)? {
                0 if !buf.is_empty() => self.flush()?,
                n => return Ok(n),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.channel.wants_write_tls() {
            self.deadline.arm(self.channel.socket().tcp())?;
            self.channel.push().map_err(TlsError::into_io)?;
        }
        Ok(())
    }
}
