//! Reading the other side's structs by the growth rule of `docs/ABI.md`: a struct is accepted
//! when its `struct_size` is at least its v1 size, and a field that lies past the writer's
//! `struct_size` reads as absent (zero: NULL, no flags, `None`).
//!
//! The host reads a driver's descriptor and channel vtable this way; a Rust driver reads the
//! host's `cg_host`, `cg_session_info` and `cg_client_io` this way.

use std::mem::{size_of, MaybeUninit};

use crate::abi::*;

/// A struct of the ABI that carries a `struct_size` and grows only at its end.
///
/// # Safety
/// An implementor is `#[repr(C)]`; `SIZE_OFFSET` is the offset of its `u32 struct_size`,
/// which lies in the first `V1_SIZE` bytes; `V1_SIZE <= size_of::<Self>()`; and a value
/// whose bytes are all zero from some offset at or past `V1_SIZE` on is valid (every field
/// appended after v1 is an integer, a raw pointer or an `Option` of a function pointer).
pub unsafe trait Versioned: Sized {
    /// The C name, for messages (`cg_driver_descriptor`).
    const C_NAME: &'static str;
    /// The size of the v1 struct: the smallest `struct_size` a reader accepts.
    const V1_SIZE: u32;
    /// Where `struct_size` is.
    const SIZE_OFFSET: usize;
}

/// Implements [`Versioned`] for an ABI struct.
macro_rules! versioned {
    ($($rust:ty = $c_name:literal, $v1_size:expr;)*) => {$(
        // SAFETY: every ABI struct is repr(C) with a u32 struct_size inside its v1 part (the
        // layout test checks it against the header), its v1 size constant ends at its last v1
        // field, and every field is an integer, a raw pointer or an Option of a function
        // pointer, for all of which zero is valid.
        unsafe impl Versioned for $rust {
            const C_NAME: &'static str = $c_name;
            const V1_SIZE: u32 = $v1_size;
            const SIZE_OFFSET: usize = std::mem::offset_of!($rust, struct_size);
        }
    )*};
}

versioned! {
    CgHost = "cg_host", CG_HOST_V1_SIZE;
    CgSessionInfo = "cg_session_info", CG_SESSION_INFO_V1_SIZE;
    CgClientIo = "cg_client_io", CG_CLIENT_IO_V1_SIZE;
    CgChannelVtable = "cg_channel_vtable", CG_CHANNEL_VTABLE_V1_SIZE;
    CgDriverDescriptor = "cg_driver_descriptor", CG_DRIVER_DESCRIPTOR_V1_SIZE;
}

/// A struct whose `struct_size` is below its v1 size: it was not built against this ABI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{structure}.struct_size is {found}, below the v1 size of {minimum} bytes")]
pub struct StructTooSmall {
    /// The C name of the struct.
    pub structure: &'static str,
    /// The `struct_size` found.
    pub found: u32,
    /// Its v1 size.
    pub minimum: u32,
}

/// Copies the struct at `p`, written by the other side of the ABI, into this side's type:
/// the first `min(struct_size, size_of::<T>())` bytes are the writer's, the rest zero. So a
/// larger (newer) writer's extra fields are ignored, and fields this side knows but an older
/// writer lacks read as absent.
///
/// # Safety
/// `p` is non-NULL and points at a readable struct of `T`'s kind whose first `struct_size`
/// bytes are initialised by its writer, as the ABI requires.
pub unsafe fn read_versioned<T: Versioned>(p: *const T) -> Result<T, StructTooSmall> {
    let bytes = p.cast::<u8>();
    // SAFETY: struct_size lies inside the v1 prefix every writer has (guaranteed by Versioned
    // and the caller); read unaligned so a misaligned struct cannot fault.
    let size = unsafe { bytes.add(T::SIZE_OFFSET).cast::<u32>().read_unaligned() };
    if size < T::V1_SIZE {
        return Err(StructTooSmall {
            structure: T::C_NAME,
            found: size,
            minimum: T::V1_SIZE,
        });
    }
    let known = (size as usize).min(size_of::<T>());
    let mut out = MaybeUninit::<T>::zeroed();
    // SAFETY: the writer's struct has `size >= known` readable bytes; `out` has size_of::<T>()
    // >= known writable bytes; they are distinct objects.
    unsafe { std::ptr::copy_nonoverlapping(bytes, out.as_mut_ptr().cast::<u8>(), known) };
    // SAFETY: the first `known >= V1_SIZE` bytes are a valid prefix written by the other side
    // per the ABI; the rest is zero, which Versioned says is valid.
    Ok(unsafe { out.assume_init() })
}
