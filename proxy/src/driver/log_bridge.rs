//! The log callback the host gives every driver: a driver's lines go through the proxy's logger
//! under the target `consolegate::driver`, prefixed with the driver's name.

use std::ffi::c_void;

use consolegate_driver_api::abi::CgStr;

/// The `cg_log_fn` handed to drivers. `ctx` points at the driver's name (a `Box<str>` owned by
/// its `LoadedDriver`, which outlives every call).
pub(crate) unsafe extern "C" fn host_log(ctx: *mut c_void, level: u32, msg: CgStr) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: ctx is the address of the driver's Box<str> name, alive while the driver is
        // loaded (the driver may only log between init and destroy).
        let name: &str = unsafe { ctx.cast::<Box<str>>().as_ref() }.map_or("?", |b| b);
        let text = if msg.ptr.is_null() {
            String::new()
        } else {
            // SAFETY: the driver passes msg.len readable bytes for the duration of the call.
            let bytes = unsafe { std::slice::from_raw_parts(msg.ptr, msg.len) };
            String::from_utf8_lossy(bytes).into_owned()
        };
        let level = match level {
            1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            _ => log::Level::Trace,
        };
        log::log!(target: "consolegate::driver", level, "[{name}] {text}");
    });
}
