//! Port allocation that parallel tests, and parallel test processes, never collide on.
//!
//! A port is handed out only if nobody listens on it now (a bind probe on 127.0.0.1 and ::1)
//! and no other test holds it: each lease keeps an exclusive `flock` on
//! `$TMPDIR/consolegate-test-ports/<port>.lock` until it is dropped, which also covers other
//! test processes running at the same time. VNC ports come from a range of their own because
//! QEMU takes a display number, so they must be at least 5900; the general range stays below
//! Linux's ephemeral ports (32768+), so outgoing connections do not take them.

use std::fs::{self, File};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::scratch;

/// Ports for QEMU VNC servers (display = port - 5900). Above the 5900-5999 range that
/// `/work/shared/peers/selftest.sh` and hand-started peers use.
pub const VNC_RANGE: Range<u16> = 7000..8000;
/// Ports for everything else: the proxy, SPICE, serial, test servers.
pub const GENERAL_RANGE: Range<u16> = 20000..30000;

/// A port reserved for one test; free for others again when dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    _lock: File,
}

impl PortLease {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A free port for a QEMU VNC server.
pub fn vnc_port() -> PortLease {
    lease(VNC_RANGE)
}

/// A free port for anything else.
pub fn port() -> PortLease {
    lease(GENERAL_RANGE)
}

/// Scans `range`, starting at a point that differs between processes, for a port that can be
/// locked and bound.
fn lease(range: Range<u16>) -> PortLease {
    static CURSOR: AtomicU32 = AtomicU32::new(0);
    let len = u32::from(range.end - range.start);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..len {
        let offset = start.wrapping_add(CURSOR.fetch_add(1, Ordering::Relaxed)) % len;
        let port = range.start + offset as u16;
        if let Some(lock) = try_lock(port) {
            if bindable(port) {
                return PortLease { port, _lock: lock };
            }
        }
    }
    panic!("no free port in {range:?}: every port is locked by another test or in use");
}

fn lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("consolegate-test-ports");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// An exclusive `flock` on the port's lock file, or `None` if another test holds it.
fn try_lock(port: u16) -> Option<File> {
    scratch::lock(&lock_dir().join(format!("{port}.lock")), false)
}

/// Whether nothing listens on the port, on IPv4 or IPv6 loopback.
fn bindable(port: u16) -> bool {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    TcpListener::bind(v4).is_ok() && (TcpListener::bind(v6).is_ok() || !ipv6_available())
}

/// Whether the machine has IPv6 loopback (some containers do not).
pub fn ipv6_available() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Whether some socket listens on TCP `port` (reads `/proc/net/tcp{,6}`; does not connect, so
/// it neither takes a one-client chardev's only slot nor shows up in a proxy's log).
pub fn listening(port: u16) -> bool {
    let needle = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|file| {
        fs::read_to_string(file).is_ok_and(|table| {
            table.lines().skip(1).any(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                cols.len() > 3 && cols[3] == "0A" && cols[1].ends_with(&needle)
            })
        })
    })
}
