//! [`ConsoleChannel`]: the established TLS channel of one SPICE or serial session, with the
//! session's [`SessionInfo`].
//!
//! ## Seam: binding a single-use token to a SPICE session (later issue)
//! A SPICE client opens the main channel first, and the server's `SPICE_MSG_MAIN_INIT` on it
//! carries the SPICE session id. Every further channel (display, inputs, cursor, …) is a new
//! websocket with the same token whose first bytes are a `SpiceLinkHeader` (`REDQ`, 2.2) and a
//! `SpiceLinkMess` whose `connection_id` is that session id. Binding a single-use token to one
//! SPICE session therefore means: read `MAIN_INIT` in [`ConsoleChannel`]'s `read` on the main
//! channel, read the `SpiceLinkMess` in its `write` on the others, and record both in
//! [`SessionInfo`] for the proxy to check. Nothing is parsed yet: the channel relays bytes
//! unchanged.

use std::io;

use consolegate_driver_api::{Channel, ConsoleRequest, ConsoleSocket, Kind};
use consolegate_tls_client::TlsChannel;

/// What a channel knows about its session. Never holds the token or a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// SPICE or serial.
    pub kind: Kind,
    /// The proxy's session id (the number in its logs and audit line).
    pub session_id: u64,
    /// The hypervisor (name or IP literal).
    pub hypervisor: String,
    /// The console's port.
    pub port: u16,
}

impl SessionInfo {
    /// The information of `session`, without its credentials.
    pub fn new(session: &ConsoleRequest<'_>) -> Self {
        Self {
            kind: session.kind,
            session_id: session.session_id,
            hypervisor: session.hypervisor.to_owned(),
            port: session.port,
        }
    }
}

/// TLS to the console, relayed unchanged. Bytes the hypervisor sent while the driver was
/// still deciding whether the session stands (serial consoles: see
/// [`SERIAL_SETTLE`](crate::SERIAL_SETTLE)) come out of `read` first.
#[derive(Debug)]
pub struct ConsoleChannel {
    tls: TlsChannel<ConsoleSocket>,
    info: SessionInfo,
    early: Vec<u8>,
}

impl ConsoleChannel {
    pub(crate) fn new(tls: TlsChannel<ConsoleSocket>, info: SessionInfo, early: Vec<u8>) -> Self {
        Self { tls, info, early }
    }

    /// The session this channel belongs to.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }
}

impl Channel for ConsoleChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.early.is_empty() {
            return self.tls.read(buf);
        }
        let n = buf.len().min(self.early.len());
        buf[..n].copy_from_slice(&self.early[..n]);
        self.early.drain(..n);
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tls.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Channel::flush(&mut self.tls)
    }

    fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }
}

impl Drop for ConsoleChannel {
    fn drop(&mut self) {
        log::debug!(
            "session {}: {} channel to {}:{} closed",
            self.info.session_id,
            self.info.kind,
            self.info.hypervisor,
            self.info.port
        );
    }
}
