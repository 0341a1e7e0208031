//! The relay: after both handshakes, bytes flow between the browser's websocket and the driver's
//! channel until one side closes. One mio `Poll` with two tokens, edge-triggered readiness kept
//! as four flags (set by events, cleared by `WouldBlock`), one message in flight each way, so a
//! side is read only when the other side can take more (back-pressure, bounded memory).

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tungstenite::{Bytes, Message};

use crate::driver::DriverChannel;
use crate::sessions::Sessions;
use crate::websocket::{would_block, BrowserSocket};

const BROWSER: Token = Token(0);
const CONSOLE: Token = Token(1);

/// Bytes read from the console per websocket message.
pub const READ_CHUNK: usize = 64 * 1024;

/// How the relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    /// The browser closed the websocket.
    ClientClosed,
    /// The console closed its connection.
    ConsoleClosed,
    /// Nothing moved for `idle_timeout`.
    IdleTimeout,
    /// The proxy is shutting down.
    Shutdown,
    /// The browser sent a message or frame larger than the proxy accepts.
    MessageTooBig(String),
    /// The browser broke the websocket protocol (an unmasked frame, a bad opcode, ...).
    ClientProtocol(String),
    /// The browser's connection failed.
    ClientError(String),
    /// The console's connection failed.
    ConsoleError(String),
}

impl RelayEnd {
    /// The reason written in the audit line.
    pub fn describe(&self) -> String {
        match self {
            RelayEnd::ClientClosed => "client closed".into(),
            RelayEnd::ConsoleClosed => "console closed".into(),
            RelayEnd::IdleTimeout => "idle timeout".into(),
            RelayEnd::Shutdown => "proxy shutting down".into(),
            RelayEnd::MessageTooBig(e) => format!("client message too big: {e}"),
            RelayEnd::ClientProtocol(e) => format!("client protocol error: {e}"),
            RelayEnd::ClientError(e) => format!("client error: {e}"),
            RelayEnd::ConsoleError(e) => format!("console error: {e}"),
        }
    }
}

/// Byte counts and how the relay ended.
#[derive(Debug)]
pub struct RelayOutcome {
    /// Bytes from browser to console.
    pub up: u64,
    /// Bytes from console to browser.
    pub down: u64,
    /// Why it ended.
    pub end: RelayEnd,
}

/// Readiness of one side: set by poll events, cleared by `WouldBlock`.
#[derive(Clone, Copy)]
struct Readiness {
    readable: bool,
    writable: bool,
}

/// Relays until one side ends. Both sockets must be non-blocking. `first_up` holds browser
/// bytes received during the handshake that the driver did not consume.
pub fn run(
    ws: &mut BrowserSocket,
    channel: &mut DriverChannel,
    console_socket: &TcpStream,
    first_up: Vec<u8>,
    idle_timeout: Option<Duration>,
    sessions: &Sessions,
) -> io::Result<RelayOutcome> {
    let mut poll = Poll::new()?;
    let browser_fd = ws.get_ref().socket().as_raw_fd();
    let console_fd = console_socket.as_raw_fd();
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(&mut SourceFd(&browser_fd), BROWSER, both)?;
    poll.registry()
        .register(&mut SourceFd(&console_fd), CONSOLE, both)?;
    let mut events = Events::with_capacity(4);

    let mut relay = Relay {
        browser: Readiness {
            readable: true,
            writable: true,
        },
        console: Readiness {
            readable: true,
            writable: true,
        },
        up: (!first_up.is_empty()).then(|| (Bytes::from(first_up), 0)),
        browser_pending: false,
        buf: Vec::new(),
        up_bytes: 0,
        down_bytes: 0,
    };
    let mut last_activity = Instant::now();
    loop {
        // Checked before any read: shutdown wakes the session by shutting its browser socket's
        // read side, and the websocket must still be open to send Close 1001.
        if sessions.closing() {
            return Ok(relay.outcome(RelayEnd::Shutdown));
        }
        match relay.step(ws, channel) {
            Step::Moved => last_activity = Instant::now(),
            Step::Idle => {}
            Step::End(end) => {
                let end = match end {
                    RelayEnd::ClientClosed | RelayEnd::ClientError(_) if sessions.closing() => {
                        RelayEnd::Shutdown
                    }
                    other => other,
                };
                return Ok(relay.outcome(end));
            }
        }
        let timeout = match idle_timeout {
            Some(idle) => {
                let left = (last_activity + idle).saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(relay.outcome(RelayEnd::IdleTimeout));
                }
                Some(left)
            }
            None => None,
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            let side = if event.token() == BROWSER {
                &mut relay.browser
            } else {
                &mut relay.console
            };
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                side.readable = true;
            }
            if event.is_writable() || event.is_write_closed() || event.is_error() {
                side.writable = true;
            }
        }
    }
}

enum Step {
    Moved,
    Idle,
    End(RelayEnd),
}

struct Relay {
    browser: Readiness,
    console: Readiness,
    /// A browser message not yet fully taken by the channel, and how much of it was taken.
    up: Option<(Bytes, usize)>,
    /// The websocket holds output not yet written to the socket.
    browser_pending: bool,
    /// Read buffer for the console side, allocated on first use.
    buf: Vec<u8>,
    up_bytes: u64,
    down_bytes: u64,
}

impl Relay {
    fn outcome(&self, end: RelayEnd) -> RelayOutcome {
        RelayOutcome {
            up: self.up_bytes,
            down: self.down_bytes,
            end,
        }
    }

    /// Moves bytes until nothing can move without waiting.
    fn step(&mut self, ws: &mut BrowserSocket, channel: &mut DriverChannel) -> Step {
        let mut moved = false;
        loop {
            let mut progress = false;

            // Browser -> relay: only when the previous message is fully handed on.
            if self.up.is_none() && self.browser.readable {
                match ws.read() {
                    Ok(Message::Binary(data)) => {
                        self.up = (!data.is_empty()).then_some((data, 0));
                        progress = true;
                    }
                    Ok(Message::Text(text)) => {
                        let data = Bytes::from(text);
                        self.up = (!data.is_empty()).then_some((data, 0));
                        progress = true;
                    }
                    Ok(Message::Close(_)) => {
                        let _ = ws.flush(); // tungstenite queued the Close reply
                        return Step::End(RelayEnd::ClientClosed);
                    }
                    Ok(_) => {
                        // Ping or Pong: a queued Pong goes out with the next flush.
                        self.browser_pending = true;
                        progress = true;
                    }
                    Err(e) if would_block(&e) => self.browser.readable = false,
                    Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    ) => return Step::End(RelayEnd::ClientClosed),
                    Err(tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    )) => return Step::End(RelayEnd::ClientClosed),
                    Err(e @ tungstenite::Error::Capacity(_)) => {
                        return Step::End(RelayEnd::MessageTooBig(e.to_string()))
                    }
                    Err(e @ tungstenite::Error::Protocol(_)) => {
                        return Step::End(RelayEnd::ClientProtocol(e.to_string()))
                    }
                    Err(e) => return Step::End(RelayEnd::ClientError(e.to_string())),
                }
            }

            // Relay -> console.
            if let Some((data, offset)) = &mut self.up {
                if self.console.writable {
                    match channel.write(&data[*offset..]) {
                        Ok(0) => {
                            return Step::End(RelayEnd::ConsoleError(
                                "console took no bytes".into(),
                            ))
                        }
                        Ok(n) => {
                            *offset += n;
                            self.up_bytes += n as u64;
                            if *offset == data.len() {
                                self.up = None;
                            }
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            self.console.writable = false
                        }
                        Err(e) => return Step::End(RelayEnd::ConsoleError(e.to_string())),
                    }
                }
            }
            if self.console.writable && channel.wants_write() {
                match channel.flush() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.console.writable = false
                    }
                    Err(e) => return Step::End(RelayEnd::ConsoleError(e.to_string())),
                }
            }

            // Console -> browser: only when the browser took the previous message.
            if !self.browser_pending && self.console.readable {
                if self.buf.is_empty() {
                    self.buf = vec![0u8; READ_CHUNK];
                }
                match channel.read(&mut self.buf) {
                    Ok(0) => return Step::End(RelayEnd::ConsoleClosed),
                    Ok(n) => {
                        self.down_bytes += n as u64;
                        let message = Message::Binary(Bytes::copy_from_slice(&self.buf[..n]));
                        match ws.write(message) {
                            Ok(()) => {}
                            Err(e) if would_block(&e) => self.browser.writable = false,
                            Err(e) => return Step::End(RelayEnd::ClientError(e.to_string())),
                        }
                        self.browser_pending = true;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.console.readable = false
                    }
                    Err(e) => return Step::End(RelayEnd::ConsoleError(e.to_string())),
                }
            }

            // Relay -> browser.
            if (self.browser_pending || ws.get_ref().wants_write()) && self.browser.writable {
                match ws.flush() {
                    Ok(()) => {
                        self.browser_pending = false;
                        progress = true;
                    }
                    Err(e) if would_block(&e) => self.browser.writable = false,
                    Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    ) => return Step::End(RelayEnd::ClientClosed),
                    Err(e) => return Step::End(RelayEnd::ClientError(e.to_string())),
                }
            }

            if !progress {
                return if moved { Step::Moved } else { Step::Idle };
            }
            moved = true;
        }
    }
}
