//! VeNCrypt X509Plain against TigerVNC Xvnc with a PAM check script: the username and
//! password go inside TLS; a wrong password gets Xvnc's reason. Xvnc lists a plain RFB type
//! among its subtypes, which the driver ignores.

mod common;

use common::*;
use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::DriverError;
use consolegate_tests::xvnc::{Xvnc, DESKTOP, PLAIN_USER};
use consolegate_vencrypt::{Vencrypt, VencryptError};

/// The driver with X509Plain preferred (Xvnc asks for no client certificate).
fn plain_driver() -> Vencrypt {
    Vencrypt::from_options(&options("ca-cert.pem", None, Some("x509plain, x509vnc"))).unwrap()
}

#[test]
fn x509plain_with_the_right_password_reaches_server_init() {
    let xvnc = Xvnc::start("plain-pw");
    let driver = plain_driver();
    let init = reaches_server_init(&driver, xvnc.port(), Some(PLAIN_USER), "plain-pw");
    assert_eq!((init.width, init.height), (1024, 768));
    assert!(init.name.contains(DESKTOP), "{init:?}");
}

#[test]
fn x509plain_with_a_wrong_password_reports_xvncs_reason() {
    let xvnc = Xvnc::start("plain-pw");
    let driver = plain_driver();
    let e = refused_credentials(&driver, xvnc.port(), Some(PLAIN_USER), "bad-pw");
    let VencryptError::ServerRejected { reason } = &e else {
        panic!("{e}")
    };
    assert!(reason.contains("invalid password or username"), "{reason}");
    assert_eq!(DriverError::from(e).status, CgStatus::AUTH);
}
