//! The daemon under systemd's protocols, with real systemd tools where they exist: the notify
//! protocol (`Type=notify`: READY once listening, RELOADING/READY around SIGHUP, STOPPING, and
//! WATCHDOG pings when `WATCHDOG_USEC` is set), read from a datagram socket as systemd reads it;
//! and socket activation under `systemd-socket-activate`, which passes its listening socket
//! through `LISTEN_FDS` as `consolegate.socket` does.

use std::os::unix::net::UnixDatagram;
use std::thread;
use std::time::{Duration, Instant};

use consolegate_tests::http;
use consolegate_tests::ports;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::scratch::TempDir;

/// The notify socket systemd would listen on, and the datagrams read from it.
struct NotifySocket {
    _dir: TempDir,
    path: String,
    socket: UnixDatagram,
}

impl NotifySocket {
    fn new() -> Self {
        let dir = TempDir::new("notify");
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Self {
            path: path.display().to_string(),
            _dir: dir,
            socket,
        }
    }

    /// The next datagram, or `None` after `timeout`.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The next datagram that is not a watchdog ping; panics after `timeout`.
    fn next_state(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .next(left.max(Duration::from_millis(1)))
                .unwrap_or_else(|| panic!("no state notification within {timeout:?}"));
            if msg != "WATCHDOG=1\n" {
                return msg;
            }
        }
    }
}

#[test]
fn the_daemon_reports_its_states_and_pings_the_watchdog() {
    let notify = NotifySocket::new();
    let config = Config::new()
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000");
    let port = config.port();
    let mut proxy = Proxy::start(config);

    let ready = notify.next_state(Duration::from_secs(10));
    assert!(
        ready.starts_with("READY=1\n"),
        "first state: {ready:?}\n{}",
        proxy.log()
    );
    assert!(
        ready.contains(&format!("STATUS=listening on 127.0.0.1:{port}")),
        "{ready:?}"
    );
    assert!(ports::listening(port), "READY before the listener is bound");

    // WatchdogSec = 0.4 s: a ping at least every 0.2 s.
    let t0 = Instant::now();
    let mut pings = 0;
    while t0.elapsed() < Duration::from_millis(1000) {
        if notify.next(Duration::from_millis(300)).as_deref() == Some("WATCHDOG=1\n") {
            pings += 1;
        }
    }
    assert!(
        pings >= 4,
        "{pings} watchdog pings in 1 s with WATCHDOG_USEC=400000"
    );

    proxy.sighup();
    let reloading = notify.next_state(Duration::from_secs(5));
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    let ready = notify.next_state(Duration::from_secs(5));
    assert!(
        ready.starts_with("READY=1\n"),
        "after the reload: {ready:?}"
    );

    proxy.sigterm();
    let stopping = notify.next_state(Duration::from_secs(5));
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    assert!(proxy.wait_exit(Duration::from_secs(15)).is_some());
}

#[test]
fn without_systemd_the_daemon_notifies_nobody_and_binds_its_own_listener() {
    let proxy = Proxy::start(Config::new());
    let log = proxy.log();
    assert!(!log.contains("socket from systemd"), "{log}");
    assert!(!log.contains("watchdog"), "{log}");
    let response = http::get(proxy.addr(), "/");
    assert!(
        response.status >= 400,
        "consolegate answers: {}",
        response.status
    );
}

#[test]
fn socket_activation_serves_on_the_socket_systemd_passed() {
    let config = Config::new();
    let addr = format!("127.0.0.1:{}", config.port());
    let config = config.launched_by(
        "systemd-socket-activate",
        &["--listen", &addr, "--setenv=RUST_LOG"],
    );
    let proxy = Proxy::start(config);
    // systemd-socket-activate starts the daemon on the first connection; the daemon binding
    // the address itself would fail (it is in use), so an answer means it took the socket.
    let response = http::get(proxy.addr(), "/websockify");
    assert_eq!(response.status, 400, "{}", proxy.log());
    assert!(
        response.body.starts_with("consolegate: "),
        "{:?}",
        response.body
    );
    let line = format!("listening on {addr} (ws (listen_insecure), socket from systemd)");
    assert!(
        proxy.wait_for_log(&line, Duration::from_secs(5)).is_some(),
        "no {line:?}:\n{}",
        proxy.log()
    );
}

#[test]
fn a_passed_socket_on_an_address_listen_does_not_name_stops_the_daemon() {
    let config = Config::new();
    let other = ports::port();
    let passed = format!("127.0.0.1:{}", other.port());
    let config = config.launched_by(
        "systemd-socket-activate",
        &["--listen", &passed, "--setenv=RUST_LOG"],
    );
    let listen = config.get("listen").unwrap().to_string();
    // The first connection to the passed socket makes systemd-socket-activate start the daemon.
    let knock = passed.clone();
    let knocker = thread::spawn(move || {
        for _ in 0..100 {
            if std::net::TcpStream::connect(&knock).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let (code, log) = Proxy::start_failure(config);
    knocker.join().unwrap();
    assert_ne!(code, 0, "{log}");
    let expected = format!(
        "systemd passed a socket listening on {passed}, which is not in listen ({listen}): \
         make ListenStream= in consolegate.socket and listen in consolegate.conf name the same \
         addresses"
    );
    assert!(log.contains(&expected), "expected {expected:?} in:\n{log}");
}
