//! Slowloris, both kinds, and floods of connections that never authenticate: a phase's deadline
//! holds however the client spaces its bytes, a flood from one address cannot lock out others,
//! and unauthenticated connections cannot crowd out working sessions.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consolegate_tests::fds;
use consolegate_tests::http::{self, connect_from, read_response, upgrade_request};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::rfb;
use consolegate_tests::scratch::TempDir;
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws;

/// `handshake_timeout` in these tests.
const DEADLINE: Duration = Duration::from_secs(2);
/// How long after a deadline the proxy may take to act on it.
const SLACK: Duration = Duration::from_millis(1500);
/// The gap between two bytes of a drip-fed client: far inside any per-read timeout.
const DRIP: Duration = Duration::from_millis(200);

/// Drip-feeds `bytes` ([`http::drip`]) `DRIP` apart.
fn drip(tcp: &mut TcpStream, bytes: &[u8], limit: Duration) -> Option<Duration> {
    http::drip(tcp, bytes, DRIP, limit)
}

fn assert_cut_on_time(took: Option<Duration>) {
    assert!(
        took.is_some_and(|t| t < DEADLINE + SLACK),
        "a drip-fed client held its connection for {took:?} (handshake_timeout {DEADLINE:?})"
    );
}

fn config() -> Config {
    Config::new().set("handshake_timeout", &DEADLINE.as_secs().to_string())
}

#[test]
fn a_drip_fed_request_head_is_cut_at_the_deadline() {
    let proxy = Proxy::start(config());
    let mut tcp = TcpStream::connect(proxy.addr()).unwrap();
    let head = upgrade_request("/websockify?token=drip-fed-token", "");
    assert_cut_on_time(drip(&mut tcp, head.as_bytes(), DEADLINE * 4));
}

#[test]
fn a_drip_fed_tls_client_hello_is_cut_at_the_deadline() {
    let proxy = Proxy::start(config().tls());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(client_config), "localhost".try_into().unwrap())
            .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    assert!(hello.len() > 100, "a ClientHello of {} bytes", hello.len());
    let mut tcp = TcpStream::connect(proxy.addr()).unwrap();
    assert_cut_on_time(drip(&mut tcp, &hello, DEADLINE * 4));
}

#[test]
fn a_static_file_reply_to_a_slow_reader_is_cut_at_its_deadline() {
    let web = TempDir::new("web-slow");
    web.write("big.bin", vec![b'x'; 48 << 20]);
    let proxy = Proxy::start(config().set("web", &web.path().display().to_string()));
    let baseline = fds::settled(proxy.pid());
    let mut tcp = TcpStream::connect(proxy.addr()).unwrap();
    tcp.write_all(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // Read 4 KiB every 200 ms: every write of the proxy makes progress, so only a deadline on
    // the whole reply (not on each write) ends it.
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    let mut thread_gone = None;
    while t0.elapsed() < DEADLINE * 4 {
        let _ = tcp.read(&mut buf);
        std::thread::sleep(DRIP);
        if fds::usage(proxy.pid()).threads <= baseline.threads {
            thread_gone = Some(t0.elapsed());
            break;
        }
    }
    assert!(
        thread_gone.is_some_and(|t| t < DEADLINE + SLACK),
        "the session serving a slow reader ended after {thread_gone:?}"
    );
    assert!(fds::back_to(proxy.pid(), baseline, SLACK).is_ok());
}

/// Opens `n` connections from `source` that each send half a request head and stall.
fn stalled_from(source: IpAddr, proxy: &Proxy, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut tcp = connect_from(source, proxy.addr());
            tcp.write_all(b"GET /websockify?token=x HTTP/1.1\r\nHost: h\r\n")
                .unwrap();
            tcp
        })
        .collect()
}

fn assert_refused_busy(tcp: &mut TcpStream) {
    let response = read_response(tcp);
    assert_eq!(
        (response.status, response.body.as_str()),
        (503, "consolegate: too many connections\n")
    );
}

#[test]
fn a_flood_from_one_address_does_not_lock_out_others() {
    let setup = VncSetup::start_with(|c| {
        c.set("handshake_timeout", "5")
            .set("max_connections_per_client", "8")
    });
    let flooder: IpAddr = "127.0.0.9".parse().unwrap();
    let _held = stalled_from(flooder, &setup.proxy, 8);
    let mut extra = stalled_from(flooder, &setup.proxy, 4);
    for tcp in &mut extra {
        assert_refused_busy(tcp);
    }
    let log = setup.proxy.log();
    assert!(
        log.contains("refusing 127.0.0.9:")
            && log.contains("max_connections_per_client (8) reached for this address"),
        "{log}"
    );
    // Another address still gets a console while the flood holds its connections.
    let mut ws = ws::open(&setup.url());
    assert_qemu_console(&mut ws);
}

#[test]
fn unauthenticated_connections_cannot_crowd_out_sessions() {
    let setup = VncSetup::start_with(|c| {
        c.set("handshake_timeout", &DEADLINE.as_secs().to_string())
            .set("max_handshakes", "6")
            .set("max_connections_per_client", "0")
    });
    let mut working = ws::open(&setup.url());
    let init = assert_qemu_console(&mut working);
    let held: Vec<TcpStream> = (10..16)
        .flat_map(|i| stalled_from(format!("127.0.0.{i}").parse().unwrap(), &setup.proxy, 1))
        .collect();
    let mut seventh = stalled_from("127.0.0.16".parse().unwrap(), &setup.proxy, 1);
    assert_refused_busy(&mut seventh[0]);
    assert!(setup
        .proxy
        .log()
        .contains("max_handshakes (6) connections are still in their handshake"));
    // The session that was already working still relays.
    rfb::request_update(&mut working, init.width, init.height).unwrap();
    rfb::read_update_header(&mut working).unwrap();
    // Once the stalled connections reach their deadline, new sessions get in again.
    std::thread::sleep(DEADLINE + SLACK);
    let mut next = ws::open(&setup.url());
    assert_qemu_console(&mut next);
    drop(held);
}
