//! The test peers themselves work, independently of the proxy: QEMU serves RFB, the PKI
//! verifies, the C driver compiles against the header, the fake backends misbehave as asked.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::c_driver;
use consolegate_tests::pki::pki;
use consolegate_tests::qemu::{Mode, Options, Qemu};
use consolegate_tests::rfb::{self, Version};

#[test]
fn qemu_vnc_none_serves_rfb_directly() {
    let qemu = Qemu::start_with(
        Mode::VncNone,
        Options {
            name: Some("peer".into()),
            ..Options::default()
        },
    );
    let mut tcp = TcpStream::connect(qemu.addr()).expect("connect to QEMU");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let init = rfb::handshake(&mut tcp, Version::V3_8).expect("RFB handshake");
    assert_eq!((init.width, init.height), (720, 400));
    assert_eq!(init.name, "QEMU (peer)");
    rfb::request_update(&mut tcp, init.width, init.height).unwrap();
    assert!(rfb::read_update_header(&mut tcp).unwrap() >= 1);
}

#[test]
fn qemu_is_gone_after_drop() {
    let qemu = Qemu::start(Mode::VncNone);
    let addr = qemu.addr();
    drop(qemu);
    let gone = consolegate_tests::wait::until_true(Duration::from_secs(5), || {
        TcpStream::connect(&addr).is_err()
    });
    assert!(gone, "QEMU still listens on {addr} after drop");
}

#[test]
fn pki_leaves_verify_against_their_ca_only() {
    let pki = pki();
    let verify = |ca: &std::path::Path, cert: &std::path::Path| {
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(ca)
            .arg(cert)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify(&pki.trusted.ca_cert(), &pki.trusted.server_cert()));
    assert!(verify(&pki.trusted.ca_cert(), &pki.trusted.client_cert()));
    assert!(verify(&pki.rogue.ca_cert(), &pki.rogue.server_cert()));
    assert!(!verify(&pki.trusted.ca_cert(), &pki.rogue.server_cert()));
}

#[test]
fn c_driver_compiles_against_the_header() {
    let lib = c_driver::echo_driver(None);
    assert!(lib.path().is_file());
    let wrong = c_driver::echo_driver(Some(99));
    assert!(wrong.path().is_file());
}

#[test]
fn unanswered_backend_makes_connect_time_out() {
    let backend = Backend::start(Behaviour::Unanswered);
    let addr = backend.addr().parse().unwrap();
    let t0 = Instant::now();
    let result = TcpStream::connect_timeout(&addr, Duration::from_millis(700));
    assert!(
        result.is_err(),
        "connect to the unanswered backend succeeded"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "connect failed fast: {result:?}"
    );
}

#[test]
fn qemu_serial_plain_echoes_bytes() {
    use std::io::Write;
    let qemu = Qemu::start(Mode::SerialPlain);
    let mut tcp = TcpStream::connect(qemu.addr()).expect("connect to the serial chardev");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"ping").unwrap();
    let echoed = rfb::read_n(&mut tcp, 4, "the echo").unwrap();
    assert_eq!(echoed, b"ping");
}

#[test]
fn qemu_vencrypt_offers_only_vencrypt() {
    use std::io::Write;
    let qemu = Qemu::start(Mode::VencryptX509None);
    let mut tcp = TcpStream::connect(qemu.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(
        rfb::read_n(&mut tcp, 12, "greeting").unwrap(),
        b"RFB 003.008\n"
    );
    tcp.write_all(b"RFB 003.008\n").unwrap();
    assert_eq!(rfb::read_n(&mut tcp, 2, "security types").unwrap(), [1, 19]);
}

#[test]
fn qemu_spice_listens_on_plain_and_tls_ports() {
    let qemu = Qemu::start(Mode::Spice(None));
    let tls_port = qemu.tls_port().expect("a TLS port");
    assert_ne!(tls_port, qemu.port());
    TcpStream::connect(qemu.addr()).expect("plain SPICE port");
    TcpStream::connect(("127.0.0.1", tls_port)).expect("TLS SPICE port");
}
