//! Shared by the spice_tls, serial and sasl_gssapi tests (`#[path]`-included as a module; as a
//! test target of its own it has no tests):
//! - [`tls_config`]: a proxy configuration with `[console_proxy_tls]` from the test PKI;
//! - [`CustomQemu`]: QEMU with command lines the harness has no mode for yet (an HMP monitor on
//!   a TLS chardev, VNC with SASL). Move these into `consolegate_tests::qemu` as modes when it
//!   grows them.
//! - [`read_until`], [`refusal`], [`link_mess`]: websocket helpers (bytes until a needle, a
//!   driver's Close frame, a SPICE link message).

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use consolegate_tests::pki::{pki, CertSet};
use consolegate_tests::ports::PortLease;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::scratch::TempDir;
use consolegate_tests::ws::{self, Ws};
use consolegate_tests::{reasons, wait};

/// A proxy configuration serving `drivers` with `[console_proxy_tls]` from `ca` and `client`
/// (see [`Config::tls_drivers`]).
pub fn tls_config(drivers: &str, ca: &CertSet, client: Option<&CertSet>) -> Config {
    Config::new().tls_drivers(drivers, ca, client)
}

/// [`tls_config`] with the trusted CA and client certificate.
pub fn trusted_tls_config(drivers: &str) -> Config {
    tls_config(drivers, &pki().trusted, Some(&pki().trusted))
}

/// The directory of the trusted PKI, as QEMU's `tls-creds-x509,dir=` and `x509-dir=` read it.
pub fn pki_dir() -> String {
    pki().trusted.dir().display().to_string()
}

/// A daemonized QEMU with no guest (`-machine none`) and the given extra arguments, killed
/// when dropped. Its listening sockets exist once `start` returns (QEMU daemonizes after
/// creating them).
#[derive(Debug)]
pub struct CustomQemu {
    pid: i32,
    state: TempDir,
    /// The port the arguments use, held for the VM's lifetime.
    pub port: PortLease,
}

impl CustomQemu {
    /// Starts `qemu-system-x86_64` (or `$QEMU`) with `args`; panics with its stderr if it
    /// fails, or with what to install if it is missing.
    pub fn start(port: PortLease, args: &[String]) -> Self {
        let binary = std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
        let state = TempDir::new("custom-qemu");
        let out = Command::new(&binary)
            .args([
                "-nodefaults",
                "-no-user-config",
                "-machine",
                "none",
                "-display",
                "none",
            ])
            .arg("-daemonize")
            .arg("-pidfile")
            .arg(state.join("qemu.pid"))
            .arg("-D")
            .arg(state.join("qemu.log"))
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary} ({e}): install it with `apt-get install qemu-system-x86`"
                )
            });
        assert!(
            out.status.success(),
            "{binary} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = fs::read_to_string(state.join("qemu.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .expect("QEMU wrote its pidfile");
        Self { pid, state, port }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port.port())
    }

    /// QEMU's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.state.join("qemu.log")).unwrap_or_default()
    }
}

impl Drop for CustomQemu {
    fn drop(&mut self) {
        let alive = || {
            fs::read_to_string(format!("/proc/{}/comm", self.pid))
                .is_ok_and(|c| c.starts_with("qemu"))
        };
        if alive() {
            // SAFETY: kill(2) on the pid our QEMU wrote, checked to still be a QEMU.
            unsafe { libc::kill(self.pid, libc::SIGTERM) };
            wait::until_true(Duration::from_secs(5), || !alive());
        }
    }
}

/// Reads from `ws` until what arrived contains `needle`; all of it, or a panic naming what
/// did arrive after `timeout`.
pub fn read_until(ws: &mut Ws, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {needle:?} within {timeout:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        ws.set_read_timeout(left);
        match ws.read(&mut buf) {
            Ok(0) => panic!(
                "the websocket closed before {needle:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading {needle:?}: {e}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Opens a websocket with `token` and waits for the Close frame of the driver's refusal:
/// asserts the code is 1011 and the reason generic (a phrase and the session number), and
/// returns the detail the log gives for that session and how long it took from the upgrade.
pub fn refusal(proxy: &Proxy, token: &str) -> (String, Duration) {
    let t0 = Instant::now();
    let mut ws = ws::open(&proxy.url(token));
    let (code, reason) = ws
        .close_frame(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", proxy.log()));
    assert_eq!(code, 1011, "{reason}");
    let id = reasons::session_of_close_reason(&reason);
    (proxy.driver_failure(id), t0.elapsed())
}

/// A SpiceLinkHeader (`REDQ`, 2.2) and a SpiceLinkMess without capabilities.
pub fn link_mess(channel_type: u8, connection_id: u32) -> Vec<u8> {
    let mut m = b"REDQ".to_vec();
    for v in [2u32, 2, 18] {
        m.extend(v.to_le_bytes());
    }
    m.extend(connection_id.to_le_bytes());
    m.extend([channel_type, 0]);
    for v in [0u32, 0, 18] {
        m.extend(v.to_le_bytes());
    }
    m
}
