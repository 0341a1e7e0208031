//! The safe Rust side of the ABI: the [`Driver`] and [`Channel`] traits a Rust driver
//! implements, and the views of host data it receives ([`Options`], [`ConsoleRequest`],
//! [`Browser`], [`ConsoleSocket`]).

use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::net::TcpStream;
use std::ops::Deref;
use std::os::fd::{FromRawFd, RawFd};
use std::time::Duration;

use crate::abi::{CgClientIo, CgStatus, CG_KIND_SERIAL, CG_KIND_SPICE, CG_KIND_VNC};
use crate::error::DriverError;

/// A security driver, exported with [`export_driver!`](crate::export_driver).
///
/// One value lives from `init` to `destroy`; `connect` is called from many session threads at
/// once, hence `Sync`.
pub trait Driver: Send + Sync + Sized + 'static {
    /// Reads the driver's options (only the sections its descriptor names).
    fn init(options: &Options) -> Result<Self, DriverError>;

    /// Runs the security handshake for one session on the connected `server` socket, talking
    /// to the browser through `client` where the protocol needs it, and returns the channel the
    /// proxy relays over. The socket is blocking, with read and write timeouts set to the
    /// handshake deadline, until this returns.
    fn connect(
        &self,
        session: &ConsoleRequest<'_>,
        client: &mut Browser<'_>,
        server: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError>;
}

/// An established connection to the hypervisor, used non-blocking by the proxy's relay.
pub trait Channel: Send {
    /// Reads plaintext; `Ok(0)` at end of stream, `Err(WouldBlock)` when nothing is available.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Accepts plaintext towards the hypervisor; `Err(WouldBlock)` when its buffer is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Sends pending output; `Err(WouldBlock)` while some remains.
    fn flush(&mut self) -> io::Result<()>;
    /// Whether output is pending (the proxy then waits for the socket to be writable).
    fn wants_write(&self) -> bool;
}

/// The console kinds of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A VNC (RFB) console.
    Vnc,
    /// A SPICE console.
    Spice,
    /// A serial console.
    Serial,
}

impl Kind {
    /// The `CG_KIND_*` bit.
    pub fn bit(self) -> u32 {
        match self {
            Kind::Vnc => CG_KIND_VNC,
            Kind::Spice => CG_KIND_SPICE,
            Kind::Serial => CG_KIND_SERIAL,
        }
    }

    /// The kind of a single `CG_KIND_*` bit.
    pub fn from_bit(bit: u32) -> Option<Self> {
        match bit {
            CG_KIND_VNC => Some(Kind::Vnc),
            CG_KIND_SPICE => Some(Kind::Spice),
            CG_KIND_SERIAL => Some(Kind::Serial),
            _ => None,
        }
    }

    /// The lowercase name used in configuration and logs (`vnc`, `spice`, `serial`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vnc => "vnc",
            Kind::Spice => "spice",
            Kind::Serial => "serial",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The driver's options: `(section, key, value)` triples from the INI sections it asked for.
#[derive(Debug, Default, Clone)]
pub struct Options {
    entries: Vec<(String, String, String)>,
}

impl Options {
    /// Options from triples (used by the export shims and by tests).
    pub fn new(entries: Vec<(String, String, String)>) -> Self {
        Self { entries }
    }

    /// The value of `key` in `section`, if set.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
    }

    /// The keys set in `section`, in file order.
    pub fn keys<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(s, _, _)| s == section)
            .map(|(_, k, _)| k.as_str())
    }
}

/// A request to open a console: what the driver knows about one session (C:
/// `cg_session_info`).
#[derive(Debug, Clone)]
pub struct ConsoleRequest<'a> {
    /// The console kind.
    pub kind: Kind,
    /// The hypervisor's name or IP literal (no brackets); C: `host`.
    pub hypervisor: &'a str,
    /// The hypervisor port.
    pub port: u16,
    /// Username from the token source.
    pub username: Option<&'a str>,
    /// Password from the token source. Never log it.
    pub password: Option<&'a str>,
    /// Session number for logs.
    pub session_id: u64,
    /// Time allowed for the whole handshake.
    pub handshake_timeout: Duration,
}

/// The browser, as a driver sees it during `connect` (C: `cg_client_io`): blocking reads and
/// writes through the host, which frames them as websocket messages. Reads return whatever the
/// browser sent, at most `buf.len()`;
/// `read_exact` takes exactly what a handshake step needs and leaves the rest to the relay.
#[derive(Debug)]
pub struct Browser<'a> {
    io: &'a CgClientIo,
}

impl<'a> Browser<'a> {
    /// Wraps the host's callbacks.
    pub fn new(io: &'a CgClientIo) -> Self {
        Self { io }
    }
}

fn status_to_io(status: CgStatus, what: &str) -> io::Error {
    let kind = match status {
        CgStatus::TIMEOUT => io::ErrorKind::TimedOut,
        CgStatus::WOULD_BLOCK => io::ErrorKind::WouldBlock,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{what} failed ({})", status.name()))
}

/// The error for a callback the host left NULL in its `cg_client_io`.
fn no_callback(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the host gave no {what} callback for the browser client"),
    )
}

impl Read for Browser<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.io.read.ok_or_else(|| no_callback("read"))?;
        let mut n = 0usize;
        // SAFETY: the host guarantees the callbacks and ctx are valid during connect; buf is a
        // valid writable slice of buf.len() bytes and n a valid out pointer.
        let status = unsafe { read(self.io.ctx, buf.as_mut_ptr(), buf.len(), &mut n) };
        if status != CgStatus::OK {
            return Err(status_to_io(status, "reading from the browser client"));
        }
        Ok(n.min(buf.len()))
    }
}

impl Write for Browser<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let write = self.io.write.ok_or_else(|| no_callback("write"))?;
        // SAFETY: as in read; buf is a valid readable slice of buf.len() bytes.
        let status = unsafe { write(self.io.ctx, buf.as_ptr(), buf.len()) };
        if status != CgStatus::OK {
            return Err(status_to_io(status, "writing to the browser client"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The connected socket to the hypervisor, borrowed from the host: dropping it does not close
/// the descriptor. Keep it in the channel; the host keeps the descriptor open until the
/// channel is destroyed.
#[derive(Debug)]
pub struct ConsoleSocket {
    stream: ManuallyDrop<TcpStream>,
}

impl ConsoleSocket {
    /// Borrows `fd`.
    ///
    /// # Safety
    /// `fd` must be an open TCP socket that stays open for the life of the returned value.
    pub unsafe fn borrow_raw(fd: RawFd) -> Self {
        // SAFETY: the caller guarantees fd is an open socket outliving self; ManuallyDrop
        // ensures we never close it.
        let stream = unsafe { TcpStream::from_raw_fd(fd) };
        Self {
            stream: ManuallyDrop::new(stream),
        }
    }
}

impl Deref for ConsoleSocket {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl Read for ConsoleSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.stream).read(buf)
    }
}

impl Write for ConsoleSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.stream).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.stream).flush()
    }
}

impl Read for &ConsoleSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.stream).read(buf)
    }
}

impl Write for &ConsoleSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.stream).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.stream).flush()
    }
}

/// The channel of a driver that leaves the hypervisor leg as it is: every operation goes
/// straight to the socket (`noop`, and drivers whose protection ends with the handshake).
#[derive(Debug)]
pub struct PlainChannel {
    socket: ConsoleSocket,
}

impl PlainChannel {
    /// Relays over `socket` unchanged.
    pub fn new(socket: ConsoleSocket) -> Self {
        Self { socket }
    }
}

impl Channel for PlainChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn wants_write(&self) -> bool {
        false
    }
}
