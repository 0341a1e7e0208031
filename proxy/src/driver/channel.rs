//! A driver's established channel behind a safe type, and the `connect` call that makes one.
//! The channel's vtable is read by the growth rule of `docs/ABI.md` and refused if one of its
//! functions is NULL.

use std::ffi::c_void;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use consolegate_driver_api::abi::*;
use consolegate_driver_api::versioned::read_versioned;
use consolegate_driver_api::ConsoleRequest;

use super::browser_io::{with_client_io, BrowserIo};
use super::loader::{error_text, LoadedDriver};

const MESSAGE_CAP: usize = 512;

/// Why a driver's `connect` failed: its status and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectFailure {
    /// The driver's status.
    pub status: CgStatus,
    /// The driver's message (already meant for operators; contains no secrets).
    pub message: String,
}

impl LoadedDriver {
    /// Runs the driver's handshake on `server` (connected, blocking, with timeouts) and returns
    /// the channel. The channel keeps the driver loaded.
    pub fn connect(
        self: &Arc<Self>,
        request: &ConsoleRequest<'_>,
        client: &mut dyn BrowserIo,
        server: &TcpStream,
    ) -> Result<DriverChannel, ConnectFailure> {
        let info = CgSessionInfo {
            struct_size: std::mem::size_of::<CgSessionInfo>() as u32,
            kind: request.kind.bit(),
            host: CgStr::borrow(request.hypervisor),
            port: request.port,
            reserved: 0,
            handshake_timeout_ms: u32::try_from(request.handshake_timeout.as_millis())
                .unwrap_or(u32::MAX),
            username: CgStr::from_opt(request.username),
            password: CgStr::from_opt(request.password),
            session_id: request.session_id,
            #[cfg(feature = "abi-v1-plus-test")]
            test_extension: 1,
        };
        let mut message = [0u8; MESSAGE_CAP];
        let mut err = CgError {
            buf: message.as_mut_ptr(),
            cap: message.len(),
            len: 0,
        };
        let mut out = CgChannel {
            state: std::ptr::null_mut(),
            vtable: std::ptr::null(),
        };
        let status = with_client_io(client, |io| {
            // SAFETY: every pointer is valid for the call; the handle is this driver's; the
            // socket stays open until the returned channel is dropped (DriverChannel borrows
            // nothing, but the session drops the channel before the socket).
            unsafe {
                (self.connect)(
                    self.raw_handle(),
                    &info,
                    io,
                    server.as_raw_fd(),
                    &mut out,
                    &mut err,
                )
            }
        });
        if status != CgStatus::OK {
            return Err(ConnectFailure {
                status,
                message: error_text(&message, err.len),
            });
        }
        if out.vtable.is_null() {
            return Err(ConnectFailure {
                status: CgStatus::INTERNAL,
                message: format!("driver '{}' returned no channel", self.name()),
            });
        }
        // SAFETY: a successful connect wrote a valid vtable pointer (static in the driver).
        let ops = unsafe { ChannelOps::read(out.vtable) }.map_err(|e| {
            if let Some(destroy) = e.destroy {
                // SAFETY: the channel is the driver's, never used; destroyed exactly once.
                unsafe { destroy(out.state) };
            }
            ConnectFailure {
                status: CgStatus::INTERNAL,
                message: e.message,
            }
        })?;
        Ok(DriverChannel {
            state: out.state,
            ops,
            _driver: Arc::clone(self),
        })
    }
}

/// A channel's vtable as read from its driver, with every function present.
struct ChannelOps {
    read: CgChannelReadFn,
    write: CgChannelWriteFn,
    flush: CgChannelFlushFn,
    interest: CgChannelInterestFn,
    destroy: CgChannelDestroyFn,
}

/// Why a returned vtable is refused, and its `destroy` (if any) to free the channel with.
struct BadVtable {
    message: String,
    destroy: Option<CgChannelDestroyFn>,
}

impl ChannelOps {
    /// Copies the driver's vtable and checks that no function is NULL.
    ///
    /// # Safety
    /// `vtable` is non-NULL and points at a channel vtable of its `struct_size` bytes.
    unsafe fn read(vtable: *const CgChannelVtable) -> Result<Self, BadVtable> {
        // SAFETY: guaranteed by the caller.
        let vt = unsafe { read_versioned(vtable) }.map_err(|e| BadVtable {
            message: e.to_string(),
            destroy: None,
        })?;
        #[cfg(feature = "abi-v1-plus-test")]
        super::log_test_extension("cg_channel_vtable", vt.test_extension);
        let null = |field: &str| BadVtable {
            message: format!("channel vtable field '{field}' is NULL"),
            destroy: vt.destroy,
        };
        Ok(Self {
            read: vt.read.ok_or_else(|| null("read"))?,
            write: vt.write.ok_or_else(|| null("write"))?,
            flush: vt.flush.ok_or_else(|| null("flush"))?,
            interest: vt.interest.ok_or_else(|| null("interest"))?,
            destroy: vt.destroy.ok_or_else(|| null("destroy"))?,
        })
    }
}

/// An established channel to the hypervisor. Non-blocking once the session has set the socket
/// non-blocking. Must be dropped before the socket is closed.
pub struct DriverChannel {
    state: *mut c_void,
    ops: ChannelOps,
    _driver: Arc<LoadedDriver>,
}

// SAFETY: the ABI requires channel state to be usable from the thread that owns it, and a
// session moves its channel to no other thread while using it; the driver library stays
// loaded through the Arc.
unsafe impl Send for DriverChannel {}

fn failure(status: CgStatus, message: &[u8], len: usize) -> io::Error {
    if status == CgStatus::WOULD_BLOCK {
        return io::ErrorKind::WouldBlock.into();
    }
    let kind = if status == CgStatus::TIMEOUT {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    let text = error_text(message, len);
    io::Error::new(
        kind,
        if text.is_empty() {
            status.name().to_string()
        } else {
            text
        },
    )
}

impl DriverChannel {
    /// Calls one vtable function with an error buffer and turns its status into a result.
    fn call(
        &mut self,
        f: impl FnOnce(&ChannelOps, *mut c_void, &mut CgError) -> CgStatus,
    ) -> io::Result<()> {
        let mut message = [0u8; MESSAGE_CAP];
        let mut err = CgError {
            buf: message.as_mut_ptr(),
            cap: MESSAGE_CAP,
            len: 0,
        };
        let status = f(&self.ops, self.state, &mut err);
        match status {
            CgStatus::OK => Ok(()),
            s => Err(failure(s, &message, err.len)),
        }
    }

    /// Reads plaintext from the hypervisor: `Ok(0)` at end of stream, `WouldBlock` for none.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0usize;
        // SAFETY: state and functions from a successful connect (the Arc keeps the driver
        // loaded); buf, n and err are valid for the call.
        self.call(|vt, state, err| unsafe {
            (vt.read)(state, buf.as_mut_ptr(), buf.len(), &mut n, err)
        })?;
        Ok(n.min(buf.len()))
    }

    /// Gives plaintext to the hypervisor; returns how much was taken.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut n = 0usize;
        // SAFETY: as in read.
        self.call(|vt, state, err| unsafe {
            (vt.write)(state, buf.as_ptr(), buf.len(), &mut n, err)
        })?;
        Ok(n.min(buf.len()))
    }

    /// Sends pending output; `WouldBlock` while some remains.
    pub fn flush(&mut self) -> io::Result<()> {
        // SAFETY: as in read.
        self.call(|vt, state, err| unsafe { (vt.flush)(state, err) })
    }

    /// Whether the channel has output waiting for the socket to become writable.
    pub fn wants_write(&self) -> bool {
        // SAFETY: as in read.
        unsafe { (self.ops.interest)(self.state) & CG_INTEREST_WRITE != 0 }
    }
}

impl Drop for DriverChannel {
    fn drop(&mut self) {
        // SAFETY: destroyed exactly once, before the session closes the socket.
        unsafe { (self.ops.destroy)(self.state) };
    }
}
