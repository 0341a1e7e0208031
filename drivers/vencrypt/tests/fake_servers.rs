//! Broken and hostile servers, played by the test on a local socket: garbage, oversized
//! length fields, stalls, downgrade offers, and random byte streams. Each gives a clean,
//! precise error (or a timeout) and never a panic.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::DriverError;
use consolegate_tls_client::TlsError;
use consolegate_vencrypt::{Phase, VencryptError};

/// A server for one connection: sends `bytes`, then either closes its sending side
/// (`stall = false`) or keeps the connection open without a word (`stall = true`), reading
/// whatever the driver sends.
fn fake(bytes: Vec<u8>, stall: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = s.write_all(&bytes);
        if !stall {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = std::io::copy(&mut s, &mut std::io::sink());
    });
    port
}

/// A correct X509None server's cleartext part, up to and including the subtype ack.
const GOOD_PREFIX: &[u8] = b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x04\x01";

fn run(bytes: &[u8], stall: bool, timeout: Duration) -> (VencryptError, BrowserSaw) {
    let port = fake(bytes.to_vec(), stall);
    let (result, saw) = session(&driver(), port, None, Some("pw"), "003.008", timeout);
    (result.expect_err("the session must fail"), saw)
}

#[test]
fn garbage_instead_of_a_version_is_malformed() {
    let (e, saw) = run(b"HTTP/1.1 400 Bad Request\r\n\r\n", false, HANDSHAKE);
    assert!(
        matches!(
            e,
            VencryptError::Malformed {
                phase: Phase::ServerVersion,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("\"HTTP/1.1 400\" is not an RFB ProtocolVersion"),
        "{e}"
    );
    assert_eq!(DriverError::from(e).status, CgStatus::PROTOCOL);
    assert!(matches!(saw, BrowserSaw::Refused(_)), "{saw:?}");
}

#[test]
fn huge_length_fields_are_refused() {
    let mut reason = b"RFB 003.008\n\x00".to_vec();
    reason.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut subtypes = GOOD_PREFIX[..17].to_vec();
    subtypes.push(255);
    for (bytes, what) in [
        (reason, "failure reason"),
        (subtypes, "VeNCrypt subtype list"),
    ] {
        let (e, _) = run(&bytes, true, HANDSHAKE);
        let VencryptError::LengthTooLarge { what: got, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*got, what);
        assert_eq!(DriverError::from(e).status, CgStatus::PROTOCOL);
    }
}

#[test]
fn stalling_servers_time_out_by_phase() {
    let short = Duration::from_millis(300);
    for (bytes, phase) in [
        (&b""[..], Phase::ServerVersion),
        (b"RFB 003.008\n", Phase::SecurityTypes),
        (&GOOD_PREFIX[..17], Phase::Subtypes),
    ] {
        let started = Instant::now();
        let (e, saw) = run(bytes, true, short);
        assert!(
            matches!(e, VencryptError::Timeout { phase: p } if p == phase),
            "{e}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(DriverError::from(e).status, CgStatus::TIMEOUT);
        assert!(matches!(saw, BrowserSaw::Refused(r) if r.contains("did not answer in time")));
    }
    // Silent after the ack: the TLS handshake times out.
    let (e, _) = run(GOOD_PREFIX, true, short);
    assert!(matches!(e, VencryptError::Tls(TlsError::Timeout)), "{e}");
}

#[test]
fn cleartext_after_the_ack_is_not_tls() {
    let mut bytes = GOOD_PREFIX.to_vec();
    bytes.extend_from_slice(b"\x00\x00\x00\x00");
    let (e, _) = run(&bytes, true, HANDSHAKE);
    assert!(
        matches!(e, VencryptError::Tls(TlsError::NotTls { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("did not answer with TLS"), "{e}");
}

#[test]
fn downgrades_are_refused() {
    let anonymous = b"RFB 003.008\n\x01\x13\x00\x02\x00\x02\x00\x00\x01\x01\x00\x00\x01\x02";
    let (e, _) = run(anonymous, true, HANDSHAKE);
    assert!(
        matches!(e, VencryptError::AnonymousTlsRefused { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("[TLSNone(257), TLSVnc(258)]"), "{e}");

    let old = b"RFB 003.008\n\x01\x13\x00\x01";
    let (e, _) = run(old, true, HANDSHAKE);
    assert!(
        e.to_string().contains("VeNCrypt 0.1; 0.2 is required"),
        "{e}"
    );

    let rfb33 = b"RFB 003.003\n\x00\x00\x00\x01";
    let (e, _) = run(rfb33, true, HANDSHAKE);
    assert!(matches!(e, VencryptError::NoVencryptOffered { .. }), "{e}");

    let refused = b"RFB 003.008\n\x00\x00\x00\x00\x0dtoo many VNCs";
    let (e, _) = run(refused, true, HANDSHAKE);
    assert_eq!(
        e.to_string(),
        "the hypervisor refused the connection: too many VNCs"
    );
}

#[test]
fn random_server_bytes_never_panic() {
    let driver = driver();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let mut bytes = GOOD_PREFIX[..(next() as usize % (GOOD_PREFIX.len() + 1))].to_vec();
        for _ in 0..next() % 4 {
            if !bytes.is_empty() {
                let i = next() as usize % bytes.len();
                bytes[i] = next() as u8;
            }
        }
        bytes.extend((0..next() % 40).map(|_| next() as u8));
        let port = fake(bytes.clone(), false);
        let (result, _) = session(&driver, port, Some("u"), Some("pw"), "003.008", HANDSHAKE);
        assert!(result.is_err(), "{bytes:?} completed a handshake");
    }
}

/// A connection the driver must not have written past its ProtocolVersion on.
#[test]
fn nothing_is_sent_when_no_vencrypt_is_offered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"RFB 003.008\n\x02\x01\x02").unwrap();
        let mut got = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.read_to_end(&mut got);
        got
    });
    let (result, _) = session(&driver(), port, None, None, "003.008", HANDSHAKE);
    assert!(matches!(
        result,
        Err(VencryptError::NoVencryptOffered { .. })
    ));
    assert_eq!(server.join().unwrap(), b"RFB 003.008\n");
}
