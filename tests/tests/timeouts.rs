//! Every phase has a deadline: a client that stalls or leaves mid-handshake, a console that
//! never answers, a session nobody uses, and a client that never reads all end within the
//! configured timeouts, without the proxy's memory growing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::fds;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws;

/// How long after a deadline the proxy may take to act on it.
const SLACK: Duration = Duration::from_secs(2);

/// Reads `tcp` until the proxy closes it (EOF or reset); how long that took, or `None` if it
/// stayed open for `limit`.
fn time_until_closed(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    tcp.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(t0.elapsed()),
        }
    }
}

#[test]
fn client_sending_nothing_is_dropped_after_handshake_timeout() {
    let proxy = Proxy::start(Config::new().set("handshake_timeout", "1"));
    let mut tcp = TcpStream::connect(proxy.addr()).unwrap();
    let took = time_until_closed(&mut tcp, Duration::from_secs(1) + SLACK + SLACK);
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1) + SLACK),
        "closed after {took:?}"
    );
}

#[test]
fn client_stalling_mid_request_is_dropped_after_handshake_timeout() {
    let proxy = Proxy::start(Config::new().set("handshake_timeout", "1"));
    let mut tcp = TcpStream::connect(proxy.addr()).unwrap();
    tcp.write_all(b"GET /websockify?token=x HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let took = time_until_closed(&mut tcp, Duration::from_secs(1) + SLACK + SLACK);
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1) + SLACK),
        "closed after {took:?}"
    );
}

#[test]
fn client_leaving_mid_handshake_leaves_no_thread_or_fd_behind() {
    let setup = VncSetup::start();
    let pid = setup.proxy.pid();
    let baseline = setup.baseline_after_one_session();
    for _ in 0..10 {
        // Half an HTTP request, then gone.
        let mut tcp = TcpStream::connect(setup.proxy.addr()).unwrap();
        tcp.write_all(b"GET /websockify?token=").unwrap();
        drop(tcp);
        // Upgraded, half an RFB version, then gone.
        let mut ws = ws::open(&setup.url());
        ws.write_all(b"RFB 003").unwrap();
        drop(ws);
    }
    let after = fds::back_to(pid, baseline, Duration::from_secs(5));
    assert_eq!(after, Ok(()), "baseline {baseline:?}");
}

#[test]
fn silent_backend_session_ends_with_1001_idle_timeout() {
    let backend = Backend::start(Behaviour::Silent);
    let proxy = Proxy::start(
        Config::new()
            .token("silent", &backend.addr())
            .set("idle_timeout", "1"),
    );
    let t0 = Instant::now();
    let mut ws = ws::open(&proxy.url("silent"));
    let close = ws.close_frame(Duration::from_secs(1) + SLACK + SLACK);
    assert_eq!(close, Ok((1001, "idle timeout".to_string())));
    assert!(
        t0.elapsed() < Duration::from_secs(1) + SLACK,
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn idle_vnc_session_gets_1001_idle_timeout_with_fractional_seconds() {
    let setup = VncSetup::start_with(|c| c.set("idle_timeout", "0.5"));
    let mut ws = ws::open(&setup.url());
    assert_qemu_console(&mut ws);
    let t0 = Instant::now();
    let close = ws.close_frame(Duration::from_secs(5));
    assert_eq!(close, Ok((1001, "idle timeout".to_string())));
    assert!(
        t0.elapsed() < Duration::from_millis(500) + SLACK,
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn client_that_never_reads_does_not_grow_proxy_memory_and_is_closed() {
    let backend = Backend::start(Behaviour::Flood);
    let proxy = Proxy::start(
        Config::new()
            .token("flood", &backend.addr())
            .set("idle_timeout", "2"),
    );
    let pid = proxy.pid();
    let rss_before = fds::rss_kib(pid);
    // Open the websocket and never read from it.
    let ws = ws::open(&proxy.url("flood"));
    std::thread::sleep(Duration::from_millis(1500));
    let (rss_during, written) = (fds::rss_kib(pid), backend.written());
    assert!(
        rss_during < rss_before + 32 * 1024,
        "proxy RSS grew from {rss_before} KiB to {rss_during} KiB with a client that never reads"
    );
    assert!(
        written < 64 << 20,
        "the proxy took {written} bytes from the backend: no back-pressure"
    );
    let audited = proxy.wait_for_log("audit session=", Duration::from_secs(2) + SLACK + SLACK);
    assert!(
        audited.is_some(),
        "the stalled session never ended:\n{}",
        proxy.log()
    );
    assert!(fds::rss_kib(pid) < rss_before + 32 * 1024);
    drop(ws);
}
