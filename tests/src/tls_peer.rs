//! A fake hypervisor console that serves TLS with any certificate, and TLS versions QEMU and
//! rustls will not serve: `tls_peer.py` (Python's stdlib `ssl`, so OpenSSL), one process per
//! [`TlsPeer`], killed when dropped.
//!
//! It speaks TLS from the first byte (a SPICE tls-port, a serial TLS chardev) or after the
//! RFB 3.8 + VeNCrypt 0.2 X509None preface QEMU sends ([`Preface::Vencrypt`]). If a client
//! ever completes the TLS handshake, the peer sends [`MARKER`]: a test that is refused checks
//! that the browser never received it. Each connection's outcome is one line in
//! [`TlsPeer::events`].

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pki::ServerIdentity;
use crate::proxy::{die_with_starting_thread, workspace_root};
use crate::scratch::TempDir;
use crate::wait;

/// What the peer sends after a TLS handshake that succeeded: console bytes no refused session
/// may relay.
pub const MARKER: &str = "CONSOLE-BYTES-THAT-MUST-NOT-BE-RELAYED";

/// How long the peer may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What comes before TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// Nothing: TLS from the first byte (SPICE, serial).
    None,
    /// RFB 3.8, security type VeNCrypt (19), VeNCrypt 0.2, subtype X509None (260), then TLS.
    Vencrypt,
}

/// The TLS versions the peer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.2 and 1.3.
    Current,
    /// TLS 1.0 and 1.1 only (OpenSSL security level 0).
    Legacy,
}

/// A running fake console on `127.0.0.1`.
#[derive(Debug)]
pub struct TlsPeer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl TlsPeer {
    /// Starts `python3 tls_peer.py` serving `identity` with `preface` and `versions`; returns
    /// once it listens. Panics with what to install if `python3` is missing, or with its
    /// output if it does not listen in time.
    pub fn start(identity: &ServerIdentity, preface: Preface, versions: Versions) -> Self {
        let dir = TempDir::new("tls-peer");
        let out = fs::File::create(dir.join("events")).expect("create the events file");
        let script = workspace_root().join("tests/src/tls_peer.py");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .arg("--cert")
            .arg(&identity.cert)
            .arg("--key")
            .arg(&identity.key)
            .args((preface == Preface::Vencrypt).then_some("--vnc"))
            .args((versions == Versions::Legacy).then_some("--legacy"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup the events file"))
            .stderr(out);
        // The peer dies with the thread that started it, even if the test process is killed.
        die_with_starting_thread(&mut command);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run python3 {} ({e}): apt-get install python3",
                script.display()
            )
        });
        let mut peer = Self {
            child,
            port: 0,
            dir,
        };
        let events = &peer.dir.join("events");
        let port = wait::until(START_TIMEOUT, || {
            let text = fs::read_to_string(events).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("listening ")?.trim().parse().ok())
        });
        peer.port = port.unwrap_or_else(|| {
            panic!(
                "tls_peer.py did not listen within {START_TIMEOUT:?}: {}",
                peer.output()
            )
        });
        peer
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One line per connection so far: `tls-ok VERSION`, `tls-failed REASON` or
    /// `preface-failed REASON`.
    pub fn events(&self) -> Vec<String> {
        self.output()
            .lines()
            .filter(|l| ["tls-", "preface-"].iter().any(|p| l.starts_with(p)))
            .map(str::to_string)
            .collect()
    }

    /// Waits up to `timeout` for the first connection's outcome.
    pub fn first_event(&self, timeout: Duration) -> Option<String> {
        wait::until(timeout, || self.events().into_iter().next())
    }

    /// Everything the peer printed (stdout and stderr).
    pub fn output(&self) -> String {
        fs::read_to_string(self.events_path()).unwrap_or_default()
    }

    fn events_path(&self) -> std::path::PathBuf {
        self.dir.join("events")
    }

    /// The directory holding the peer's output.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TlsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
