//! [`TlsChannel`]: an established rustls client connection on the hypervisor socket, used
//! non-blocking by the proxy's relay through [`Channel`].

use std::io::{self, Read, Write};

use consolegate_driver_api::{Channel, DriverError};
use rustls::ClientConnection;

use crate::error::TlsError;
use crate::handshake::classify;
use crate::socket::ConsoleTransport;

/// The most TLS output a channel holds before `write` says `WouldBlock` (back-pressure towards
/// the browser while the hypervisor does not read).
pub const MAX_PENDING_TLS: usize = 64 * 1024;

/// TLS to the hypervisor, after the handshake.
///
/// As a [`Channel`] (socket non-blocking, edge-triggered): `read` returns buffered plaintext
/// first, then reads the socket until it has some or the socket says `WouldBlock`; `write`
/// encrypts into a buffer bounded by [`MAX_PENDING_TLS`] and says `WouldBlock` when it is
/// full; `flush` writes the buffer out; `wants_write` says whether output is pending. A TLS
/// failure comes out as an `InvalidData` error carrying its [`DriverError`] (status `TLS`,
/// which the host keeps). Dropping the channel
/// sends close_notify, best effort.
#[derive(Debug)]
pub struct TlsChannel<S: ConsoleTransport> {
    conn: ClientConnection,
    socket: S,
}

impl<S: ConsoleTransport> TlsChannel<S> {
    pub(crate) fn new(mut conn: ClientConnection, socket: S) -> Self {
        conn.set_buffer_limit(Some(MAX_PENDING_TLS));
        Self { conn, socket }
    }

    pub(crate) fn parts(&mut self) -> (&mut ClientConnection, &mut S) {
        (&mut self.conn, &mut self.socket)
    }

    /// The socket.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// The TLS connection (protocol version, cipher suite, peer certificates).
    pub fn connection(&self) -> &ClientConnection {
        &self.conn
    }

    /// Buffered plaintext into `buf`: `Some(n)` with data, `Some(0)` at the end of the stream
    /// (close_notify, or TCP EOF without it), `None` when more must be read from the socket.
    pub(crate) fn take_plaintext(&mut self, buf: &mut [u8]) -> Result<Option<usize>, TlsError> {
        match self.conn.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                log::debug!("the hypervisor closed TCP without TLS close_notify");
                Ok(Some(0))
            }
            Err(e) => Err(TlsError::Io(e)),
        }
    }

    /// One socket read into rustls, then record processing. `Ok(0)` at TCP EOF.
    pub(crate) fn pull(&mut self) -> Result<usize, TlsError> {
        let n = loop {
            match self.conn.read_tls(&mut self.socket) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other.map_err(TlsError::Io)?,
            }
        };
        if let Err(e) = self.conn.process_new_packets() {
            // Best effort: tell the peer why (rustls queued an alert).
            let _ = self.conn.write_tls(&mut self.socket);
            return Err(classify(e, None));
        }
        Ok(n)
    }

    /// Encrypts as much of `buf` as the output bound allows; `Ok(0)` when full.
    pub(crate) fn accept_plaintext(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(buf)
    }

    /// Whether TLS output is pending.
    pub(crate) fn wants_write_tls(&self) -> bool {
        self.conn.wants_write()
    }

    /// One socket write of pending TLS output.
    pub(crate) fn push(&mut self) -> Result<usize, TlsError> {
        loop {
            match self.conn.write_tls(&mut self.socket) {
                Ok(0) => return Err(TlsError::Io(io::ErrorKind::WriteZero.into())),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other.map_err(TlsError::Io),
            }
        }
    }
}

impl<S: ConsoleTransport> Channel for TlsChannel<S> {
    /// Fills `buf` with as many records as the socket has ready (not just one 16 KiB record),
    /// so the relay forwards fewer, larger messages. Meant for the non-blocking relay: a pull
    /// that would block ends the read with what was gathered.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            match self.take_plaintext(&mut buf[filled..]).map_err(to_host)? {
                // End of stream: report it once the data before it is delivered.
                Some(0) => return Ok(filled),
                Some(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                None => {}
            }
            match self.pull() {
                Ok(_) => {}
                // Deliver what arrived; the error (sticky in rustls, or the socket's) comes
                // back on the next call.
                Err(_) if filled > 0 => return Ok(filled),
                Err(e) => return Err(to_host(e)),
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.accept_plaintext(buf)? {
            0 => {
                // Full: make room if the socket takes some, then try once more.
                Channel::flush(self)?;
                match self.accept_plaintext(buf)? {
                    0 => Err(io::ErrorKind::WouldBlock.into()),
                    n => Ok(n),
                }
            }
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.wants_write_tls() {
            self.push().map_err(to_host)?;
        }
        Ok(())
    }

    fn wants_write(&self) -> bool {
        self.wants_write_tls()
    }
}

/// A channel failure as the relay's `io::Error`: socket errors as they are (`WouldBlock`
/// included), a TLS failure carrying its [`DriverError`] so that the host sees status `TLS`
/// with the precise message, not a generic `PROTOCOL`.
fn to_host(e: TlsError) -> io::Error {
    match e {
        TlsError::Io(e) => e,
        tls => io::Error::new(io::ErrorKind::InvalidData, DriverError::from(tls)),
    }
}

impl<S: ConsoleTransport> Drop for TlsChannel<S> {
    fn drop(&mut self) {
        self.conn.send_close_notify();
        // Best effort, one write: the socket may be non-blocking or already closed.
        let _ = self.conn.write_tls(&mut self.socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{client, tls_pair, Peer, TestServer};
    use std::time::Duration;

    /// Drives a non-blocking channel like the proxy's relay: writes everything, then reads
    /// until `want` bytes came back, polling with short sleeps.
    fn relay_roundtrip(
        ch: &mut TlsChannel<std::net::TcpStream>,
        data: &[u8],
        want: usize,
    ) -> Vec<u8> {
        ch.socket().set_nonblocking(true).unwrap();
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while got.len() < want {
            assert!(
                std::time::Instant::now() < deadline,
                "relay stalled at {} of {want}",
                got.len()
            );
            while sent < data.len() {
                match Channel::write(ch, &data[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("write: {e}"),
                }
            }
            match Channel::flush(ch) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => assert!(ch.wants_write()),
                Err(e) => panic!("flush: {e}"),
            }
            loop {
                match Channel::read(ch, &mut buf) {
                    Ok(0) => panic!("EOF after {} bytes", got.len()),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        got
    }

    #[test]
    fn a_tls_failure_in_the_relay_reaches_the_host_as_tls() {
        let e = to_host(TlsError::Protocol(rustls::Error::DecryptError));
        let host = DriverError::from(e);
        assert_eq!(
            host.status,
            consolegate_driver_api::abi::CgStatus::TLS,
            "{host}"
        );
        let e = to_host(TlsError::Io(io::ErrorKind::WouldBlock.into()));
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn relays_a_megabyte_non_blocking_with_back_pressure() {
        let (_server, mut ch) = tls_pair("ch-bulk", true, true);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let got = relay_roundtrip(&mut ch, &data, data.len());
        assert!(got == data, "echo differs");
    }

    #[test]
    fn write_says_would_block_when_the_buffer_is_full() {
        let server = TestServer::start("ch-full", Peer::TlsNoRead);
        let mut ch = server
            .connect_with(&client(&server.pki, false, None), "127.0.0.1")
            .unwrap();
        ch.socket().set_nonblocking(true).unwrap();
        let chunk = vec![0x55u8; 16 * 1024];
        let mut total = 0usize;
        let blocked = (0..10_000).any(|_| match Channel::write(&mut ch, &chunk) {
            Ok(n) => {
                total += n;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => panic!("write: {e}"),
        });
        assert!(blocked, "never blocked after {total} bytes");
        assert!(ch.wants_write());
    }

    #[test]
    fn peer_close_reads_as_end_of_stream() {
        let (server, mut ch) = tls_pair("ch-eof", false, false);
        assert_eq!(server.echo(&mut ch, b"bye"), b"bye"); // the test server closes after "bye"
        let mut buf = [0u8; 8];
        ch.socket()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(Channel::read(&mut ch, &mut buf).unwrap(), 0);
    }
}
