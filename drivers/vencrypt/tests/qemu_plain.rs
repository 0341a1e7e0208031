//! QEMU without TLS (`-vnc` with security None, or VNC password): the driver refuses to fall
//! back to cleartext, reads nothing beyond the security type list, and sends nothing beyond
//! its ProtocolVersion.

mod common;

use common::*;
use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::DriverError;
use consolegate_tests::qemu::{Mode, Qemu};

fn refuses_cleartext(mode: Mode, offered: &str) {
    let qemu = Qemu::start(mode);
    let relay = Relay::start(qemu.port());
    let (result, saw) = session(
        &driver(),
        relay.port,
        None,
        Some("pw"),
        "003.008",
        HANDSHAKE,
    );
    let e = result.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "server offers no VeNCrypt; refusing to fall back to cleartext (it offered {offered})"
        )
    );
    assert_eq!(DriverError::from(e).status, CgStatus::REFUSED);
    let BrowserSaw::Refused(reason) = saw else {
        panic!("browser saw {saw:?}")
    };
    assert!(
        reason.starts_with(
            "Console unavailable: the console offers no security the proxy accepts (session "
        ),
        "{reason}"
    );
    // The driver closed the socket: the relay has seen everything by the time it is done.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        relay.to_server(),
        b"RFB 003.008\n",
        "nothing beyond the ProtocolVersion"
    );
    assert_eq!(
        relay.to_proxy().len(),
        12 + 2,
        "QEMU sent only its version and types"
    );
}

#[test]
fn vnc_none_is_refused_as_cleartext() {
    refuses_cleartext(Mode::VncNone, "[None(1)]");
}

#[test]
fn vnc_password_is_refused_as_cleartext() {
    refuses_cleartext(Mode::VncPassword("pw".into()), "[VncAuth(2)]");
}
