//! A real `redis-server` for the token-store tests: on a leased loopback port (and a TLS port
//! whose clients must present a certificate from the trusted test CA, if asked), without
//! persistence, killed on drop. Commands go over plain RESP on a new connection each. For
//! outage tests it can be killed and started again on the same ports ([`Redis::kill`],
//! [`Redis::restart`]) or frozen ([`Redis::freeze`], [`Redis::thaw`]); `DEBUG` is enabled for
//! loopback clients (`DEBUG SLEEP` plays a stuck server). A missing `redis-server` fails the
//! test with what to install.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pki::pki;
use crate::ports::{self, PortLease};
use crate::scratch::TempDir;
use crate::wait;

/// How long `redis-server` may take to answer `PING` after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    port: PortLease,
    tls_port: Option<PortLease>,
    /// The command line, to start it again.
    args: Vec<OsString>,
    dir: TempDir,
}

impl Redis {
    /// Starts a plain `redis-server` and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::spawn(false)
    }

    /// Starts a `redis-server` with a plain port (for setting keys up) and a TLS port with the
    /// trusted server certificate, whose clients must present a certificate from the trusted CA.
    pub fn start_tls() -> Self {
        Self::spawn(true)
    }

    fn spawn(tls: bool) -> Self {
        let port = ports::port();
        let dir = TempDir::new("redis");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &port.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        let tls_port = tls.then(|| {
            let tls_port = ports::port();
            let trusted = &pki().trusted;
            cmd.args(["--tls-port", &tls_port.port().to_string()])
                .args(["--tls-auth-clients", "yes"])
                .arg("--tls-cert-file")
                .arg(trusted.server_cert())
                .arg("--tls-key-file")
                .arg(trusted.server_key())
                .arg("--tls-ca-cert-file")
                .arg(trusted.ca_cert());
            tls_port
        });
        let args: Vec<OsString> = cmd.get_args().map(OsString::from).collect();
        let redis = Self {
            child: run_redis(&args),
            port,
            tls_port,
            args,
            dir,
        };
        redis.wait_until_up();
        redis
    }

    fn wait_until_up(&self) {
        let up = wait::until_true(START_TIMEOUT, || {
            self.command(&["PING"]).as_deref() == Some("+PONG\r\n")
        });
        assert!(up, "redis-server did not come up; its log:\n{}", self.log());
    }

    /// The plain port.
    pub fn port(&self) -> u16 {
        self.port.port()
    }

    /// Kills the server (SIGKILL): its ports refuse connections and its keys are gone. The
    /// ports stay leased for [`Redis::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again, empty, on the same ports (killing it first if it runs).
    pub fn restart(&mut self) {
        self.kill();
        self.child = run_redis(&self.args);
        self.wait_until_up();
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but never answered.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child, which has not been reaped (Drop or kill reap it).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Sends one command in RESP and returns the first reply (`None` if Redis cannot be
    /// reached or does not answer within [`START_TIMEOUT`]).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port())).ok()?;
        s.set_read_timeout(Some(START_TIMEOUT)).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(request.as_bytes()).ok()?;
        let mut reply = [0u8; 64];
        let n = s.read(&mut reply).ok()?;
        Some(String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    /// `SET key value`; panics unless Redis answers `OK`.
    pub fn set(&self, key: &str, value: &str) {
        assert_eq!(
            self.command(&["SET", key, value]).as_deref(),
            Some("+OK\r\n"),
            "SET {key}"
        );
    }

    /// Whether `key` exists; panics if Redis does not answer.
    pub fn exists(&self, key: &str) -> bool {
        match self.command(&["EXISTS", key]).as_deref() {
            Some(":1\r\n") => true,
            Some(":0\r\n") => false,
            other => panic!("EXISTS {key}: {other:?}"),
        }
    }

    /// `redis://127.0.0.1:PORT/0`, for `token_source`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port())
    }

    /// `rediss://localhost:TLS_PORT/0`; panics unless started with [`Redis::start_tls`].
    pub fn tls_url(&self) -> String {
        let tls_port = self.tls_port.as_ref().expect("started with TLS");
        format!("rediss://localhost:{}/0", tls_port.port())
    }
}

/// Runs `redis-server ARGS`; a missing binary fails the test with what to install.
fn run_redis(args: &[OsString]) -> Child {
    Command::new("redis-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-server ({e}): install it (apt-get install redis-server)")
        })
}

impl Drop for Redis {
    fn drop(&mut self) {
        // SIGCONT first, so that a frozen server can be killed.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child; an error (already reaped) is harmless here.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
