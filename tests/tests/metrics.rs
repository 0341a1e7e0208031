//! The metrics and health listener (issue 14): after sessions of each console kind and
//! refusals of each cause, `/metrics` (checked by `promtool`, scraped by a real Prometheus)
//! counts exactly those; it needs its bearer token, names no token or console address, and
//! gives the wss and the drivers' client certificates' expiry; a driver's failures are
//! counted by cause (TLS verification, VeNCrypt/RFB negotiation, credentials); `/healthz` and `/readyz` answer, and `/readyz` fails
//! while the Redis token store is down.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use consolegate_tests::backend::{assert_echoes, Backend, Behaviour};
use consolegate_tests::http;
use consolegate_tests::pki::pki;
use consolegate_tests::ports::{self, PortLease};
use consolegate_tests::prometheus::{self, Prometheus, Samples};
use consolegate_tests::proxy::{check_config, Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::redis::Redis;
use consolegate_tests::rfb::{self, Version};
use consolegate_tests::setup::assert_qemu_console;
use consolegate_tests::tls_peer::{Preface, TlsPeer, Versions};
use consolegate_tests::wait;
use consolegate_tests::ws::{self, Client};

const BEARER: &str = "metrics-bearer-5d1c0e";

/// A proxy with `metrics_listen` on a leased port and `metrics_token_file`; returns it with
/// the metrics address.
fn with_metrics(config: Config) -> (Config, PortLease) {
    let lease = ports::port();
    let token_file = config.dir().join("metrics-token");
    std::fs::write(&token_file, format!("{BEARER}\n")).unwrap();
    let config = config
        .set("metrics_listen", &format!("127.0.0.1:{}", lease.port()))
        .set("metrics_token_file", &token_file.display().to_string());
    (config, lease)
}

fn metrics_addr(lease: &PortLease) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], lease.port()))
}

/// The Unix time of the certificate's notAfter, by openssl and date.
fn not_after(cert: &std::path::Path) -> f64 {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let date = text.trim().strip_prefix("notAfter=").expect("notAfter=");
    let out = Command::new("date")
        .args(["-u", "+%s", "-d", date])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("seconds")
}

#[test]
fn counters_after_sessions_of_each_kind_and_refusals_of_each_cause() {
    let qemu = Qemu::start(Mode::VncNone);
    let echo = Backend::start(Behaviour::Echo);
    let unanswered = Backend::start(Behaviour::Unanswered);
    let closed = ports::port();
    let tokens = serde_json::json!({
        "tk-vnc": {"address": qemu.addr()},
        "tk-spice": {"type": "spice", "address": echo.addr()},
        "tk-serial": {"type": "serial", "address": echo.addr()},
        "tk-expired": {"address": qemu.addr(), "expires": 1},
        "tk-once": {"address": qemu.addr(), "single_use": true},
        "tk-closed": {"address": format!("127.0.0.1:{}", closed.port())},
        "tk-slow": {"address": unanswered.addr()},
        "tk-outside": {"address": "127.0.0.9:5900"},
        "tk-broken": {"address": qemu.addr(), "type": "nonsense"},
    });
    let config = Config::new().tls();
    let json_path = config.dir().join("tokens.json");
    std::fs::write(&json_path, tokens.to_string()).unwrap();
    let (config, lease) = with_metrics(
        config
            .set("token_source", &format!("json:{}", json_path.display()))
            .set("allowed_targets", "127.0.0.1/32")
            .set("connect_timeout", "1")
            .set("max_connections_per_client", "3"),
    );
    let proxy = Proxy::start(config);
    let metrics = metrics_addr(&lease);

    // Sessions: two VNC (one single-use), one SPICE, one serial.
    for token in ["tk-vnc", "tk-once"] {
        let mut ws = ws::open(&proxy.url(token));
        assert_qemu_console(&mut ws);
        ws.close();
    }
    for token in ["tk-spice", "tk-serial"] {
        let mut ws = ws::open(&proxy.url(token));
        assert_echoes(&mut ws, b"metrics");
        ws.close();
    }
    // Refusals, one of each cause.
    let refusal = |client: Client, token: &str| client.refusal(&proxy.url(token)).status;
    assert_eq!(
        refusal(Client::default().origin("https://evil.example"), "tk-vnc"),
        403
    );
    assert_eq!(refusal(Client::default(), "tk-nope"), 404);
    assert_eq!(refusal(Client::default(), "tk-expired"), 404);
    assert_eq!(refusal(Client::default(), "tk-once"), 404);
    assert_eq!(refusal(Client::default(), "tk-bad%21"), 400);
    assert_eq!(refusal(Client::default(), "tk-broken"), 404);
    assert_eq!(refusal(Client::default(), "tk-closed"), 502);
    assert_eq!(refusal(Client::default(), "tk-slow"), 504);
    assert_eq!(refusal(Client::default(), "tk-outside"), 403);
    let plain_get = http::exchange_tls(proxy.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(plain_get.status, 400);
    // max_connections_per_client: three connections held from one address, the fourth is
    // closed at accept (wss: no answer).
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6));
    let held: Vec<_> = (0..3)
        .map(|_| http::connect_from(source, proxy.addr()))
        .collect();
    let mut extra = http::connect_from(source, proxy.addr());
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    match std::io::Read::read(&mut extra, &mut [0u8; 1]) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the fourth connection was not closed at accept: {other:?}"),
    }
    drop(held);

    // Every session has ended (the gauges are back at 0) once the scrape shows it.
    let open_key =
        |kind: &str| format!(r#"consolegate_sessions_open{{kind="{kind}",driver="noop"}}"#);
    let samples: Samples = wait::until(Duration::from_secs(10), || {
        let s = prometheus::scrape(metrics, Some(BEARER));
        ["vnc", "spice", "serial"]
            .iter()
            .all(|k| s.value(&open_key(k)) == 0.0)
            .then_some(s)
    })
    .expect("sessions still open in the metrics");
    let expect = |key: &str, want: f64| {
        assert_eq!(samples.value(key), want, "{key}\n{:#?}", samples.0);
    };
    for (kind, started) in [("vnc", 2.0), ("spice", 1.0), ("serial", 1.0)] {
        expect(
            &format!(r#"consolegate_sessions_started_total{{kind="{kind}",driver="noop"}}"#),
            started,
        );
        expect(
            &format!(
                r#"consolegate_sessions_ended_total{{kind="{kind}",driver="noop",reason="client_closed"}}"#
            ),
            started,
        );
    }
    for cause in [
        "origin",
        "token_unknown",
        "token_expired",
        "token_used",
        "token_malformed",
        "token_store",
        "console_connect",
        "timeout",
        "target_not_allowed",
        "bad_request",
        "limit",
    ] {
        expect(
            &format!(r#"consolegate_refusals_total{{cause="{cause}"}}"#),
            1.0,
        );
    }
    expect(
        r#"consolegate_token_store_errors_total{error="malformed_entry"}"#,
        1.0,
    );
    expect("consolegate_handshake_seconds_count", 4.0);
    assert!(samples.value(r#"consolegate_relayed_bytes_total{direction="up"}"#) > 0.0);
    assert!(samples.value(r#"consolegate_relayed_bytes_total{direction="down"}"#) > 0.0);
    let cert = pki().trusted.server_cert();
    expect(
        &format!(
            r#"consolegate_certificate_expiry_timestamp_seconds{{usage="wss",file="{}"}}"#,
            cert.display()
        ),
        not_after(&cert),
    );
    let driver = samples
        .0
        .iter()
        .find(|(k, _)| k.starts_with(r#"consolegate_driver_loaded{driver="noop",version=""#))
        .unwrap_or_else(|| panic!("no driver_loaded sample: {:#?}", samples.0));
    assert!(driver.0.ends_with(r#"",abi="1"}"#), "{driver:?}");

    // Nothing on the listener names a token or a console address.
    let text = prometheus::get(metrics, "/metrics", Some(BEARER)).body;
    for secret in ["tk-", &qemu.addr(), &echo.addr()] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }

    // A real Prometheus, with the bearer token, scrapes the same.
    let server = Prometheus::start(metrics, Some(BEARER));
    assert!(
        server.target_up(Duration::from_secs(20)),
        "{}",
        server.log()
    );
    assert_eq!(
        server.query_until(
            r#"consolegate_sessions_started_total{kind="vnc"}"#,
            2.0,
            Duration::from_secs(10)
        ),
        Some(2.0)
    );
    assert_eq!(
        server.query_until(
            "sum(consolegate_refusals_total)",
            11.0,
            Duration::from_secs(10)
        ),
        Some(11.0)
    );
}

#[test]
fn metrics_need_the_bearer_token_and_health_answers() {
    let (config, lease) = with_metrics(Config::new());
    let _proxy = Proxy::start(config);
    let metrics = metrics_addr(&lease);
    for bearer in [None, Some("wrong")] {
        let r = prometheus::get(metrics, "/metrics", bearer);
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = prometheus::get(metrics, "/healthz", None);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let r = prometheus::get(metrics, "/readyz", None);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            200,
            "ok accepting connections\nok drivers loaded: 1\nok token store reachable\n"
        )
    );
    assert_eq!(prometheus::get(metrics, "/other", None).status, 404);
    let post = http::exchange(metrics, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(post.status, 405);
}

#[test]
fn readyz_fails_while_the_redis_token_store_is_down() {
    let mut redis = Redis::start();
    let (config, lease) = with_metrics(
        Config::new()
            .set("token_source", &redis.url())
            .section("token_redis", "prefix", "consolegate:")
            .section("token_redis", "timeout", "1"),
    );
    let proxy = Proxy::start(config);
    let metrics = metrics_addr(&lease);
    assert_eq!(prometheus::get(metrics, "/readyz", None).status, 200);
    redis.kill();
    let r = prometheus::get(metrics, "/readyz", None);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("FAIL token store reachable"), "{r:?}");
    assert!(!r.body.contains("127.0.0.1"), "no address in {r:?}");
    assert!(
        proxy
            .log()
            .contains("readyz: the token store does not answer"),
        "{}",
        proxy.log()
    );
    redis.restart();
    assert!(
        wait::until_true(Duration::from_secs(10), || {
            prometheus::get(metrics, "/readyz", None).status == 200
        }),
        "ready again once Redis is back"
    );
}

#[test]
fn driver_failures_are_counted_by_cause_and_the_client_certificate_expiry_is_shown() {
    let good = Qemu::start(Mode::VencryptX509Vnc("pw-right".into()));
    let plain = Qemu::start(Mode::VncNone);
    let outside_ca = TlsPeer::start(&pki().rogue_server(), Preface::Vencrypt, Versions::Current);
    let (config, lease) = with_metrics(
        Config::new()
            .trusted_tls_drivers("vencrypt")
            .token("tk-ok", &format!("vnc://:pw-right@{}", good.addr()))
            .token("tk-wrong-pw", &format!("vnc://:pw-wrong@{}", good.addr()))
            .token("tk-no-vencrypt", &format!("vnc://{}", plain.addr()))
            .token("tk-outside-ca", &format!("vnc://{}", outside_ca.addr())),
    );
    let proxy = Proxy::start(config);
    let mut ws = ws::open(&proxy.url("tk-ok"));
    rfb::handshake(&mut ws, Version::V3_8).expect("a VeNCrypt session");
    ws.close();
    for token in ["tk-wrong-pw", "tk-no-vencrypt", "tk-outside-ca"] {
        let mut ws = ws::open(&proxy.url(token));
        rfb::handshake(&mut ws, Version::V3_8).expect_err("refused");
        let (code, _) = ws.close_frame(Duration::from_secs(15)).expect("Close");
        assert_eq!(code, 1011, "{token}");
    }
    let samples = wait::until(Duration::from_secs(10), || {
        let s = prometheus::scrape(metrics_addr(&lease), Some(BEARER));
        (s.value(r#"consolegate_sessions_ended_total{kind="vnc",driver="vencrypt",reason="client_closed"}"#)
            == 1.0)
            .then_some(s)
    })
    .unwrap_or_else(|| panic!("the session did not end:\n{}", proxy.log()));
    for (cause, want) in [
        ("console_auth", 1.0),
        ("console_protocol", 1.0),
        ("tls", 1.0),
    ] {
        let key = format!(r#"consolegate_refusals_total{{cause="{cause}"}}"#);
        assert_eq!(
            samples.value(&key),
            want,
            "{key}: {:#?}\n{}",
            samples.0,
            proxy.log()
        );
    }
    assert_eq!(
        samples.value(r#"consolegate_sessions_started_total{kind="vnc",driver="vencrypt"}"#),
        1.0
    );
    let client_cert = pki().trusted.client_cert();
    let key = format!(
        r#"consolegate_certificate_expiry_timestamp_seconds{{usage="console_proxy_tls",file="{}"}}"#,
        client_cert.display()
    );
    assert_eq!(
        samples.value(&key),
        not_after(&client_cert),
        "{:#?}",
        samples.0
    );
}

#[test]
fn a_missing_metrics_token_file_stops_the_check_and_the_start() {
    let config = || {
        Config::new()
            .set("metrics_listen", "127.0.0.1:0")
            .set("metrics_token_file", "/nonexistent/metrics-token")
    };
    let (code, out) = check_config(&config());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("metrics_token_file /nonexistent/metrics-token: No such file or directory"),
        "{out}"
    );
    let (code, log) = Proxy::start_failure(config());
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("metrics_token_file /nonexistent/metrics-token"),
        "{log}"
    );
}

#[test]
fn readyz_fails_while_the_proxy_drains_after_sigterm() {
    let qemu = Qemu::start(Mode::VncNone);
    let (config, lease) = with_metrics(
        Config::new()
            .token("tk-drain", &qemu.addr())
            .set("drain_timeout", "5"),
    );
    let proxy = Proxy::start(config);
    let metrics = metrics_addr(&lease);
    let mut ws = ws::open(&proxy.url("tk-drain"));
    assert_qemu_console(&mut ws);
    assert_eq!(prometheus::get(metrics, "/readyz", None).status, 200);
    proxy.sigterm();
    let draining = wait::until(Duration::from_secs(5), || {
        let r = prometheus::get(metrics, "/readyz", None);
        (r.status == 503).then_some(r)
    })
    .unwrap_or_else(|| panic!("/readyz stayed 200 while draining:\n{}", proxy.log()));
    assert!(
        draining.body.contains("FAIL accepting connections"),
        "{draining:?}"
    );
    // Still alive while it drains.
    assert_eq!(prometheus::get(metrics, "/healthz", None).status, 200);
    ws.close();
}
