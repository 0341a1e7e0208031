//! A browser-style websocket client reaches a real QEMU VNC console through consolegate and
//! the noop driver: RFB version, security None, ServerInit, a FramebufferUpdate.

use std::time::Duration;

use consolegate_tests::rfb::{self, Version};
use consolegate_tests::setup::{assert_qemu_console, token_hash, VncSetup, TOKEN};
use consolegate_tests::ws::{self, Client};

#[test]
fn rfb_through_noop_gets_qemu_server_init_and_framebuffer_update() {
    let setup = VncSetup::start();
    let mut ws = ws::open(&setup.url());
    let init = assert_qemu_console(&mut ws);
    assert_eq!(init.server_version, "RFB 003.008");
    assert_eq!(init.bits_per_pixel, 32);
    rfb::request_update(&mut ws, init.width, init.height).unwrap();
    let rects = rfb::read_update_header(&mut ws).expect("a FramebufferUpdate");
    assert!(rects >= 1, "FramebufferUpdate with {rects} rectangles");
}

#[test]
fn rfb_37_and_33_clients_get_server_init() {
    let setup = VncSetup::start();
    for version in [Version::V3_7, Version::V3_3] {
        let mut ws = ws::open(&setup.url());
        let init = rfb::handshake(&mut ws, version).unwrap_or_else(|e| panic!("{version:?}: {e}"));
        assert_eq!((init.width, init.height), (720, 400), "{version:?}");
        ws.close();
    }
}

#[test]
fn binary_subprotocol_is_answered_when_offered() {
    let setup = VncSetup::start();
    let ws = ws::open(&setup.url());
    assert_eq!(ws.protocol.as_deref(), Some("binary"));
}

#[test]
fn client_offering_no_subprotocol_is_served() {
    let setup = VncSetup::start();
    let mut ws = Client::default().protocols(&[]).open(&setup.url());
    assert_eq!(ws.protocol, None);
    assert_qemu_console(&mut ws);
}

#[test]
fn token_on_any_path_is_accepted() {
    let setup = VncSetup::start();
    for path in ["/", "/some/other/path", "/websockify"] {
        let mut ws = ws::open(&setup.proxy.url_path(&format!("{path}?token={TOKEN}")));
        assert_qemu_console(&mut ws);
        ws.close();
    }
}

#[test]
fn console_closing_sends_close_1000_console_closed() {
    let setup = VncSetup::start();
    let mut ws = ws::open(&setup.url());
    assert_qemu_console(&mut ws);
    let VncSetup { proxy, qemu } = setup;
    drop(qemu);
    let close = ws.close_frame(Duration::from_secs(10));
    assert_eq!(
        close,
        Ok((1000, "console closed".to_string())),
        "{}",
        proxy.log()
    );
}

#[test]
fn session_is_audited_once_with_the_token_hash_never_the_token() {
    let setup = VncSetup::start();
    let mut ws = ws::open(&setup.url());
    let local = ws.tcp().local_addr().unwrap();
    assert_qemu_console(&mut ws);
    ws.close();
    let log = setup
        .proxy
        // The end line (the start line came when the session began to relay).
        .wait_for_log(" close=\"", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no audit line for client {local}:\n{}", setup.proxy.log()));
    let audits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("audit session="))
        .collect();
    assert_eq!(audits.len(), 1, "one audit line per session:\n{log}");
    let line = audits[0];
    for field in [
        format!("client={local} "),
        format!("token={}", token_hash(TOKEN)),
        "kind=vnc".to_string(),
        format!("target={}", setup.qemu.addr()),
        "driver=noop".to_string(),
        "close=\"".to_string(),
    ] {
        assert!(line.contains(&field), "audit line lacks {field}: {line}");
    }
    let number = |key: &str| -> u64 {
        let value = line
            .split(&format!(" {key}="))
            .nth(1)
            .and_then(|v| v.split(' ').next());
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {key}= in {line}"))
    };
    assert!(
        number("up") >= 14,
        "up counts our version (12), type and ClientInit: {line}"
    );
    assert!(
        number("down") >= 12 + 2 + 4 + 24,
        "down counts greeting to ServerInit: {line}"
    );
    number("duration_ms");
    assert!(line.contains("INFO"), "audit is at info level: {line}");
    assert!(!log.contains(TOKEN), "the token appears in the log:\n{log}");
}
