//! The websocket to the browser (tungstenite): accepting it after the HTTP upgrade, lending it
//! to a driver as a byte stream during the handshake, and closing it with a code and reason.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use consolegate_driver_api::abi::CgStatus;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::browser_stream::BrowserStream;
use crate::deadline::is_timeout;
use crate::driver::browser_io::BrowserIo;

/// The websocket over the browser's stream.
pub type BrowserSocket = WebSocket<BrowserStream>;

/// Bytes tungstenite reads from the browser per call.
pub const READ_BUFFER: usize = 16 * 1024;

/// The largest websocket message accepted from a browser.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Wraps `stream`, after `101 Switching Protocols` was sent, as a server-side websocket;
/// `leftover` holds bytes read after the request head.
pub fn accept(stream: BrowserStream, leftover: Vec<u8>) -> BrowserSocket {
    let config = WebSocketConfig::default()
        // tungstenite zero-fills its whole read buffer before every read: 128 KiB by default,
        // which an idle session would keep resident. Larger frames still arrive whole.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .accept_unmasked_frames(false);
    WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config))
}

/// Sends a Close frame with `code` and `reason` and flushes it, waiting at most `wait`.
pub fn close(ws: &mut BrowserSocket, code: CloseCode, reason: &str, wait: Duration) {
    if ws.get_ref().socket().set_nonblocking(false).is_err() {
        return;
    }
    ws.get_mut().set_deadline(Some(Instant::now() + wait));
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    if ws.close(Some(frame)).is_ok() || ws.can_write() {
        let _ = ws.flush();
    }
    let _ = ws.get_mut().flush();
}

/// The browser side during a driver's handshake: blocking reads and writes under a deadline.
/// Bytes the driver does not read stay in [`BrowserHandshake::into_pending`] for the relay.
pub struct BrowserHandshake<'a> {
    ws: &'a mut BrowserSocket,
    pending: Vec<u8>,
    offset: usize,
    deadline: Instant,
}

impl<'a> BrowserHandshake<'a> {
    /// Lends `ws` until `deadline`: every read and write on it is held to the deadline.
    pub fn new(ws: &'a mut BrowserSocket, deadline: Instant) -> Self {
        ws.get_mut().set_deadline(Some(deadline));
        Self {
            ws,
            pending: Vec::new(),
            offset: 0,
            deadline,
        }
    }

    /// What the browser sent that the driver did not read.
    pub fn into_pending(self) -> Vec<u8> {
        let mut pending = self.pending;
        pending.drain(..self.offset);
        pending
    }

    fn status_of(&self, e: &tungstenite::Error) -> CgStatus {
        match e {
            tungstenite::Error::Io(io) if is_timeout(io) => CgStatus::TIMEOUT,
            _ if Instant::now() >= self.deadline => CgStatus::TIMEOUT,
            _ => CgStatus::CLIENT,
        }
    }
}

impl BrowserIo for BrowserHandshake<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, CgStatus> {
        while self.offset >= self.pending.len() {
            self.pending.clear();
            self.offset = 0;
            match self.ws.read() {
                Ok(Message::Binary(data)) => self.pending.extend_from_slice(&data),
                Ok(Message::Text(text)) => self.pending.extend_from_slice(text.as_bytes()),
                Ok(Message::Close(_)) => return Ok(0),
                Ok(_) => {
                    // Ping/Pong: tungstenite queued any Pong; send it.
                    let _ = self.ws.flush();
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(0)
                }
                Err(e) => return Err(self.status_of(&e)),
            }
        }
        let n = buf.len().min(self.pending.len() - self.offset);
        buf[..n].copy_from_slice(&self.pending[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), CgStatus> {
        self.ws
            .send(Message::Binary(buf.to_vec().into()))
            .map_err(|e| self.status_of(&e))
    }
}

/// Whether a tungstenite error is "try again later".
pub fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}
