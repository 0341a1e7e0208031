//! Behind a load balancer (issue 14): a real HAProxy in front of the proxies, in TCP mode with
//! PROXY protocol v2 and v1 and in HTTP mode with `X-Forwarded-For`, and the audit lines name
//! the real client, not the balancer; the per-client limit counts the real client; headers and
//! PROXY headers from anyone but `trusted_proxies` change nothing or are refused.
//!
//! Every client connects from 127.0.0.2 or 127.0.0.4, HAProxy from 127.0.0.3 (all this host),
//! so the addresses tell who is who.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use consolegate_tests::audit;
use consolegate_tests::haproxy::{Haproxy, Mode, HAPROXY_SOURCE};
use consolegate_tests::http;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{self, Qemu};
use consolegate_tests::setup::{assert_qemu_console, token_hash, TOKEN};
use consolegate_tests::ws::{Client, Failure, Ws};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));

/// A proxy for `qemu` that trusts HAProxy, with `proxy_protocol` as given.
fn behind_haproxy(qemu: &Qemu, proxy_protocol: bool) -> Config {
    Config::new()
        .token(TOKEN, &qemu.addr())
        .set("trusted_proxies", &HAPROXY_SOURCE.to_string())
        .set("proxy_protocol", &proxy_protocol.to_string())
}

/// Waits for session `session`'s end line and returns its start and end fields.
fn audit_lines(
    proxy: &Proxy,
    session: u64,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let needle = format!("audit session={session} ");
    let log = proxy
        .wait_for_log(&needle, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no audit line for session {session}:\n{}", proxy.log()));
    let start = audit::find_line(&log, "audit start ", session)
        .unwrap_or_else(|| panic!("no audit start line for session {session}:\n{log}"));
    let end = audit::find_line(&log, "audit ", session).expect("end line");
    (
        audit::fields(start, "audit start "),
        audit::fields(end, "audit "),
    )
}

/// Opens a console session from `source` to `url` and closes it; returns the client's local
/// address.
fn session_from(source: IpAddr, url: &str) -> SocketAddr {
    let mut ws = Client::default().source(source).open(url);
    let local = ws.tcp().local_addr().expect("local address");
    assert_qemu_console(&mut ws);
    ws.close();
    local
}

fn assert_same_fields(start: &BTreeMap<String, String>, end: &BTreeMap<String, String>) {
    for key in ["session", "client", "token", "kind", "target", "driver"] {
        assert_eq!(start.get(key), end.get(key), "{key}: {start:?} / {end:?}");
    }
}

#[test]
fn haproxy_send_proxy_v2_to_two_proxies_audits_the_real_client() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxies = [
        Proxy::start(behind_haproxy(&qemu, true)),
        Proxy::start(behind_haproxy(&qemu, true)),
    ];
    let lb = Haproxy::start(Mode::TcpProxyV2, &[proxies[0].addr(), proxies[1].addr()]);
    let clients = [
        session_from(CLIENT, &lb.url(TOKEN)),
        session_from(CLIENT, &lb.url(TOKEN)),
    ];
    // Round robin: one session on each proxy, each audited with its client's own address and
    // port, on both lines.
    let mut audited = Vec::new();
    for proxy in &proxies {
        let (start, end) = audit_lines(proxy, 1);
        assert_same_fields(&start, &end);
        assert_eq!(start["token"], token_hash(TOKEN));
        assert_eq!(start["kind"], "vnc");
        assert_eq!(start["target"], qemu.addr());
        assert_eq!(start["driver"], "noop");
        assert_eq!(end["close"], "client closed");
        assert!(end["down"].parse::<u64>().unwrap() > 0, "{end:?}");
        audited.push(start["client"].clone());
        assert!(
            !proxy.log().contains(&HAPROXY_SOURCE.to_string()),
            "the balancer's address is in no line:\n{}",
            proxy.log()
        );
    }
    audited.sort();
    let mut expected: Vec<String> = clients.iter().map(SocketAddr::to_string).collect();
    expected.sort();
    assert_eq!(audited, expected);
}

#[test]
fn haproxy_send_proxy_v1_is_read_too() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxy = Proxy::start(behind_haproxy(&qemu, true));
    let lb = Haproxy::start(Mode::TcpProxyV1, &[proxy.addr()]);
    let client = session_from(OTHER_CLIENT, &lb.url(TOKEN));
    let (start, _) = audit_lines(&proxy, 1);
    assert_eq!(start["client"], client.to_string());
}

#[test]
fn the_per_client_limit_counts_the_real_client_not_the_balancer() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxy = Proxy::start(behind_haproxy(&qemu, true).set("max_connections_per_client", "1"));
    let lb = Haproxy::start(Mode::TcpProxyV2, &[proxy.addr()]);
    // Two clients at once through the one balancer address: both served.
    let mut first = Client::default().source(CLIENT).open(&lb.url(TOKEN));
    assert_qemu_console(&mut first);
    let mut other = Client::default().source(OTHER_CLIENT).open(&lb.url(TOKEN));
    assert_qemu_console(&mut other);
    // A second connection from the first client: 503.
    match Client::default().source(CLIENT).connect(&lb.url(TOKEN)) {
        Err(Failure::Refused(r)) => {
            assert_eq!(
                (r.status, r.body.as_str()),
                (503, "consolegate: too many connections\n")
            )
        }
        Ok(_) => panic!(
            "a second connection from {CLIENT} was served:\n{}",
            proxy.log()
        ),
        Err(e) => panic!("{e:?}"),
    }
    first.close();
    other.close();
}

#[test]
fn haproxy_in_http_mode_passes_the_client_in_x_forwarded_for() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxy = Proxy::start(behind_haproxy(&qemu, false));
    let lb = Haproxy::start(Mode::HttpForwardFor, &[proxy.addr()]);
    session_from(CLIENT, &lb.url(TOKEN));
    let (start, end) = audit_lines(&proxy, 1);
    assert_same_fields(&start, &end);
    // X-Forwarded-For carries no port.
    assert_eq!(start["client"], CLIENT.to_string());
    // A client that forges its own X-Forwarded-For: HAProxy appends the real address, and the
    // rightmost untrusted hop is the client.
    let mut ws = Client::default()
        .source(OTHER_CLIENT)
        .header("X-Forwarded-For", "203.0.113.66")
        .open(&lb.url(TOKEN));
    assert_qemu_console(&mut ws);
    ws.close();
    let (start, _) = audit_lines(&proxy, 2);
    assert_eq!(start["client"], OTHER_CLIENT.to_string());
}

#[test]
fn forwarded_headers_from_an_untrusted_address_change_nothing() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxy = Proxy::start(behind_haproxy(&qemu, false));
    let url = proxy.url(TOKEN);
    let mut ws: Ws = Client::default()
        .source(CLIENT)
        .header("X-Forwarded-For", "203.0.113.66")
        .header("Forwarded", "for=203.0.113.67")
        .open(&url);
    let local = ws.tcp().local_addr().unwrap();
    assert_qemu_console(&mut ws);
    ws.close();
    let (start, end) = audit_lines(&proxy, 1);
    assert_eq!(start["client"], local.to_string());
    assert_eq!(end["client"], local.to_string());
    assert!(!proxy.log().contains("203.0.113.6"), "{}", proxy.log());
}

/// Sends `bytes` from `source` to `addr` and returns what came back before the proxy closed.
fn raw_from(source: IpAddr, addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = http::connect_from(source, addr);
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = tcp.write_all(bytes);
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    answer
}

#[test]
fn proxy_headers_only_from_trusted_proxies_and_always_from_them() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxy = Proxy::start(behind_haproxy(&qemu, true));
    let upgrade = http::upgrade_request("/?token=unknown-token", "");
    // From an untrusted address, a PROXY header is refused: closed unanswered, logged.
    let forged = format!("PROXY TCP4 203.0.113.9 127.0.0.1 5000 6080\r\n{upgrade}");
    assert_eq!(raw_from(CLIENT, proxy.addr(), forged.as_bytes()), b"");
    assert!(
        proxy
            .wait_for_log(
                "refused: 127.0.0.2 sent a PROXY protocol header but is not in trusted_proxies",
                Duration::from_secs(5)
            )
            .is_some(),
        "{}",
        proxy.log()
    );
    // From the trusted proxy, a connection without one is refused.
    assert_eq!(
        raw_from(HAPROXY_SOURCE, proxy.addr(), upgrade.as_bytes()),
        b""
    );
    assert!(
        proxy
            .wait_for_log(
                "refused: trusted proxy 127.0.0.3 sent no PROXY protocol header",
                Duration::from_secs(5)
            )
            .is_some(),
        "{}",
        proxy.log()
    );
    // A direct client without a header is served as itself.
    let answer = http::exchange(proxy.addr(), upgrade.as_bytes());
    assert_eq!(answer.status, 404, "{answer:?}");
    // The trusted proxy's valid header names the client.
    let header = "PROXY TCP4 198.51.100.20 127.0.0.1 40000 6080\r\n";
    let answer = raw_from(
        HAPROXY_SOURCE,
        proxy.addr(),
        format!("{header}{upgrade}").as_bytes(),
    );
    assert!(
        answer.starts_with(b"HTTP/1.1 404 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        proxy
            .wait_for_log("client=198.51.100.20:40000 ", Duration::from_secs(5))
            .is_some(),
        "{}",
        proxy.log()
    );
}

#[test]
fn haproxy_health_checks_with_a_proxy_header_are_neither_refused_nor_audited() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxy = Proxy::start(behind_haproxy(&qemu, true));
    let lb = Haproxy::start_with_checks(Mode::TcpProxyV2, &[proxy.addr()]);
    // A few checks (every 200 ms, PROXY v2 LOCAL, then close), then a session.
    std::thread::sleep(Duration::from_millis(1000));
    let client = session_from(CLIENT, &lb.url(TOKEN));
    let log = proxy
        .wait_for_log("audit session=", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no audit line:\n{}", proxy.log()));
    let audits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("audit session="))
        .collect();
    assert_eq!(audits.len(), 1, "only the session is audited:\n{log}");
    assert!(
        audits[0].contains(&format!(" client={client} ")),
        "{}",
        audits[0]
    );
    assert!(!log.contains("refused"), "a check was refused:\n{log}");
    assert!(
        !audits[0].contains("session=1 "),
        "the checks came first, as sessions of their own:\n{log}"
    );
    assert!(
        !lb.log().contains("DOWN"),
        "HAProxy marked the proxy down:\n{}",
        lb.log()
    );
}
