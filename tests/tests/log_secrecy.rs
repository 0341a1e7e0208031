//! No console byte, token or password reaches the log at any level: the proxy runs at
//! `RUST_LOG=trace` (rustls, tungstenite and the drivers all at their most talkative) while a
//! user types into a serial console and a VNC console opens with a password, and the log is
//! searched for each secret.

use std::io::Write;
use std::time::Duration;

use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::setup::assert_qemu_console;
use consolegate_tests::ws::{self, read_until};

/// Asserts that `log` was written at trace level and holds none of `secrets`.
fn assert_keeps_secrets(log: &str, secrets: &[&str]) {
    assert!(
        log.contains(" TRACE "),
        "the proxy did not log at trace level:\n{log}"
    );
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "{secret:?} reached the log:\n{}",
            log.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn keystrokes_typed_into_a_serial_console_never_reach_the_log() {
    const TOKEN: &str = "secrecy-serial-tok-4c8e1a";
    const PASSWORD: &str = "pw-Qx7zKv2";
    // Within the 14 bytes QEMU 7.2's TLS chardev takes per record (see serial_tls.rs).
    const TYPED: &str = "typed-K3yZ9q";
    let qemu = Qemu::start(Mode::SerialTls);
    let target = format!("serial://:{PASSWORD}@{}", qemu.addr());
    let proxy = Proxy::start(
        Config::new()
            .trusted_tls_drivers("spice_tls")
            .tls()
            .rust_log("trace")
            .token(TOKEN, &target),
    );
    let mut ws = ws::open(&proxy.url(TOKEN));
    ws.write_all(TYPED.as_bytes()).unwrap();
    read_until(&mut ws, TYPED, Duration::from_secs(10));
    ws.close();
    proxy
        .wait_for_log("audit session=", Duration::from_secs(5))
        .expect("an audit line");
    assert_keeps_secrets(&proxy.log(), &[TYPED, TOKEN, PASSWORD]);
}

#[test]
fn a_vnc_password_and_the_screen_never_reach_the_log() {
    const TOKEN: &str = "secrecy-vnc-tok-93d0b7";
    const PASSWORD: &str = "pw-Vn8cR4";
    let qemu = Qemu::start(Mode::VencryptX509Vnc(PASSWORD.into()));
    let target = format!("vnc://:{PASSWORD}@127.0.0.1:{}", qemu.port());
    let proxy = Proxy::start(
        Config::new()
            .tls()
            .trusted_tls_drivers("vencrypt")
            .rust_log("trace")
            .token(TOKEN, &target),
    );
    let mut ws = ws::open(&proxy.url(TOKEN));
    let init = assert_qemu_console(&mut ws);
    ws.close();
    proxy
        .wait_for_log("audit session=", Duration::from_secs(5))
        .expect("an audit line");
    // The desktop name came from the console: it is console content too.
    assert_keeps_secrets(&proxy.log(), &[TOKEN, PASSWORD, &init.name]);
}
