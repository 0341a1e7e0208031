//! SIGTERM: stop accepting, let running sessions finish up to `drain_timeout`, then close them
//! with 1001 `proxy shutting down` and exit.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::{rfb, wait, ws};

#[test]
fn sigterm_without_sessions_exits_promptly_and_cleanly() {
    let mut proxy = Proxy::start(Config::new());
    proxy.sigterm();
    let status = proxy.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{}",
        proxy.log()
    );
}

#[test]
fn sigterm_stops_accepting_and_closes_sessions_after_drain_timeout() {
    let mut setup = VncSetup::start_with(|c| c.set("drain_timeout", "2"));
    let mut ws = ws::open(&setup.url());
    let init = assert_qemu_console(&mut ws);
    let addr = setup.proxy.addr();
    let t0 = Instant::now();
    setup.proxy.sigterm();

    let closed = wait::until_true(Duration::from_secs(1), || TcpStream::connect(addr).is_err());
    assert!(closed, "the proxy still accepts connections after SIGTERM");
    // The running session keeps working while it drains.
    rfb::request_update(&mut ws, init.width, init.height).unwrap();
    assert!(rfb::read_update_header(&mut ws).expect("the session relays while draining") >= 1);

    let close = ws.close_frame(Duration::from_secs(6));
    assert_eq!(close, Ok((1001, "proxy shutting down".to_string())));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "closed after only {took:?} of a 2 s drain"
    );
    let status = setup.proxy.wait_exit(Duration::from_secs(4));
    assert!(
        status.is_some(),
        "the proxy did not exit after draining:\n{}",
        setup.proxy.log()
    );
}

#[test]
fn sigterm_exits_as_soon_as_the_last_session_ends() {
    let mut setup = VncSetup::start_with(|c| c.set("drain_timeout", "30"));
    let mut ws = ws::open(&setup.url());
    assert_qemu_console(&mut ws);
    setup.proxy.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        setup.proxy.wait_exit(Duration::from_millis(10)).is_none(),
        "exited with a session open"
    );
    ws.close();
    let status = setup.proxy.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some(),
        "still running after its last session ended:\n{}",
        setup.proxy.log()
    );
}
