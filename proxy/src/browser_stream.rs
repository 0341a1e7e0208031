//! The browser's byte stream: plain TCP or TLS (rustls), usable blocking during the upgrade and
//! the driver's handshake and non-blocking in the relay. Unlike `rustls::StreamOwned`, a read
//! never fails because a pending write would block, so the relay's edge-triggered readiness
//! stays exact. While a deadline is set ([`BrowserStream::set_deadline`]) every blocking read and
//! write on the socket is held to it, TLS records included.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use rustls::{ServerConfig, ServerConnection};

use crate::deadline::DeadlineSocket;
use crate::http_upgrade::Transport;

/// The stream to the browser.
pub enum BrowserStream {
    /// `ws://`.
    Plain(DeadlineSocket),
    /// `wss://`.
    Tls(Box<TlsBrowser>),
}

/// A TLS connection and its socket.
pub struct TlsBrowser {
    conn: ServerConnection,
    sock: DeadlineSocket,
}

impl BrowserStream {
    /// A plain stream on the blocking `sock`, held to `deadline`.
    pub fn plain(sock: TcpStream, deadline: Instant) -> Self {
        BrowserStream::Plain(DeadlineSocket::new(sock, Some(deadline)))
    }

    /// Runs the TLS handshake on the blocking `sock`; the handshake and every later blocking
    /// call are held to `deadline`.
    pub fn accept_tls(
        sock: TcpStream,
        config: Arc<ServerConfig>,
        deadline: Instant,
    ) -> io::Result<Self> {
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut sock = DeadlineSocket::new(sock, Some(deadline));
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(BrowserStream::Tls(Box::new(TlsBrowser { conn, sock })))
    }

    /// The TCP socket underneath.
    pub fn socket(&self) -> &TcpStream {
        self.deadline_socket().socket()
    }

    /// Holds every later blocking read and write to `deadline`; `None` before the relay, where
    /// the socket is non-blocking.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        match self {
            BrowserStream::Plain(s) => s.set_deadline(deadline),
            BrowserStream::Tls(t) => t.sock.set_deadline(deadline),
        }
    }

    /// Plain or TLS, for the response headers that depend on it.
    pub fn transport(&self) -> Transport {
        match self {
            BrowserStream::Plain(_) => Transport::Plain,
            BrowserStream::Tls(_) => Transport::Tls,
        }
    }

    /// The deadline in force, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline_socket().deadline()
    }

    fn deadline_socket(&self) -> &DeadlineSocket {
        match self {
            BrowserStream::Plain(s) => s,
            BrowserStream::Tls(t) => &t.sock,
        }
    }

    /// Whether encrypted output waits for the socket to become writable.
    pub fn wants_write(&self) -> bool {
        match self {
            BrowserStream::Plain(_) => false,
            BrowserStream::Tls(t) => t.conn.wants_write(),
        }
    }
}

impl TlsBrowser {
    fn push(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

impl Read for BrowserStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = match self {
            BrowserStream::Plain(s) => return s.read(buf),
            BrowserStream::Tls(t) => t,
        };
        loop {
            match t.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match t.conn.read_tls(&mut t.sock) {
                Ok(0) => {
                    // End of TCP stream: the reader now reports Ok(0) or UnexpectedEof.
                    t.conn.process_new_packets().map_err(io::Error::other)?;
                    return match t.conn.reader().read(buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                        other => other,
                    };
                }
                Ok(_) => {
                    if let Err(e) = t.conn.process_new_packets() {
                        let _ = t.push(); // best effort: send the alert
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for BrowserStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = match self {
            BrowserStream::Plain(s) => return s.write(buf),
            BrowserStream::Tls(t) => t,
        };
        let mut n = t.conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // rustls's outgoing buffer is full: make room on the socket, then try once more.
            t.push()?;
            n = t.conn.writer().write(buf)?;
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        match t.push() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BrowserStream::Plain(s) => s.flush(),
            BrowserStream::Tls(t) => t.push(),
        }
    }
}

impl Drop for TlsBrowser {
    fn drop(&mut self) {
        // Best effort, never blocking for long: the socket is non-blocking or has a timeout.
        self.conn.send_close_notify();
        let _ = self.push();
    }
}
