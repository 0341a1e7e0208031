//! [`SaslChannel`]: the relay over plain TCP (RFB type 20) with every byte wrapped and
//! unwrapped through the SASL security layer that GSSAPI negotiated (confidentiality, SSF ≥
//! 56). QEMU starts the layer right after its SecurityResult, in both directions.

use std::io::{self, Read, Write};

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::{Channel, ConsoleSocket, DriverError};

use crate::cyrus::{CyrusError, SaslClient};
use crate::error::SaslError;

/// The most wrapped output a channel holds before `write` says `WouldBlock` (back-pressure
/// towards the browser while the hypervisor does not read).
pub const MAX_PENDING: usize = 256 * 1024;
/// How much is read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// The security layer on the hypervisor socket, as a non-blocking [`Channel`].
///
/// `read` returns unwrapped bytes already decoded first, then reads the socket and decodes
/// until it has some, the socket says `WouldBlock`, or it ends; `write` wraps at most
/// `maxoutbuf` bytes per packet into a buffer bounded by [`MAX_PENDING`]; `flush` writes that
/// buffer out. A layer failure (a packet that does not verify) is an `InvalidData` error
/// carrying a [`DriverError`] with status `PROTOCOL`.
#[derive(Debug)]
pub struct SaslChannel {
    client: SaslClient,
    socket: ConsoleSocket,
    max_outbuf: usize,
    /// Decoded bytes not yet returned, from `plain_at`.
    plain: Vec<u8>,
    plain_at: usize,
    /// Encoded bytes not yet written, from `wire_at`.
    wire: Vec<u8>,
    wire_at: usize,
    /// Bytes read from the socket, before decoding.
    inbuf: Vec<u8>,
}

fn layer_error(e: CyrusError, direction: &str) -> io::Error {
    let error = DriverError::new(
        CgStatus::PROTOCOL,
        format!("the SASL security layer failed {direction}: {e}"),
    );
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl SaslChannel {
    /// The layer of an authenticated `client` on `socket`.
    pub fn new(client: SaslClient, socket: ConsoleSocket) -> Result<Self, SaslError> {
        let max_outbuf = client.max_outbuf().map_err(|e| SaslError::Mechanism {
            mechanism: "GSSAPI",
            source: e,
        })?;
        Ok(Self {
            client,
            socket,
            // A layer that reports 0 would never send: use a small, always valid packet.
            max_outbuf: usize::try_from(max_outbuf).unwrap_or(4096).max(1),
            plain: Vec::new(),
            plain_at: 0,
            wire: Vec::new(),
            wire_at: 0,
            inbuf: vec![0u8; READ_CHUNK],
        })
    }

    fn take_plain(&mut self, buf: &mut [u8]) -> usize {
        let n = (self.plain.len() - self.plain_at).min(buf.len());
        buf[..n].copy_from_slice(&self.plain[self.plain_at..self.plain_at + n]);
        self.plain_at += n;
        if self.plain_at == self.plain.len() {
            self.plain.clear();
            self.plain_at = 0;
        }
        n
    }

    fn pending_wire(&self) -> usize {
        self.wire.len() - self.wire_at
    }
}

impl Channel for SaslChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.plain_at < self.plain.len() {
                return Ok(self.take_plain(buf));
            }
            let n = match self.socket.read(&mut self.inbuf) {
                Ok(0) => return Ok(0),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.client
                .decode(&self.inbuf[..n], &mut self.plain)
                .map_err(|e| layer_error(e, "on data from the hypervisor"))?;
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pending_wire() >= MAX_PENDING {
            Channel::flush(self).or_else(|e| match e.kind() {
                io::ErrorKind::WouldBlock => Ok(()),
                _ => Err(e),
            })?;
            if self.pending_wire() >= MAX_PENDING {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let n = buf.len().min(self.max_outbuf);
        self.client
            .encode(&buf[..n], &mut self.wire)
            .map_err(|e| layer_error(e, "wrapping data for the hypervisor"))?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.wire_at < self.wire.len() {
            match self.socket.write(&self.wire[self.wire_at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wire_at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wire.clear();
        self.wire_at = 0;
        Ok(())
    }

    fn wants_write(&self) -> bool {
        self.pending_wire() > 0
    }
}
