//! VeNCrypt X509Vnc against a real QEMU (`tls-creds-x509` + `password-secret`): the VNC
//! challenge is answered inside TLS; a wrong password gets QEMU's own reason.

mod common;

use common::*;
use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::DriverError;
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_vencrypt::VencryptError;

#[test]
fn right_password_reaches_server_init() {
    let qemu = Qemu::start(Mode::VencryptX509Vnc("s3cret-pw".into()));
    let init = reaches_server_init(&driver(), qemu.port(), None, "s3cret-pw");
    assert_eq!((init.width, init.height), (720, 400));
    assert!(init.name.starts_with("QEMU"), "{init:?}");
}

#[test]
fn wrong_password_reports_qemus_reason() {
    let qemu = Qemu::start(Mode::VencryptX509Vnc("s3cret-pw".into()));
    let e = refused_credentials(&driver(), qemu.port(), None, "wrong-pw");
    // QEMU's own reason stays in the error (the log); the browser got the generic one.
    assert!(
        matches!(&e, VencryptError::ServerRejected { reason } if reason == "Authentication failed"),
        "{e}"
    );
    assert_eq!(DriverError::from(e).status, CgStatus::AUTH);
}

#[test]
fn no_password_for_x509vnc_is_refused_before_tls() {
    let qemu = Qemu::start(Mode::VencryptX509Vnc("s3cret-pw".into()));
    let (result, saw) = session(&driver(), qemu.port(), None, None, "003.007", HANDSHAKE);
    let e = result.unwrap_err();
    assert!(e.to_string().contains("X509Vnc needs a password"), "{e}");
    assert!(matches!(saw, BrowserSaw::Refused(_)), "{saw:?}");
}
