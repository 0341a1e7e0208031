//! VeNCrypt X509Plain against TigerVNC Xvnc with a PAM check script: the username and
//! password go inside TLS; a wrong password gets Xvnc's reason. Xvnc lists a plain RFB type
//! among its subtypes, which the driver ignores.

mod common;

use common::*;
use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::DriverError;
use consolegate_tests::xvnc::Xvnc;
use consolegate_vencrypt::{Vencrypt, VencryptError};

/// The driver with X509Plain preferred (Xvnc asks for no client certificate).
fn plain_driver() -> Vencrypt {
    Vencrypt::from_options(&options("ca-cert.pem", None, Some("x509plain, x509vnc"))).unwrap()
}

#[test]
fn x509plain_with_the_right_password_reaches_server_init() {
    let xvnc = Xvnc::start("plain-pw");
    let driver = plain_driver();
    let (result, saw) = session(
        &driver,
        xvnc.port(),
        Some("proxy"),
        Some("plain-pw"),
        "003.008",
        HANDSHAKE,
    );
    let mut channel = result.unwrap();
    assert_eq!(saw, BrowserSaw::Accepted);
    let init = Rfb(&mut channel).init();
    assert_eq!((init.width, init.height), (1024, 768));
    assert!(init.name.contains("xvnc-peer"), "{init:?}");
}

#[test]
fn x509plain_with_a_wrong_password_reports_xvncs_reason() {
    let xvnc = Xvnc::start("plain-pw");
    let driver = plain_driver();
    let (result, saw) = session(
        &driver,
        xvnc.port(),
        Some("proxy"),
        Some("bad-pw"),
        "003.008",
        HANDSHAKE,
    );
    let e = result.unwrap_err();
    let VencryptError::ServerRejected { reason } = &e else {
        panic!("{e}")
    };
    assert!(reason.contains("invalid password or username"), "{reason}");
    assert!(
        !e.to_string().contains("bad-pw"),
        "the password leaked: {e}"
    );
    assert_eq!(DriverError::from(e).status, CgStatus::AUTH);
    let BrowserSaw::Refused(reason) = saw else {
        panic!("browser saw {saw:?}")
    };
    assert!(
        reason.starts_with("Console unavailable: the console refused the credentials (session "),
        "{reason}"
    );
}
