//! A driver that panics or hangs in `connect` costs one session, never the proxy.

use std::time::{Duration, Instant};

use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws;

#[test]
fn fault_driver_in_ok_mode_relays() {
    let setup = VncSetup::start_with(|c| c.fault_driver("ok"));
    let mut ws = ws::open(&setup.url());
    assert_qemu_console(&mut ws);
}

#[test]
fn driver_panic_in_connect_closes_1011_and_the_next_session_is_served() {
    let setup = VncSetup::start_with(|c| c.fault_driver("panic_in_connect"));
    for _ in 0..2 {
        setup.assert_driver_fails_session("fault", "driver panicked");
    }
    // The proxy process is still there and still accepts.
    let refusal = ws::refusal(&setup.proxy.url("unknown"));
    assert_eq!(refusal.status, 404);
}

#[test]
fn driver_hanging_in_connect_ends_within_the_handshake_timeout() {
    let setup = VncSetup::start_with(|c| {
        c.fault_driver("hang_in_connect")
            .set("handshake_timeout", "1")
    });
    let t0 = Instant::now();
    let mut ws = ws::open(&setup.url());
    // The driver sleeps 1 s + 2 s; the proxy must end the session at its own 1 s deadline.
    let ended = ws.close_frame(Duration::from_secs(10));
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "session ended after {took:?} ({ended:?})"
    );
    if let Ok((code, _)) = ended {
        assert_ne!(code, 1000, "a handshake timeout is not a normal close");
    }
}
