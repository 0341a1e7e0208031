//! The export shims keep every promise of the ABI page: a panic becomes `CG_PANIC` with its
//! message, NULL arguments become `CG_INVALID_ARGUMENT`, errors fill the caller's buffer
//! truncated at a character boundary, outputs are written only on success, and the host's
//! `cg_host` is read by the growth rule (below v1 refused, larger accepted).

use std::ffi::c_void;
use std::ptr;

use consolegate_driver_api::abi::*;
use consolegate_driver_api::export::{connect_shim, init_shim, write_error};
use consolegate_driver_api::{
    Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, DriverError, Options,
};

struct Touchy;

impl Driver for Touchy {
    fn init(options: &Options) -> Result<Self, DriverError> {
        match options.get("touchy", "mode") {
            Some("panic") => panic!("boom in init"),
            Some("fail") => Err(DriverError::config("[touchy] mode: 'fail' is not allowed")),
            _ => Ok(Touchy),
        }
    }

    fn connect(
        &self,
        _: &ConsoleRequest<'_>,
        _: &mut Browser<'_>,
        _: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        panic!("boom in connect")
    }
}

fn init(mode: &str) -> (CgStatus, String, *mut c_void) {
    init_with_host(ptr::null(), mode)
}

/// Calls `init_shim::<Touchy>` with `host` (NULL, or valid for its `struct_size` bytes).
fn init_with_host(host: *const CgHost, mode: &str) -> (CgStatus, String, *mut c_void) {
    let (section, key) = ("touchy", "mode");
    let option = CgOption {
        section: CgStr::borrow(section),
        key: CgStr::borrow(key),
        value: CgStr::borrow(mode),
    };
    let mut buf = [0u8; 256];
    let mut err = CgError {
        buf: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    let mut handle = ptr::null_mut();
    // SAFETY: all pointers valid for the call.
    let status = unsafe { init_shim::<Touchy>(host, &option, 1, &mut handle, &mut err) };
    (
        status,
        String::from_utf8_lossy(&buf[..err.len]).into_owned(),
        handle,
    )
}

#[test]
fn a_panic_in_init_becomes_cg_panic_with_its_message() {
    let (status, message, handle) = init("panic");
    assert_eq!(status, CgStatus::PANIC);
    assert_eq!(message, "driver panicked: boom in init");
    assert!(handle.is_null(), "no output on failure");
}

#[test]
fn an_init_error_carries_status_and_message() {
    let (status, message, handle) = init("fail");
    assert_eq!(
        (status, message.as_str()),
        (CgStatus::CONFIG, "[touchy] mode: 'fail' is not allowed")
    );
    assert!(handle.is_null());
}

#[test]
fn null_arguments_are_refused_not_dereferenced() {
    let (status, _, handle) = init("ok");
    assert_eq!(status, CgStatus::OK);
    let mut buf = [0u8; 128];
    let mut err = CgError {
        buf: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    // SAFETY: handle from init; NULL session on purpose.
    let status = unsafe {
        connect_shim::<Touchy>(
            handle,
            ptr::null(),
            ptr::null(),
            3,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, CgStatus::INVALID_ARGUMENT);
    assert_eq!(String::from_utf8_lossy(&buf[..err.len]), "session is NULL");
}

#[test]
fn error_text_is_cut_at_a_character_boundary() {
    let mut buf = [0u8; 5];
    let mut err = CgError {
        buf: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    // SAFETY: err points at a valid 5-byte buffer.
    unsafe { write_error(&mut err, "ééé") };
    assert_eq!(err.len, 4);
    assert_eq!(std::str::from_utf8(&buf[..err.len]).unwrap(), "éé");
}

fn host(struct_size: u32) -> CgHost {
    CgHost {
        struct_size,
        abi_version: CG_ABI_VERSION,
        log_ctx: ptr::null_mut(),
        log: None,
    }
}

#[test]
fn a_host_struct_below_its_v1_size_is_refused() {
    let small = host(CG_HOST_V1_SIZE - 8);
    let (status, message, handle) = init_with_host(&small, "ok");
    assert_eq!(status, CgStatus::INVALID_ARGUMENT);
    assert_eq!(
        message,
        format!(
            "cg_host.struct_size is {}, below the v1 size of {CG_HOST_V1_SIZE} bytes",
            CG_HOST_V1_SIZE - 8
        )
    );
    assert!(handle.is_null(), "no output on failure");
}

#[test]
fn a_larger_host_struct_from_a_newer_host_is_accepted() {
    #[repr(C)]
    struct NewerHost {
        v1: CgHost,
        extra: u64,
    }
    let newer = NewerHost {
        v1: host(std::mem::size_of::<NewerHost>() as u32),
        extra: u64::MAX,
    };
    let (status, message, handle) = init_with_host(&newer.v1, "ok");
    assert_eq!((status, message.as_str()), (CgStatus::OK, ""));
    assert!(!handle.is_null());
    assert_eq!(newer.extra, u64::MAX);
}
