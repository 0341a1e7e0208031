//! # The fault driver: a consolegate driver that fails on purpose
//!
//! Used only by the integration tests, to check that the proxy survives a driver that panics,
//! refuses to start or hangs. It serves VNC consoles, leaves the hypervisor leg in cleartext
//! (so the proxy needs `connect_insecure = true`) and reads one option:
//!
//! ```ini
//! [fault]
//! mode = ok   # panic_in_init | fail_init | panic_in_connect | hang_in_connect | ok
//! ```
//!
//! - `panic_in_init`: `init` panics (the export shim turns that into a `PANIC` status).
//! - `fail_init`: `init` returns a configuration error, `fault driver told to fail init`.
//! - `panic_in_connect`: every `connect` panics with `fault driver told to panic in connect`.
//! - `hang_in_connect`: every `connect` sleeps past the session's handshake budget (plus two
//!   seconds), then fails with a timeout.
//! - `ok` (the default): relays bytes unchanged, like `noop`.

#![forbid(unsafe_code)]

use std::io;
use std::thread;
use std::time::Duration;

use consolegate_driver_api::{
    export_driver, Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, DriverError, Options,
    PlainChannel,
};

/// What the driver does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    FailInit,
    PanicInConnect,
    HangInConnect,
    Ok,
}

/// The fault driver, configured by `[fault] mode`.
pub struct Fault {
    mode: Mode,
}

impl Driver for Fault {
    fn init(options: &Options) -> Result<Self, DriverError> {
        let mode = match options.get("fault", "mode").unwrap_or("ok") {
            "panic_in_init" => panic!("fault driver told to panic in init"),
            "fail_init" => Mode::FailInit,
            "panic_in_connect" => Mode::PanicInConnect,
            "hang_in_connect" => Mode::HangInConnect,
            "ok" => Mode::Ok,
            other => {
                return Err(DriverError::config(format!(
                    "[fault] mode = {other}: use panic_in_init, fail_init, panic_in_connect, \
                     hang_in_connect or ok"
                )))
            }
        };
        if mode == Mode::FailInit {
            return Err(DriverError::config("fault driver told to fail init"));
        }
        Ok(Fault { mode })
    }

    fn connect(
        &self,
        session: &ConsoleRequest<'_>,
        _client: &mut Browser<'_>,
        server: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        match self.mode {
            Mode::PanicInConnect => panic!("fault driver told to panic in connect"),
            Mode::HangInConnect => {
                thread::sleep(session.handshake_timeout + Duration::from_secs(2));
                Err(io::Error::new(io::ErrorKind::TimedOut, "fault driver hung in connect").into())
            }
            Mode::FailInit | Mode::Ok => Ok(Box::new(PlainChannel::new(server))),
        }
    }
}

export_driver! {
    driver: Fault,
    name: "fault",
    kinds: CG_KIND_VNC,
    flags: CG_DRIVER_FLAG_CLEARTEXT,
    option_sections: "fault",
    description: "test driver that panics, fails or hangs on purpose ([fault] mode)",
}
