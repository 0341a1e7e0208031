//! Lending the browser side to a driver during its handshake: the host's end of `cg_client_io`.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use consolegate_driver_api::abi::{CgClientIo, CgStatus};

/// The browser side as a blocking byte stream (the session implements it over its websocket).
pub trait BrowserIo {
    /// Reads at least one byte, at most `buf.len()`; `Ok(0)` when the client closed.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, CgStatus>;
    /// Writes all of `buf` as one binary message.
    fn write(&mut self, buf: &[u8]) -> Result<(), CgStatus>;
}

/// Builds the `cg_client_io` for `client` and runs `f` with it; the struct is valid only
/// inside `f`.
pub fn with_client_io<R>(client: &mut dyn BrowserIo, f: impl FnOnce(&CgClientIo) -> R) -> R {
    let mut target: &mut dyn BrowserIo = client;
    let io = CgClientIo {
        struct_size: std::mem::size_of::<CgClientIo>() as u32,
        ctx: (&mut target as *mut &mut dyn BrowserIo).cast(),
        read: Some(client_read),
        write: Some(client_write),
        #[cfg(feature = "abi-v1-plus-test")]
        test_extension: 1,
    };
    f(&io)
}

/// # Safety
/// `ctx` is the `&mut &mut dyn BrowserIo` from [`with_client_io`], still in scope.
unsafe fn target<'a>(ctx: *mut c_void) -> Option<&'a mut &'a mut dyn BrowserIo> {
    // SAFETY: guaranteed by the caller.
    unsafe { ctx.cast::<&mut dyn BrowserIo>().as_mut() }
}

unsafe extern "C" fn client_read(
    ctx: *mut c_void,
    buf: *mut u8,
    len: usize,
    out_n: *mut usize,
) -> CgStatus {
    if buf.is_null() || out_n.is_null() {
        return CgStatus::INVALID_ARGUMENT;
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the driver calls this only during connect, while with_client_io's frame
        // (which owns ctx's target) is alive.
        let Some(client) = (unsafe { target(ctx) }) else {
            return CgStatus::INVALID_ARGUMENT;
        };
        // SAFETY: the driver passes a writable buffer of len bytes.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        match client.read(buf) {
            Ok(n) => {
                // SAFETY: out_n checked non-null.
                unsafe { *out_n = n };
                CgStatus::OK
            }
            Err(status) => status,
        }
    }))
    .unwrap_or(CgStatus::INTERNAL)
}

unsafe extern "C" fn client_write(ctx: *mut c_void, buf: *const u8, len: usize) -> CgStatus {
    if buf.is_null() && len > 0 {
        return CgStatus::INVALID_ARGUMENT;
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in client_read.
        let Some(client) = (unsafe { target(ctx) }) else {
            return CgStatus::INVALID_ARGUMENT;
        };
        let data: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the driver passes len readable bytes.
            unsafe { std::slice::from_raw_parts(buf, len) }
        };
        match client.write(data) {
            Ok(()) => CgStatus::OK,
            Err(status) => status,
        }
    }))
    .unwrap_or(CgStatus::INTERNAL)
}
