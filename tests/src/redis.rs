//! A real `redis-server` for the tests that share a token store between proxies: on a leased
//! loopback port, without persistence, killed on drop. Commands go over plain RESP on a new
//! connection each. A missing `redis-server` fails the test with what to install.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::{self, PortLease};
use crate::scratch::TempDir;

/// How long `redis-server` may take to answer `PING` after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`.
pub struct Redis {
    child: Child,
    port: PortLease,
    _dir: TempDir,
}

impl Redis {
    /// Starts `redis-server` and waits until it answers `PING`.
    pub fn start() -> Self {
        let port = ports::port();
        let dir = TempDir::new("redis");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): apt-get install redis-server")
            });
        let redis = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while redis.command(&["PING"]).as_deref() != Some("+PONG\r\n") {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// Sends one command in RESP and returns the first reply line (`None` if Redis cannot be
    /// reached).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port.port())).ok()?;
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
        format!("redis://127.0.0.1:{}/0", self.port.port())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
