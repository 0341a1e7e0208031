//! A real HAProxy (Debian `haproxy`) in front of one or more proxies, in the foreground, on a
//! leased port: in TCP mode with `send-proxy-v2` (or v1 `send-proxy`), or in HTTP mode with
//! `option forwardfor` (`X-Forwarded-For`). It connects to the proxies from [`HAPROXY_SOURCE`],
//! so a test tells the balancer's address from its clients' (any of 127.0.0.0/8 is this host).
//! Killed when dropped.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::{self, PortLease};
use crate::proxy::die_with_starting_thread;
use crate::scratch::TempDir;

/// The address HAProxy connects to the proxies from: list it in `trusted_proxies`.
pub const HAPROXY_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// How HAProxy passes the client's address on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// TCP mode, a PROXY protocol v2 header on each connection (`send-proxy-v2`).
    TcpProxyV2,
    /// TCP mode, a PROXY protocol v1 header (`send-proxy`).
    TcpProxyV1,
    /// HTTP mode, `option forwardfor` (HAProxy appends `X-Forwarded-For`).
    HttpForwardFor,
}

/// A running HAProxy.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    dir: TempDir,
    listen: PortLease,
}

impl Haproxy {
    /// Starts HAProxy balancing round-robin over `backends` in `mode`, and waits until it
    /// listens. Panics, with what to install, if `haproxy` is missing.
    pub fn start(mode: Mode, backends: &[SocketAddr]) -> Self {
        Self::launch(mode, backends, "")
    }

    /// [`Haproxy::start`] with health checks every 200 ms (`check`; in TCP mode also
    /// `check-send-proxy`, so each check sends a PROXY header with the `LOCAL` command).
    pub fn start_with_checks(mode: Mode, backends: &[SocketAddr]) -> Self {
        let checks = match mode {
            Mode::TcpProxyV2 | Mode::TcpProxyV1 => " check check-send-proxy inter 200ms",
            Mode::HttpForwardFor => " check inter 200ms",
        };
        Self::launch(mode, backends, checks)
    }

    fn launch(mode: Mode, backends: &[SocketAddr], checks: &str) -> Self {
        let dir = TempDir::new("haproxy");
        let listen = ports::port();
        let (mode_line, server_option) = match mode {
            Mode::TcpProxyV2 => ("mode tcp", " send-proxy-v2"),
            Mode::TcpProxyV1 => ("mode tcp", " send-proxy"),
            Mode::HttpForwardFor => (
                "mode http\n    option forwardfor\n    option http-server-close",
                "",
            ),
        };
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                format!("    server s{i} {addr}{server_option}{checks} source {HAPROXY_SOURCE}\n")
            })
            .collect();
        let config = format!(
            "global\n    maxconn 256\n\n\
             defaults\n    {mode_line}\n    timeout connect 5s\n    timeout client 60s\n    \
             timeout server 60s\n    timeout tunnel 60s\n\n\
             frontend front\n    bind 127.0.0.1:{port}\n    default_backend consoles\n\n\
             backend consoles\n    balance roundrobin\n{servers}",
            port = listen.port()
        );
        let path = dir.write("haproxy.cfg", &config);
        let log = fs::File::create(dir.join("haproxy.log")).expect("create haproxy.log");
        let mut command = Command::new("haproxy");
        command
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup haproxy.log"))
            .stderr(log);
        die_with_starting_thread(&mut command);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot run haproxy ({e}): install it (apt-get install haproxy, or .ci/install-peers)")
        });
        let mut haproxy = Self { child, dir, listen };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ports::listening(haproxy.listen.port()) {
            if let Ok(Some(status)) = haproxy.child.try_wait() {
                panic!("haproxy exited ({status}):\n{}", haproxy.log());
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen within 10 s:\n{}",
                haproxy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        haproxy
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.listen.port()))
    }

    /// `ws://ADDR/websockify?token=TOKEN`.
    pub fn url(&self, token: &str) -> String {
        format!("ws://{}/websockify?token={token}", self.addr())
    }

    /// What HAProxy wrote to stderr.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- haproxy log:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
