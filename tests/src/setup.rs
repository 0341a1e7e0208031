//! The setup most tests share: a QEMU VNC console (security None) behind a proxy that knows
//! one token for it.

use std::time::Duration;

use crate::fds::{self, Usage};
use crate::proxy::{Config, Proxy};
use crate::qemu::{Mode, Qemu};
use crate::rfb::{self, ServerInit, Version};
use crate::ws::Ws;

/// The token [`VncSetup`] registers. Long and distinctive, so a test can assert that it never
/// appears in the proxy's log.
pub const TOKEN: &str = "tok-7f3a9c1e5b2d4086a1c3e5f7";

/// QEMU in `vnc-none` mode and a proxy with [`TOKEN`] pointing at it. Field order matters:
/// the proxy is dropped (killed) before QEMU.
#[derive(Debug)]
pub struct VncSetup {
    /// The proxy.
    pub proxy: Proxy,
    /// The VNC console.
    pub qemu: Qemu,
}

impl VncSetup {
    /// The default configuration (noop driver, plain ws).
    pub fn start() -> Self {
        Self::start_with(|c| c)
    }

    /// The default configuration changed by `customize` before the proxy starts.
    pub fn start_with(customize: impl FnOnce(Config) -> Config) -> Self {
        let qemu = Qemu::start(Mode::VncNone);
        let config = customize(Config::new().token(TOKEN, &qemu.addr()));
        let proxy = Proxy::start(config);
        Self { proxy, qemu }
    }

    /// Runs one session (so lazily created state is in place), then returns the proxy's
    /// threads and fds once they hold still: the baseline for leak checks.
    pub fn baseline_after_one_session(&self) -> Usage {
        let mut warm = crate::ws::open(&self.url());
        assert_qemu_console(&mut warm);
        warm.close();
        fds::settled(self.proxy.pid())
    }

    /// Opens a session that driver `driver` fails: asserts Close 1011 with the generic
    /// `console proxy error (session N)` and, within 5 s, a log line
    /// `session N: driver 'DRIVER' failed: DETAIL…`; returns N.
    pub fn assert_driver_fails_session(&self, driver: &str, detail: &str) -> u64 {
        let mut ws = crate::ws::open(&self.url());
        let (code, reason) = ws
            .close_frame(Duration::from_secs(10))
            .expect("a Close frame");
        assert_eq!(code, 1011, "reason {reason:?}");
        let id = crate::reasons::assert_close_reason(&reason, "console proxy error");
        let line = format!("session {id}: driver '{driver}' failed: {detail}");
        assert!(
            self.proxy
                .wait_for_log(&line, Duration::from_secs(5))
                .is_some(),
            "no {line:?} in the log:\n{}",
            self.proxy.log()
        );
        id
    }

    /// The websocket URL with [`TOKEN`].
    pub fn url(&self) -> String {
        self.proxy.url(TOKEN)
    }
}

/// The proxy's short token hash: the first 6 bytes of SHA-256, in hex (12 characters).
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs the RFB 3.8 handshake over `ws` and checks QEMU's ServerInit (720x400, a name starting
/// with `QEMU`); panics with the failing step otherwise.
pub fn assert_qemu_console(ws: &mut Ws) -> ServerInit {
    let init = rfb::handshake(ws, Version::V3_8).unwrap_or_else(|e| panic!("RFB handshake: {e}"));
    assert_eq!(
        (init.width, init.height),
        (720, 400),
        "QEMU's framebuffer size: {init:?}"
    );
    assert!(
        init.name.starts_with("QEMU"),
        "desktop name should start with QEMU: {init:?}"
    );
    init
}
