//! The `extern "C"` shims behind [`export_driver!`](crate::export_driver): every entry point
//! checks its pointers, reads the host's structs by the growth rule of `docs/ABI.md`, catches
//! panics, and turns `Result`s into a status plus a message in the host's buffer.

use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::abi::*;
use crate::driver::{Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, Kind, Options};
use crate::error::DriverError;
use crate::host_log;
use crate::versioned::{read_versioned, StructTooSmall};

/// Writes `msg` into the caller's error buffer, truncated at a UTF-8 boundary.
///
/// # Safety
/// `err` is NULL or points to a valid `CgError` whose `buf` has `cap` writable bytes.
pub unsafe fn write_error(err: *mut CgError, msg: &str) {
    // SAFETY: the caller guarantees err is NULL or valid.
    let Some(err) = (unsafe { err.as_mut() }) else {
        return;
    };
    err.len = 0;
    if err.buf.is_null() || err.cap == 0 {
        return;
    }
    let n = crate::text::truncate_utf8(msg, err.cap).len();
    // SAFETY: buf has cap >= n writable bytes; msg has n readable bytes; they cannot overlap
    // (msg is ours).
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), err.buf, n) };
    err.len = n;
}

/// Runs `f`, turning a panic into `PANIC` and an error into its status and message.
fn guarded(err: *mut CgError, f: impl FnOnce() -> Result<(), DriverError>) -> CgStatus {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        Err(DriverError::new(
            CgStatus::PANIC,
            format!("driver panicked: {what}"),
        ))
    });
    match result {
        Ok(()) => CgStatus::OK,
        Err(e) => {
            // SAFETY: every shim passes the host's err pointer, NULL or valid per the ABI.
            unsafe { write_error(err, &e.message) };
            e.status
        }
    }
}

/// # Safety
/// `s` must be absent or point at `len` readable bytes for the returned lifetime.
unsafe fn cg_str<'a>(s: CgStr) -> Result<Option<&'a str>, DriverError> {
    if s.ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    std::str::from_utf8(bytes)
        .map(Some)
        .map_err(|_| DriverError::new(CgStatus::INVALID_ARGUMENT, "string is not UTF-8"))
}

fn null_arg(what: &str) -> DriverError {
    DriverError::new(CgStatus::INVALID_ARGUMENT, format!("{what} is NULL"))
}

impl From<StructTooSmall> for DriverError {
    fn from(e: StructTooSmall) -> Self {
        DriverError::new(CgStatus::INVALID_ARGUMENT, e.to_string())
    }
}

/// The `init` entry point for driver type `D`.
///
/// # Safety
/// Called by the host per the ABI: pointers valid, `options` holds `n_options` entries.
pub unsafe extern "C" fn init_shim<D: Driver>(
    host: *const CgHost,
    options: *const CgOption,
    n_options: usize,
    out_handle: *mut *mut c_void,
    err: *mut CgError,
) -> CgStatus {
    guarded(err, || {
        if !host.is_null() {
            // SAFETY: host is non-NULL and valid for the call (ABI).
            host_log::install(&unsafe { read_versioned(host) }?);
        }
        if out_handle.is_null() {
            return Err(null_arg("out_handle"));
        }
        let mut entries = Vec::with_capacity(n_options);
        if n_options > 0 {
            if options.is_null() {
                return Err(null_arg("options"));
            }
            // SAFETY: the host passes n_options valid entries.
            let options = unsafe { std::slice::from_raw_parts(options, n_options) };
            for o in options {
                // SAFETY: each CgStr in a valid option points at valid bytes during init.
                let (s, k, v) = unsafe { (cg_str(o.section)?, cg_str(o.key)?, cg_str(o.value)?) };
                let (Some(s), Some(k), Some(v)) = (s, k, v) else {
                    return Err(null_arg("option string"));
                };
                entries.push((s.to_owned(), k.to_owned(), v.to_owned()));
            }
        }
        let driver = D::init(&Options::new(entries))?;
        // SAFETY: out_handle checked non-null above.
        unsafe { *out_handle = Box::into_raw(Box::new(driver)).cast() };
        Ok(())
    })
}

/// The `connect` entry point for driver type `D`.
///
/// # Safety
/// Called by the host per the ABI: `handle` came from `init_shim::<D>`, pointers valid.
pub unsafe extern "C" fn connect_shim<D: Driver>(
    handle: *mut c_void,
    session: *const CgSessionInfo,
    client: *const CgClientIo,
    console_fd: c_int,
    out_channel: *mut CgChannel,
    err: *mut CgError,
) -> CgStatus {
    guarded(err, || {
        // SAFETY: handle is a Box<D> made by init_shim::<D>, alive until destroy.
        let driver = unsafe { handle.cast::<D>().as_ref() }.ok_or_else(|| null_arg("handle"))?;
        if session.is_null() {
            return Err(null_arg("session"));
        }
        if client.is_null() {
            return Err(null_arg("client"));
        }
        // SAFETY: both are non-NULL and valid for the call (ABI).
        let (info, browser_io) = unsafe { (read_versioned(session)?, read_versioned(client)?) };
        if out_channel.is_null() {
            return Err(null_arg("out_channel"));
        }
        if console_fd < 0 {
            return Err(DriverError::new(
                CgStatus::INVALID_ARGUMENT,
                "console_fd is negative",
            ));
        }
        let kind = Kind::from_bit(info.kind).ok_or_else(|| {
            DriverError::new(
                CgStatus::INVALID_ARGUMENT,
                format!("unknown kind {}", info.kind),
            )
        })?;
        // SAFETY: the session's strings are valid during connect (ABI).
        let (host, username, password) = unsafe {
            (
                cg_str(info.host)?,
                cg_str(info.username)?,
                cg_str(info.password)?,
            )
        };
        let session = ConsoleRequest {
            kind,
            hypervisor: host.ok_or_else(|| null_arg("session host"))?,
            port: info.port,
            username,
            password,
            session_id: info.session_id,
            handshake_timeout: Duration::from_millis(u64::from(info.handshake_timeout_ms)),
        };
        let mut client = Browser::new(&browser_io);
        // SAFETY: the host keeps console_fd open until the channel is destroyed (ABI).
        let server = unsafe { ConsoleSocket::borrow_raw(console_fd) };
        let channel = driver.connect(&session, &mut client, server)?;
        let state: Box<Box<dyn Channel>> = Box::new(channel);
        // SAFETY: out_channel checked non-null; written only on success.
        unsafe {
            *out_channel = CgChannel {
                state: Box::into_raw(state).cast(),
                vtable: &CHANNEL_VTABLE,
            }
        };
        Ok(())
    })
}

/// The `destroy` entry point for driver type `D`.
///
/// # Safety
/// `handle` came from `init_shim::<D>` and is not used again.
pub unsafe extern "C" fn destroy_shim<D: Driver>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: handle is the Box<D> from init_shim, destroyed exactly once.
        drop(unsafe { Box::from_raw(handle.cast::<D>()) });
    });
}

static CHANNEL_VTABLE: CgChannelVtable = CgChannelVtable {
    struct_size: std::mem::size_of::<CgChannelVtable>() as u32,
    read: Some(channel_read),
    write: Some(channel_write),
    flush: Some(channel_flush),
    interest: Some(channel_interest),
    destroy: Some(channel_destroy),
    #[cfg(feature = "abi-v1-plus-test")]
    test_extension: 0,
};

/// The descriptor [`export_driver!`](crate::export_driver) exports for driver type `D`: every
/// function set, `struct_size` as this crate builds it. The strings are static and
/// NUL-terminated.
pub const fn descriptor<D: Driver>(
    kinds: u32,
    flags: u32,
    name: *const c_char,
    version: *const c_char,
    description: *const c_char,
    option_sections: *const c_char,
) -> CgDriverDescriptor {
    CgDriverDescriptor {
        magic: CG_DRIVER_MAGIC,
        abi_version: CG_ABI_VERSION,
        struct_size: std::mem::size_of::<CgDriverDescriptor>() as u32,
        kinds,
        flags,
        name,
        version,
        description,
        option_sections,
        init: Some(init_shim::<D>),
        connect: Some(connect_shim::<D>),
        destroy: Some(destroy_shim::<D>),
        #[cfg(feature = "abi-v1-plus-test")]
        test_extension: 0,
    }
}

/// # Safety
/// `state` is the `Box<Box<dyn Channel>>` made by `connect_shim`, used by one thread at a time.
unsafe fn channel<'a>(state: *mut c_void) -> Result<&'a mut Box<dyn Channel>, DriverError> {
    // SAFETY: guaranteed by the caller.
    unsafe { state.cast::<Box<dyn Channel>>().as_mut() }.ok_or_else(|| null_arg("channel"))
}

fn io_status(e: io::Error) -> Result<(), DriverError> {
    Err(DriverError::from(e))
}

unsafe extern "C" fn channel_read(
    state: *mut c_void,
    buf: *mut u8,
    len: usize,
    out_n: *mut usize,
    err: *mut CgError,
) -> CgStatus {
    guarded(err, || {
        // SAFETY: state per the ABI.
        let ch = unsafe { channel(state)? };
        if buf.is_null() || out_n.is_null() {
            return Err(null_arg("buf or out_n"));
        }
        // SAFETY: the host passes a writable buffer of len bytes.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        match ch.read(buf) {
            // SAFETY: out_n checked non-null.
            Ok(n) => unsafe { *out_n = n.min(len) },
            Err(e) => return io_status(e),
        }
        Ok(())
    })
}

unsafe extern "C" fn channel_write(
    state: *mut c_void,
    buf: *const u8,
    len: usize,
    out_n: *mut usize,
    err: *mut CgError,
) -> CgStatus {
    guarded(err, || {
        // SAFETY: state per the ABI.
        let ch = unsafe { channel(state)? };
        if buf.is_null() || out_n.is_null() {
            return Err(null_arg("buf or out_n"));
        }
        // SAFETY: out_n checked non-null; zero it so a failure reports nothing written.
        unsafe { *out_n = 0 };
        // SAFETY: the host passes a readable buffer of len bytes.
        let buf = unsafe { std::slice::from_raw_parts(buf, len) };
        match ch.write(buf) {
            // SAFETY: out_n checked non-null.
            Ok(n) => unsafe { *out_n = n.min(len) },
            Err(e) => return io_status(e),
        }
        Ok(())
    })
}

unsafe extern "C" fn channel_flush(state: *mut c_void, err: *mut CgError) -> CgStatus {
    guarded(err, || {
        // SAFETY: state per the ABI.
        let ch = unsafe { channel(state)? };
        ch.flush().or_else(io_status)
    })
}

unsafe extern "C" fn channel_interest(state: *const c_void) -> u32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: state per the ABI; only read.
        match unsafe { state.cast::<Box<dyn Channel>>().as_ref() } {
            Some(ch) if ch.wants_write() => CG_INTEREST_READ | CG_INTEREST_WRITE,
            _ => CG_INTEREST_READ,
        }
    }))
    .unwrap_or(CG_INTEREST_READ)
}

unsafe extern "C" fn channel_destroy(state: *mut c_void) {
    if state.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: state is the Box made by connect_shim, destroyed exactly once.
        drop(unsafe { Box::from_raw(state.cast::<Box<dyn Channel>>()) });
    });
}

/// Exports a [`Driver`] as `consolegate_driver_v1`.
///
/// ```text
/// consolegate_driver_api::export_driver! {
///     driver: Noop,
///     name: "noop",
///     kinds: CG_KIND_VNC | CG_KIND_SPICE | CG_KIND_SERIAL,
///     flags: CG_DRIVER_FLAG_CLEARTEXT,
///     option_sections: "",
///     description: "relays bytes to the hypervisor unchanged (cleartext)",
/// }
/// ```
/// `kinds` and `flags` are expressions over the `CG_*` constants of [`abi`](crate::abi).
#[macro_export]
macro_rules! export_driver {
    (
        driver: $driver:ty,
        name: $name:literal,
        kinds: $kinds:expr,
        flags: $flags:expr,
        option_sections: $sections:literal,
        description: $description:literal $(,)?
    ) => {
        /// The driver's one exported symbol: its static descriptor.
        #[no_mangle]
        pub extern "C" fn consolegate_driver_v1() -> *const $crate::abi::CgDriverDescriptor {
            #[allow(unused_imports)]
            use $crate::abi::*;
            static DESCRIPTOR: $crate::abi::StaticDescriptor =
                $crate::abi::StaticDescriptor($crate::export::descriptor::<$driver>(
                    $kinds,
                    $flags,
                    concat!($name, "\0").as_ptr().cast(),
                    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
                    concat!($description, "\0").as_ptr().cast(),
                    concat!($sections, "\0").as_ptr().cast(),
                ));
            &DESCRIPTOR.0
        }
    };
}
