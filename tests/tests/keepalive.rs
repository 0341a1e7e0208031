//! Both legs of a session have TCP keepalive on (60 s idle, then probes), so a peer that
//! vanished ends its session in minutes, not the kernel's default two hours.

use std::process::Command;
use std::time::Duration;

use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::{wait, ws};

/// `ss` lines for the established TCP sockets of `port` (either end), with timer info.
fn sockets_of(port: u16) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-tnoH", "state", "established"])
        .output()
        .expect("ss (iproute2) lists sockets");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!(":{port} ")))
        .map(str::to_string)
        .collect()
}

#[test]
fn browser_and_console_sockets_have_keepalive() {
    let setup = VncSetup::start();
    let mut ws = ws::open(&setup.url());
    assert_qemu_console(&mut ws);
    let client_port = ws.tcp().local_addr().unwrap().port();
    let proxy_port = setup.proxy.addr().port();
    // ss shows the keepalive timer once no retransmit timer is pending (data just sent may
    // await its ACK for a moment).
    let has_keepalive = |lines: &[String]| lines.iter().any(|l| l.contains("timer:(keepalive"));
    let mut front = Vec::new();
    let mut back = Vec::new();
    let seen = wait::until_true(Duration::from_secs(5), || {
        // The proxy's end of the browser connection: local port the proxy's, peer ours.
        front = sockets_of(client_port)
            .into_iter()
            .filter(|l| l.contains(&format!("127.0.0.1:{proxy_port} ")))
            .collect();
        back = sockets_of(setup.qemu.port());
        has_keepalive(&front) && has_keepalive(&back)
    });
    assert!(
        seen,
        "no keepalive timer: browser side {front:?}, console side {back:?}"
    );
}
