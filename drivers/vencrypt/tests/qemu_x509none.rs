//! VeNCrypt X509None against a real QEMU (`tls-creds-x509`, verify-peer=on): the session
//! reaches ServerInit and frames, for every RFB version a browser may speak; the hypervisor
//! leg is encrypted; certificate problems on either side are named precisely.

mod common;

use common::*;
use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::DriverError;
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tls_client::TlsError;
use consolegate_vencrypt::{Phase, Vencrypt, VencryptError};

#[test]
fn x509none_reaches_server_init_and_a_framebuffer_update() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let (result, saw) = session(&driver(), qemu.port(), None, None, "003.008", HANDSHAKE);
    let mut channel = result.unwrap();
    assert_eq!(saw, BrowserSaw::Accepted);
    let mut rfb = Rfb(&mut channel);
    let init = rfb.init();
    assert_eq!((init.width, init.height), (720, 400));
    assert!(init.name.starts_with("QEMU"), "{init:?}");
    let pixels = rfb.framebuffer_update(&init);
    assert_eq!(pixels.len(), 720 * 400 * 4);
}

#[test]
fn rfb_33_and_37_browsers_get_security_type_none() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let driver = driver();
    for version in ["003.003", "003.007"] {
        let (result, saw) = session(&driver, qemu.port(), None, None, version, HANDSHAKE);
        let mut channel = result.unwrap_or_else(|e| panic!("RFB {version}: {e}"));
        assert_eq!(saw, BrowserSaw::Accepted, "RFB {version}");
        let init = Rfb(&mut channel).init();
        assert_eq!((init.width, init.height), (720, 400), "RFB {version}");
    }
}

/// Bytes from QEMU up to and including the subtype ack: version 12, type list 2,
/// VeNCrypt version 2, status 1, subtype list 1 + 4, ack 1.
const CLEARTEXT_PREFIX: usize = 12 + 2 + 2 + 1 + 5 + 1;

#[test]
fn the_hypervisor_leg_is_encrypted_after_the_vencrypt_ack() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let relay = Relay::start(qemu.port());
    let (result, _) = session(&driver(), relay.port, None, None, "003.008", HANDSHAKE);
    let mut channel = result.unwrap();
    let mut rfb = Rfb(&mut channel);
    let init = rfb.init();
    let pixels = rfb.framebuffer_update(&init);
    // The plaintext has the name and long runs of black pixels...
    let black = [0u8; 64];
    assert!(
        contains(&pixels, &black),
        "the frame should have black runs"
    );
    // ...the wire after the ack has neither.
    let wire = relay.to_proxy();
    assert!(
        wire.len() > pixels.len(),
        "the whole frame went through the relay"
    );
    assert_eq!(&wire[..12], b"RFB 003.008\n");
    assert_eq!(
        &wire[CLEARTEXT_PREFIX - 6..CLEARTEXT_PREFIX],
        &[1, 0, 0, 1, 4, 1]
    );
    let after_ack = &wire[CLEARTEXT_PREFIX..];
    assert_eq!(after_ack[0], 0x16, "a TLS handshake record follows the ack");
    assert!(
        !contains(after_ack, b"QEMU"),
        "ServerInit name in cleartext"
    );
    assert!(!contains(after_ack, &black), "framebuffer in cleartext");
    let sent = relay.to_server();
    assert!(
        !contains(&sent[12 + 1 + 2 + 4..], &[3, 0, 0, 0, 0, 0]),
        "request in cleartext"
    );
}

fn driver_with(ca: &str, identity: Option<(&str, &str)>) -> Vencrypt {
    Vencrypt::from_options(&options(ca, identity, None)).unwrap()
}

#[test]
fn certificate_problems_are_named() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let cases: [(&str, Vencrypt); 3] = [
        ("no client certificate", driver_with("ca-cert.pem", None)),
        (
            "rogue client certificate",
            driver_with(
                "ca-cert.pem",
                Some(("rogue/client-cert.pem", "rogue/client-key.pem")),
            ),
        ),
        (
            "rogue CA",
            driver_with(
                "rogue/ca-cert.pem",
                Some(("client-cert.pem", "client-key.pem")),
            ),
        ),
    ];
    for (what, driver) in cases {
        let (result, saw) = session(&driver, qemu.port(), None, None, "003.008", HANDSHAKE);
        let e = result
            .err()
            .unwrap_or_else(|| panic!("{what}: session succeeded"));
        let message = e.to_string();
        match what {
            "rogue CA" => {
                assert!(
                    matches!(e, VencryptError::Tls(TlsError::UnknownCa)),
                    "{what}: {message}"
                );
                assert!(
                    message.contains("not signed by the configured CA"),
                    "{message}"
                );
            }
            _ => {
                // QEMU checks the client certificate after the handshake and closes.
                assert!(
                    matches!(
                        e,
                        VencryptError::ClosedAfterTls {
                            phase: Phase::SecurityResult
                        }
                    ),
                    "{what}: {message}"
                );
                assert!(message.contains("most likely rejecting the proxy's client certificate"));
                assert_eq!(DriverError::from(e).status, CgStatus::AUTH);
            }
        }
        let BrowserSaw::Refused(reason) = saw else {
            panic!("{what}: browser saw {saw:?}")
        };
        assert!(
            reason.starts_with(if what == "rogue CA" {
                "Console unavailable: the secure connection to the console failed (session "
            } else {
                "Console unavailable: the console refused the credentials (session "
            }),
            "{reason}"
        );
    }
}
