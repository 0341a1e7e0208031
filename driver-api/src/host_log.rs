//! Routes a Rust driver's `log` macros to the host's log callback, so a driver's lines appear in
//! the proxy's log with the proxy's filtering. Installed by `init`.

use std::ffi::c_void;
use std::sync::OnceLock;

use crate::abi::{CgHost, CgLogFn, CgStr};

struct HostLogger {
    ctx: usize,
    log: CgLogFn,
}

static LOGGER: OnceLock<HostLogger> = OnceLock::new();

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{}", record.args());
        // SAFETY: the host guarantees the callback and its ctx stay valid until destroy, and
        // that the callback may be called from any thread; `line` outlives the call.
        unsafe {
            (self.log)(
                self.ctx as *mut c_void,
                record.level() as u32,
                CgStr::borrow(&line),
            )
        };
    }

    fn flush(&self) {}
}

/// Installs the host's callback as this library's logger (once; later calls are ignored).
pub(crate) fn install(host: &CgHost) {
    let Some(log) = host.log else { return };
    if LOGGER
        .set(HostLogger {
            ctx: host.log_ctx as usize,
            log,
        })
        .is_ok()
    {
        if let Some(logger) = LOGGER.get() {
            if log::set_logger(logger).is_ok() {
                log::set_max_level(log::LevelFilter::Trace);
            }
        }
    }
}
