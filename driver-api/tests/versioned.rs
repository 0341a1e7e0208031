//! The growth rule of `docs/ABI.md` as `read_versioned` applies it: a struct below its v1
//! size is refused, a field past the writer's `struct_size` reads as absent, and a larger
//! (newer) writer's extra fields are ignored. (The export shims' use of it is in
//! `panic_boundary.rs`.)

use std::ptr;

use consolegate_driver_api::versioned::{read_versioned, StructTooSmall, Versioned};

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
