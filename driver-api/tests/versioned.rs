//! The growth rule of `docs/ABI.md` as `read_versioned` and the export shims apply it: a
//! struct below its v1 size is refused, a field past the writer's `struct_size` reads as
//! absent, and a larger (newer) writer's extra fields are ignored.

use std::ffi::c_void;
use std::ptr;

use consolegate_driver_api::abi::*;
use consolegate_driver_api::export::init_shim;
use consolegate_driver_api::versioned::{read_versioned, StructTooSmall, Versioned};
use consolegate_driver_api::{
    Channel, ClientStream, Driver, DriverError, Options, ServerSocket, Session,
};

/// A reader's view of a struct that has grown once: v1 ended after `a`, v2 appended `b`.
#[repr(C)]
#[derive(Debug, PartialEq)]
struct Grown {
    struct_size: u32,
    a: u32,
    b: u64,
}

// SAFETY: repr(C); struct_size is the first field, inside v1 (8 bytes); b is an integer.
unsafe impl Versioned for Grown {
    const C_NAME: &'static str = "grown";
    const V1_SIZE: u32 = 8;
    const SIZE_OFFSET: usize = 0;
}

/// A writer's struct: `Grown` plus one field this reader does not know.
#[repr(C)]
struct Newer {
    known: Grown,
    extra: u64,
}

#[test]
fn a_field_past_an_older_writers_struct_size_reads_as_absent() {
    // A v1 writer: its struct_size stops before b, whatever the bytes after it hold.
    let v1 = Grown {
        struct_size: 8,
        a: 7,
        b: u64::MAX,
    };
    // SAFETY: v1 is a valid, readable Grown.
    let read = unsafe { read_versioned(&v1) }.unwrap();
    assert_eq!(
        read,
        Grown {
            struct_size: 8,
            a: 7,
            b: 0
        }
    );
}

#[test]
fn a_newer_writers_extra_fields_are_ignored() {
    let newer = Newer {
        known: Grown {
            struct_size: std::mem::size_of::<Newer>() as u32,
            a: 1,
            b: 2,
        },
        extra: u64::MAX,
    };
    // SAFETY: newer starts with a Grown and has struct_size readable bytes.
    let read = unsafe { read_versioned(ptr::from_ref(&newer).cast::<Grown>()) }.unwrap();
    assert_eq!((read.a, read.b), (1, 2));
    assert_eq!(newer.extra, u64::MAX);
}

#[test]
fn a_struct_below_its_v1_size_is_refused() {
    let short = Grown {
        struct_size: 4,
        a: 0,
        b: 0,
    };
    // SAFETY: short is a valid, readable Grown.
    let err = unsafe { read_versioned(&short) }.unwrap_err();
    assert_eq!(
        err,
        StructTooSmall {
            structure: "grown",
            found: 4,
            minimum: 8
        }
    );
    assert_eq!(
        err.to_string(),
        "grown.struct_size is 4, below the v1 size of 8 bytes"
    );
}

struct Plain;

impl Driver for Plain {
    fn init(_: &Options) -> Result<Self, DriverError> {
        Ok(Plain)
    }

    fn connect(
        &self,
        _: &Session<'_>,
        _: &mut ClientStream<'_>,
        _: ServerSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        Err(DriverError::new(CgStatus::UNSUPPORTED, "not used"))
    }
}

/// Calls `init_shim::<Plain>` with `host`: its status, message and handle.
fn init_with_host(host: *const CgHost) -> (CgStatus, String, *mut c_void) {
    let mut buf = [0u8; 256];
    let mut err = CgError {
        buf: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    let mut handle = ptr::null_mut();
    // SAFETY: host is valid for its struct_size bytes; the other pointers are valid.
    let status = unsafe { init_shim::<Plain>(host, ptr::null(), 0, &mut handle, &mut err) };
    (
        status,
        String::from_utf8_lossy(&buf[..err.len]).into_owned(),
        handle,
    )
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
fn a_rust_driver_refuses_a_host_struct_below_its_v1_size() {
    let small = host(CG_HOST_V1_SIZE - 8);
    let (status, message, handle) = init_with_host(&small);
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
fn a_rust_driver_accepts_a_larger_host_struct() {
    #[repr(C)]
    struct NewerHost {
        v1: CgHost,
        extra: u64,
    }
    let newer = NewerHost {
        v1: host(std::mem::size_of::<NewerHost>() as u32),
        extra: u64::MAX,
    };
    let (status, message, handle) = init_with_host(&newer.v1);
    assert_eq!((status, message.as_str()), (CgStatus::OK, ""));
    assert!(!handle.is_null());
    assert_eq!(newer.extra, u64::MAX);
}
