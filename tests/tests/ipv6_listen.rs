//! Listening on IPv6 loopback, written `[::1]:PORT`.

use consolegate_tests::ports::ipv6_available;
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws;

#[test]
fn ipv6_listen_serves_sessions() {
    assert!(
        ipv6_available(),
        "this machine has no IPv6 loopback (::1); the test needs it"
    );
    let setup = VncSetup::start_with(|c| {
        let port = c.port();
        c.set("listen", &format!("[::1]:{port}"))
    });
    let url = setup.url();
    assert!(url.starts_with("ws://[::1]:"), "{url}");
    let mut ws = ws::open(&url);
    assert_qemu_console(&mut ws);
}

#[test]
fn several_listen_addresses_all_serve() {
    let extra = consolegate_tests::ports::port();
    let setup = VncSetup::start_with(|c| {
        let port = c.port();
        c.set(
            "listen",
            &format!("127.0.0.1:{port}, [::1]:{}", extra.port()),
        )
    });
    let second = setup.url().replace(
        &format!("127.0.0.1:{}", setup.proxy.addr().port()),
        &format!("[::1]:{}", extra.port()),
    );
    for url in [setup.url(), second] {
        let mut ws = ws::open(&url);
        assert_qemu_console(&mut ws);
        ws.close();
    }
}
