//! The `#[repr(C)]` types of the driver ABI, mirrored one to one by
//! `include/consolegate_driver.h`, and the v1 minimum size of each struct that carries a
//! `struct_size`.
//!
//! How the ABI may change, and what each side does with an older or newer peer, is written
//! once, in `docs/ABI.md`. [`read_versioned`](crate::versioned::read_versioned) is how either
//! side reads the other's structs by those rules.
//!
//! Every function pointer is an `Option`: the C side may leave one NULL, and the reader
//! refuses or skips it instead of calling address 0 (`Option<extern "C" fn>` has the same
//! layout as a C function pointer, with `None` as NULL).

use std::ffi::{c_char, c_int, c_void};
use std::mem::{offset_of, size_of};

/// `"CGDV"`: the first field of every driver descriptor.
pub const CG_DRIVER_MAGIC: u32 = 0x4347_4456;

/// The ABI version this crate describes. A proxy loads a driver only if the driver's
/// descriptor carries exactly this version.
pub const CG_ABI_VERSION: u32 = 1;

/// The one symbol a driver exports: `const cg_driver_descriptor *consolegate_driver_v1(void)`.
pub const CG_DRIVER_SYMBOL: &str = "consolegate_driver_v1";

/// Console kind bit: a VNC (RFB) console.
pub const CG_KIND_VNC: u32 = 1 << 0;
/// Console kind bit: a SPICE console (one connection per SPICE channel).
pub const CG_KIND_SPICE: u32 = 1 << 1;
/// Console kind bit: a serial console (an opaque byte stream).
pub const CG_KIND_SERIAL: u32 = 1 << 2;

/// Descriptor flag: the driver leaves the hypervisor leg in cleartext. The proxy refuses to
/// start with such a driver unless `connect_insecure = true`.
pub const CG_DRIVER_FLAG_CLEARTEXT: u32 = 1 << 0;
/// Descriptor flag: the driver is a placeholder that cannot complete a session yet. The
/// proxy warns about it at start-up and in `--check-config`.
pub const CG_DRIVER_FLAG_PLACEHOLDER: u32 = 1 << 1;

/// Channel interest bit: the channel wants to read from its socket (always set while open).
pub const CG_INTEREST_READ: u32 = 1 << 0;
/// Channel interest bit: the channel has output pending and wants the socket writable.
pub const CG_INTEREST_WRITE: u32 = 1 << 1;

/// Log levels of the host's log callback; the numbers match the `log` crate's `Level`.
pub const CG_LOG_ERROR: u32 = 1;
/// Warning.
pub const CG_LOG_WARN: u32 = 2;
/// Information.
pub const CG_LOG_INFO: u32 = 3;
/// Debugging detail.
pub const CG_LOG_DEBUG: u32 = 4;
/// Tracing detail.
pub const CG_LOG_TRACE: u32 = 5;

/// A result code. Numbers are fixed forever; new codes are appended.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CgStatus(pub u32);

impl CgStatus {
    /// Success.
    pub const OK: Self = Self(0);
    /// Non-blocking I/O cannot progress now; retry when the socket is ready.
    pub const WOULD_BLOCK: Self = Self(1);
    /// A required pointer was NULL or a struct too small.
    pub const INVALID_ARGUMENT: Self = Self(10);
    /// The driver's options are wrong (at `init`).
    pub const CONFIG: Self = Self(11);
    /// A socket error.
    pub const IO: Self = Self(12);
    /// A step did not finish before its deadline.
    pub const TIMEOUT: Self = Self(13);
    /// The hypervisor broke its protocol (malformed or oversized message).
    pub const PROTOCOL: Self = Self(14);
    /// TLS failed: certificate verification, handshake, or the peer's alert.
    pub const TLS: Self = Self(15);
    /// The hypervisor rejected our credentials (password, certificate, user).
    pub const AUTH: Self = Self(16);
    /// The driver's security policy refused the server (for example: no VeNCrypt offered).
    pub const REFUSED: Self = Self(17);
    /// The server asks for something this driver does not implement.
    pub const UNSUPPORTED: Self = Self(18);
    /// The browser client broke the protocol or went away during the handshake.
    pub const CLIENT: Self = Self(19);
    /// The driver panicked; the panic was caught at the ABI boundary.
    pub const PANIC: Self = Self(20);
    /// A bug inside the driver.
    pub const INTERNAL: Self = Self(21);

    /// A short stable name for logs (`"would_block"`, `"tls"`, ...).
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "would_block",
            10 => "invalid_argument",
            11 => "config",
            12 => "io",
            13 => "timeout",
            14 => "protocol",
            15 => "tls",
            16 => "auth",
            17 => "refused",
            18 => "unsupported",
            19 => "client",
            20 => "panic",
            21 => "internal",
            _ => "unknown",
        }
    }

    /// What a browser may be shown for a session that failed with this status: generic, free
    /// of host names, addresses, certificate subjects and configuration (those go to the log).
    pub fn browser_phrase(self) -> &'static str {
        match self {
            CgStatus::TIMEOUT => "the console did not answer in time",
            CgStatus::TLS => "the secure connection to the console failed",
            CgStatus::AUTH => "the console refused the credentials",
            CgStatus::REFUSED | CgStatus::UNSUPPORTED => {
                "the console offers no security the proxy accepts"
            }
            CgStatus::CLIENT => "the browser broke the console protocol",
            CgStatus::IO | CgStatus::PROTOCOL => "the console connection failed",
            _ => "console proxy error",
        }
    }
}

/// A borrowed UTF-8 string: pointer plus length, not NUL-terminated. `ptr == NULL` means
/// "absent" (distinct from present and empty).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CgStr {
    /// First byte, or NULL when absent.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl CgStr {
    /// The absent string.
    pub const NONE: Self = Self {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows a Rust string. The result is valid while `s` is.
    pub fn borrow(s: &str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Borrows an optional Rust string (`None` becomes the absent string).
    pub fn from_opt(s: Option<&str>) -> Self {
        s.map_or(Self::NONE, Self::borrow)
    }
}

/// A buffer the caller owns, into which the callee writes an error message.
#[repr(C)]
#[derive(Debug)]
pub struct CgError {
    /// The caller's buffer (may be NULL when `cap == 0`).
    pub buf: *mut u8,
    /// Its capacity in bytes.
    pub cap: usize,
    /// Set by the callee: bytes written (UTF-8, truncated at a character boundary to fit).
    pub len: usize,
}

/// One `key = value` of the INI section(s) a driver asked for.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CgOption {
    /// The INI section, for example `console_proxy_tls`.
    pub section: CgStr,
    /// The key.
    pub key: CgStr,
    /// The value, trimmed.
    pub value: CgStr,
}

/// Log callback the host gives the driver: `level` is one of `CG_LOG_*`.
pub type CgLogFn = unsafe extern "C" fn(ctx: *mut c_void, level: u32, msg: CgStr);

/// Services the host offers a driver; passed to `init`, valid until `destroy` returns.
#[repr(C)]
#[derive(Debug)]
pub struct CgHost {
    /// `size_of::<CgHost>()` as the host built it; at least [`CG_HOST_V1_SIZE`].
    pub struct_size: u32,
    /// The host's ABI version.
    pub abi_version: u32,
    /// Context for `log`.
    pub log_ctx: *mut c_void,
    /// Writes one log line through the host's logger; safe to call from any thread. May be
    /// NULL: the driver then logs nothing.
    pub log: Option<CgLogFn>,
    /// Test only (feature `abi-v1-plus-test`): a field appended after v1, so that the tests
    /// can run v1 drivers against a host whose structs have grown.
    #[cfg(feature = "abi-v1-plus-test")]
    pub test_extension: u64,
}

/// The size of a v1 [`CgHost`]: the end of its `log` field.
pub const CG_HOST_V1_SIZE: u32 = (offset_of!(CgHost, log) + size_of::<Option<CgLogFn>>()) as u32;

/// What the driver learns about one session at `connect`.
#[repr(C)]
#[derive(Debug)]
pub struct CgSessionInfo {
    /// `size_of::<CgSessionInfo>()` as the host built it; at least
    /// [`CG_SESSION_INFO_V1_SIZE`].
    pub struct_size: u32,
    /// One `CG_KIND_*` bit.
    pub kind: u32,
    /// The hypervisor host from the token (name or IP literal without brackets).
    pub host: CgStr,
    /// The hypervisor port.
    pub port: u16,
    /// Reserved padding; zero.
    pub reserved: u16,
    /// Milliseconds the driver has for its whole handshake, client and server side.
    pub handshake_timeout_ms: u32,
    /// Username for the console, from the token source; absent if none.
    pub username: CgStr,
    /// Password for the console, from the token source; absent if none. Never log it.
    pub password: CgStr,
    /// A number identifying the session in logs (never the token).
    pub session_id: u64,
    /// Test only (feature `abi-v1-plus-test`): a field appended after v1.
    #[cfg(feature = "abi-v1-plus-test")]
    pub test_extension: u64,
}

/// The size of a v1 [`CgSessionInfo`]: the end of its `session_id` field.
pub const CG_SESSION_INFO_V1_SIZE: u32 =
    (offset_of!(CgSessionInfo, session_id) + size_of::<u64>()) as u32;

/// `cg_client_io.read`: reads at most `len` bytes from the browser; blocks until at least one
/// byte arrives. `*out_n = 0` with `OK` means the client closed.
pub type CgClientReadFn =
    unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize, out_n: *mut usize) -> CgStatus;

/// `cg_client_io.write`: writes all `len` bytes to the browser as one binary websocket message.
pub type CgClientWriteFn =
    unsafe extern "C" fn(ctx: *mut c_void, buf: *const u8, len: usize) -> CgStatus;

/// Blocking byte stream to the browser client, valid only during `connect`.
/// The host does the websocket framing; the host enforces the handshake deadline.
#[repr(C)]
#[derive(Debug)]
pub struct CgClientIo {
    /// `size_of::<CgClientIo>()` as the host built it; at least [`CG_CLIENT_IO_V1_SIZE`].
    pub struct_size: u32,
    /// Context for the callbacks.
    pub ctx: *mut c_void,
    /// See [`CgClientReadFn`]. Bytes the driver does not read are relayed later.
    pub read: Option<CgClientReadFn>,
    /// See [`CgClientWriteFn`].
    pub write: Option<CgClientWriteFn>,
    /// Test only (feature `abi-v1-plus-test`): a field appended after v1.
    #[cfg(feature = "abi-v1-plus-test")]
    pub test_extension: u64,
}

/// The size of a v1 [`CgClientIo`]: the end of its `write` field.
pub const CG_CLIENT_IO_V1_SIZE: u32 =
    (offset_of!(CgClientIo, write) + size_of::<Option<CgClientWriteFn>>()) as u32;

/// `cg_channel_vtable.read`: reads plaintext from the hypervisor. `OK` with `*out_n = 0` is end
/// of stream; `WOULD_BLOCK` means nothing now.
pub type CgChannelReadFn = unsafe extern "C" fn(
    state: *mut c_void,
    buf: *mut u8,
    len: usize,
    out_n: *mut usize,
    err: *mut CgError,
) -> CgStatus;

/// `cg_channel_vtable.write`: takes up to `len` bytes of plaintext towards the hypervisor;
/// `*out_n` says how many. `WOULD_BLOCK` (with `*out_n = 0`) when its output buffer is full.
pub type CgChannelWriteFn = unsafe extern "C" fn(
    state: *mut c_void,
    buf: *const u8,
    len: usize,
    out_n: *mut usize,
    err: *mut CgError,
) -> CgStatus;

/// `cg_channel_vtable.flush`: writes pending output to the socket; `WOULD_BLOCK` if some
/// remains.
pub type CgChannelFlushFn = unsafe extern "C" fn(state: *mut c_void, err: *mut CgError) -> CgStatus;

/// `cg_channel_vtable.interest`: `CG_INTEREST_*` bits, what the channel needs from its socket
/// now.
pub type CgChannelInterestFn = unsafe extern "C" fn(state: *const c_void) -> u32;

/// `cg_channel_vtable.destroy`: frees the channel (a TLS driver may first try to send
/// close_notify). Does not close the socket: the host owns it.
pub type CgChannelDestroyFn = unsafe extern "C" fn(state: *mut c_void);

/// The operations on an established channel to the hypervisor. All are non-blocking: the
/// host has set the server socket to non-blocking mode before it first calls them. Every
/// function is required: the host refuses a channel whose vtable has a NULL one.
#[repr(C)]
#[derive(Debug)]
pub struct CgChannelVtable {
    /// `size_of::<CgChannelVtable>()` as the driver built it; at least
    /// [`CG_CHANNEL_VTABLE_V1_SIZE`].
    pub struct_size: u32,
    /// See [`CgChannelReadFn`].
    pub read: Option<CgChannelReadFn>,
    /// See [`CgChannelWriteFn`].
    pub write: Option<CgChannelWriteFn>,
    /// See [`CgChannelFlushFn`].
    pub flush: Option<CgChannelFlushFn>,
    /// See [`CgChannelInterestFn`].
    pub interest: Option<CgChannelInterestFn>,
    /// See [`CgChannelDestroyFn`].
    pub destroy: Option<CgChannelDestroyFn>,
    /// Test only (feature `abi-v1-plus-test`): a field appended after v1, which a v1 driver
    /// does not have; the host reads it as absent (zero).
    #[cfg(feature = "abi-v1-plus-test")]
    pub test_extension: u64,
}

/// The size of a v1 [`CgChannelVtable`]: the end of its `destroy` field.
pub const CG_CHANNEL_VTABLE_V1_SIZE: u32 =
    (offset_of!(CgChannelVtable, destroy) + size_of::<Option<CgChannelDestroyFn>>()) as u32;

/// An established channel: driver state plus its operations. Written by `connect` only on
/// success. Not versioned: it never grows (the vtable does).
#[repr(C)]
#[derive(Debug)]
pub struct CgChannel {
    /// Driver-owned state, passed to every vtable function.
    pub state: *mut c_void,
    /// The operations; static in the driver.
    pub vtable: *const CgChannelVtable,
}

/// `init`: reads the options, returns the driver handle in `*out_handle` on success.
pub type CgInitFn = unsafe extern "C" fn(
    host: *const CgHost,
    options: *const CgOption,
    n_options: usize,
    out_handle: *mut *mut c_void,
    err: *mut CgError,
) -> CgStatus;

/// `connect`: runs the security handshake on the connected, blocking `server_fd` (with the
/// browser through `client`) and fills `*out_channel` on success. Called from many threads at
/// once with the same handle. Must not close `server_fd`.
pub type CgConnectFn = unsafe extern "C" fn(
    handle: *mut c_void,
    session: *const CgSessionInfo,
    client: *const CgClientIo,
    server_fd: c_int,
    out_channel: *mut CgChannel,
    err: *mut CgError,
) -> CgStatus;

/// `destroy`: frees the handle; called once, after every channel is destroyed.
pub type CgDestroyFn = unsafe extern "C" fn(handle: *mut c_void);

/// What `consolegate_driver_v1()` returns: static for the life of the library. Every function
/// is required: the host refuses a descriptor with a NULL one.
#[repr(C)]
#[derive(Debug)]
pub struct CgDriverDescriptor {
    /// `CG_DRIVER_MAGIC`.
    pub magic: u32,
    /// `CG_ABI_VERSION` the driver was built against.
    pub abi_version: u32,
    /// `size_of::<CgDriverDescriptor>()` as the driver built it; at least
    /// [`CG_DRIVER_DESCRIPTOR_V1_SIZE`].
    pub struct_size: u32,
    /// `CG_KIND_*` bits: the console kinds the driver serves.
    pub kinds: u32,
    /// `CG_DRIVER_FLAG_*` bits.
    pub flags: u32,
    /// Driver name (NUL-terminated), equal to the `<name>` in `libconsolegate_<name>.so`.
    pub name: *const c_char,
    /// Driver version (NUL-terminated).
    pub version: *const c_char,
    /// One line saying what the driver does (NUL-terminated).
    pub description: *const c_char,
    /// Comma-separated INI sections whose keys the host passes to `init` (NUL-terminated;
    /// empty for none).
    pub option_sections: *const c_char,
    /// See [`CgInitFn`].
    pub init: Option<CgInitFn>,
    /// See [`CgConnectFn`].
    pub connect: Option<CgConnectFn>,
    /// See [`CgDestroyFn`].
    pub destroy: Option<CgDestroyFn>,
    /// Test only (feature `abi-v1-plus-test`): a field appended after v1, which a v1 driver
    /// does not have; the host reads it as absent (zero).
    #[cfg(feature = "abi-v1-plus-test")]
    pub test_extension: u64,
}

/// The size of a v1 [`CgDriverDescriptor`]: the end of its `destroy` field.
pub const CG_DRIVER_DESCRIPTOR_V1_SIZE: u32 =
    (offset_of!(CgDriverDescriptor, destroy) + size_of::<Option<CgDestroyFn>>()) as u32;

/// Makes a `static` descriptor possible: it holds only pointers to static data and functions.
#[repr(transparent)]
#[derive(Debug)]
pub struct StaticDescriptor(pub CgDriverDescriptor);

// SAFETY: a StaticDescriptor only points at 'static, immutable strings and at functions, so
// sharing it between threads cannot race.
unsafe impl Sync for StaticDescriptor {}
