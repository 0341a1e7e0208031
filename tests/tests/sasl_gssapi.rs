//! The `sasl_gssapi` driver against real peers: an MIT KDC with its own realm and QEMU with
//! `-vnc …,sasl=on` (alone: RFB type 20 with a GSSAPI security layer; with `tls-creds`:
//! VeNCrypt X509SASL with GSSAPI or SCRAM-SHA-256). Each session reaches QEMU's ServerInit
//! through the proxy, or is refused with the precise browser reason and log detail, and
//! nothing is relayed.
//!
//! Figures: run with `-- --nocapture` to see the set-up times and SSFs the tests print.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use consolegate_tests::proxy::{check_config, Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb::{self, ServerInit, Version};
use consolegate_tests::sasl::{
    proxy_config, Realm, SaslQemu, Tap, Wire, PROXY_PRINCIPAL, SCRAM_PASSWORD, SCRAM_USER,
};
use consolegate_tests::ws::Ws;
use consolegate_tests::{ports, reasons, ws};

const TOKEN: &str = "sasl-tok-0e5f3a7c91";
const KERBEROS: &str = "the hypervisor refused the proxy's Kerberos credentials";
const MECHANISM: &str = "the console requires a mechanism the proxy does not allow";

/// Opens the console through the proxy and runs RFB 3.8 to ServerInit; the time it took.
fn server_init(proxy: &Proxy) -> (Ws, ServerInit, Duration) {
    let t0 = Instant::now();
    let mut ws = ws::open(&proxy.url(TOKEN));
    let init = rfb::handshake(&mut ws, Version::V3_8)
        .unwrap_or_else(|e| panic!("{e}\n--- proxy log:\n{}", proxy.log()));
    (ws, init, t0.elapsed())
}

/// Runs RFB 3.8 through the proxy, which must refuse: asserts the RFB reason and the Close
/// frame name `phrase` (the RFB one) and `close_phrase`; returns the log's detail.
fn refused(proxy: &Proxy, phrase: &str, close_phrase: &str) -> String {
    let mut ws = ws::open(&proxy.url(TOKEN));
    let error = match rfb::handshake(&mut ws, Version::V3_8) {
        Ok(init) => panic!("the session was relayed: {init:?}\n{}", proxy.log()),
        Err(e) => e,
    };
    let id = reasons::assert_rfb_reason(&error, phrase);
    let (code, reason) = ws
        .close_frame(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 1011, "{reason}");
    assert_eq!(reasons::assert_close_reason(&reason, close_phrase), id);
    proxy.driver_failure(id)
}

/// The log line the driver writes for an established session (mechanism, route, SSF).
fn established_line(proxy: &Proxy) -> String {
    let log = proxy
        .wait_for_log("SASL ", Duration::from_secs(5))
        .unwrap_or_default();
    log.lines()
        .find(|l| l.contains(": SASL ") && l.contains("(SSF "))
        .unwrap_or_else(|| panic!("no established line:\n{log}"))
        .to_string()
}

/// A full-screen raw FramebufferUpdate: every byte of its rectangles.
fn full_update(ws: &mut Ws, init: &ServerInit) -> Vec<u8> {
    rfb::request_update(ws, init.width, init.height).unwrap();
    let rects = rfb::read_update_header(ws).unwrap();
    let mut all = Vec::new();
    for _ in 0..rects {
        let head = rfb::read_n(ws, 12, "a rectangle header").unwrap();
        let w = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let h = usize::from(u16::from_be_bytes([head[6], head[7]]));
        let encoding = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        all.extend_from_slice(&head);
        match encoding {
            0 => {
                let n = w * h * usize::from(init.bits_per_pixel / 8);
                all.extend(rfb::read_n(ws, n, "raw pixels").unwrap());
            }
            // Pseudo-encodings carry no pixels here (the client asked for none).
            other => panic!("unexpected encoding {other}"),
        }
    }
    all
}

#[test]
fn check_config_loads_the_keytab_and_no_longer_warns_of_a_placeholder() {
    let realm = Realm::start();
    let (code, out) = check_config(&proxy_config(&realm));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("placeholder"), "{out}");
    let not_a_keytab = realm.kdc.path("krb5.conf").display().to_string();
    let config = proxy_config(&realm).section("console_proxy_sasl", "keytab", &not_a_keytab);
    let (code, out) = check_config(&config);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "[console_proxy_sasl] keytab = {not_a_keytab}: it is not a Kerberos keytab"
        )),
        "{out}"
    );
    let config = proxy_config(&realm).section("console_proxy_sasl", "mechanisms", "GSSAPI, PLAIN");
    let (code, out) = check_config(&config);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("mechanisms: PLAIN is refused: it sends the password itself"),
        "{out}"
    );
}

#[test]
fn gssapi_over_plain_sasl_wraps_every_byte_in_the_security_layer() {
    let realm = Realm::start();
    let qemu = SaslQemu::start(&realm, "gssapi", Wire::Plain);
    let tap = Tap::start(qemu.qemu.port());
    let proxy = Proxy::start(proxy_config(&realm).token(TOKEN, &tap.addr()));
    let (mut ws, init, took) = server_init(&proxy);
    assert_eq!(init.server_version, "RFB 003.008");
    assert!(init.name.starts_with("QEMU"), "{init:?}");
    let line = established_line(&proxy);
    assert!(
        line.contains("SASL GSSAPI over plain RFB (type 20) with 127.0.0.1:"),
        "{line}"
    );
    let ssf: u32 = line
        .split("(SSF ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(ssf >= 56, "{line}");
    eprintln!("FIGURE gssapi type 20: set-up to ServerInit {took:?}, SSF {ssf}");
    // A framebuffer update comes through, and the bytes QEMU put on the wire after the SASL
    // exchange are not RFB: neither the desktop name nor the pixel format is visible.
    let update = full_update(&mut ws, &init);
    assert!(!update.is_empty());
    let wire = tap.from_console();
    assert!(wire.starts_with(b"RFB 003.008\n"), "{:?}", &wire[..12]);
    let name = init.name.as_bytes();
    assert!(
        !wire.windows(name.len()).any(|w| w == name),
        "the desktop name crossed the hypervisor leg in plaintext"
    );
    let size = [init.width.to_be_bytes(), init.height.to_be_bytes()].concat();
    assert!(
        !wire.windows(4).any(|w| w == size),
        "ServerInit's framebuffer size crossed the hypervisor leg in plaintext"
    );
}

#[test]
fn bulk_relay_through_the_security_layer_keeps_every_byte() {
    let realm = Realm::start();
    let qemu = SaslQemu::start(&realm, "gssapi", Wire::Plain);
    let proxy = Proxy::start(proxy_config(&realm).token(TOKEN, &qemu.addr()));
    let (mut ws, init, _) = server_init(&proxy);
    let first = full_update(&mut ws, &init);
    let want = 12 + usize::from(init.width) * usize::from(init.height) * 4;
    assert!(
        first.len() >= want,
        "{} bytes, want at least {want}",
        first.len()
    );
    let t0 = Instant::now();
    let mut total = first.len();
    for round in 0..8 {
        let again = full_update(&mut ws, &init);
        assert_eq!(again, first, "round {round}: the screen changed in transit");
        total += again.len();
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "FIGURE bulk through the GSSAPI layer: {total} bytes, 8 updates in {secs:.2} s ({:.1} MB/s)",
        (total - first.len()) as f64 / secs / 1e6
    );
}

#[test]
fn gssapi_inside_x509sasl_reaches_server_init() {
    let realm = Realm::start();
    let qemu = SaslQemu::start(&realm, "gssapi scram-sha-256", Wire::X509);
    let proxy = Proxy::start(proxy_config(&realm).token(TOKEN, &qemu.addr()));
    let (_ws, init, took) = server_init(&proxy);
    assert!(init.name.starts_with("QEMU"), "{init:?}");
    let line = established_line(&proxy);
    assert!(
        line.contains("SASL GSSAPI inside VeNCrypt X509SASL") && line.contains("(SSF 0)"),
        "{line}"
    );
    eprintln!("FIGURE gssapi in 263: set-up to ServerInit {took:?}");
}

#[test]
fn scram_inside_x509sasl_uses_the_tokens_credentials() {
    let realm = Realm::start();
    let qemu = SaslQemu::start(&realm, "scram-sha-256", Wire::X509);
    let target = format!("vnc://{SCRAM_USER}:{SCRAM_PASSWORD}@{}", qemu.addr());
    let proxy = Proxy::start(
        proxy_config(&realm)
            .section("console_proxy_sasl", "mechanisms", "SCRAM-SHA-256, GSSAPI")
            .token(TOKEN, &target),
    );
    let (_ws, init, took) = server_init(&proxy);
    assert!(init.name.starts_with("QEMU"), "{init:?}");
    assert!(established_line(&proxy).contains("SASL SCRAM-SHA-256 inside VeNCrypt X509SASL"));
    eprintln!("FIGURE scram in 263: set-up to ServerInit {took:?}");
    assert!(
        !proxy.log().contains(SCRAM_PASSWORD),
        "the password reached the log"
    );
}

#[test]
fn wrong_scram_password_is_refused_clearly() {
    let realm = Realm::start();
    let qemu = SaslQemu::start(&realm, "scram-sha-256", Wire::X509);
    let target = format!("vnc://{SCRAM_USER}:not-the-password@{}", qemu.addr());
    let proxy = Proxy::start(proxy_config(&realm).token(TOKEN, &target));
    let phrase = "the console refused the credentials";
    let detail = refused(&proxy, phrase, phrase);
    assert_eq!(
        detail,
        "the hypervisor closed the connection during SASL SCRAM-SHA-256 authentication: it \
         rejected the proxy's credentials (see its log: vnc_auth_fail)"
    );
    assert!(!proxy.log().contains("not-the-password"));
}

/// A GSSAPI session to a Kerberos QEMU after `spoil` changed the realm (or with `service`):
/// refused with the Kerberos phrase; the log's detail.
fn kerberos_refusal(spoil: impl FnOnce(&Realm), service: Option<&str>) -> String {
    let realm = Realm::start();
    spoil(&realm);
    let qemu = SaslQemu::start(&realm, "gssapi", Wire::Plain);
    let mut config = proxy_config(&realm).token(TOKEN, &qemu.addr());
    if let Some(service) = service {
        config = config.section("console_proxy_sasl", "service", service);
    }
    let proxy = Proxy::start(config);
    refused(&proxy, KERBEROS, "the console refused the credentials")
}

#[test]
fn a_stale_keytab_is_refused_with_the_kerberos_detail() {
    // New keys in the KDC: the keytab the proxy holds no longer matches.
    let detail = kerberos_refusal(
        |realm| {
            realm.kdc.keytab("rekeyed.keytab", &[PROXY_PRINCIPAL]);
        },
        None,
    );
    assert!(
        detail.starts_with("GSSAPI with vnc@127.0.0.1 failed on the proxy's side: "),
        "{detail}"
    );
    // The GSS major status, then MIT's minor status: the keytab's key is not the KDC's.
    assert!(
        detail.contains(
            "GSSAPI Error: No credentials were supplied, or the credentials were unavailable or \
             inaccessible (Decrypt integrity check failed)"
        ),
        "{detail}"
    );
}

#[test]
fn a_principal_missing_from_the_kdc_is_refused() {
    let detail = kerberos_refusal(
        |realm| {
            realm
                .kdc
                .kadmin(&format!("delprinc -force {PROXY_PRINCIPAL}"));
        },
        None,
    );
    assert!(
        detail.contains(
            "(Client 'consolegate/proxy@CONSOLEGATE.TEST' not found in Kerberos database)"
        ),
        "{detail}"
    );
}

#[test]
fn a_wrong_service_principal_is_refused() {
    let detail = kerberos_refusal(|_| {}, Some("vnc-elsewhere"));
    assert!(
        detail.starts_with("GSSAPI with vnc-elsewhere@127.0.0.1 failed on the proxy's side"),
        "{detail}"
    );
    assert!(
        detail.contains(
            "(Server vnc-elsewhere/127.0.0.1@CONSOLEGATE.TEST not found in Kerberos database)"
        ),
        "{detail}"
    );
}

#[test]
fn a_server_offering_only_plain_is_refused() {
    let realm = Realm::start();
    let qemu = SaslQemu::start(&realm, "plain", Wire::X509);
    let proxy = Proxy::start(proxy_config(&realm).token(TOKEN, &qemu.addr()));
    let detail = refused(
        &proxy,
        MECHANISM,
        "the console offers no security the proxy accepts",
    );
    assert_eq!(
        detail,
        "no acceptable SASL mechanism inside VeNCrypt X509SASL: the server offers [PLAIN], \
         mechanisms allows [GSSAPI, SCRAM-SHA-256]"
    );
}

/// A server that offers SASL without TLS and only a mechanism without a security layer: the
/// proxy refuses before sending any mechanism, let alone a credential.
#[test]
fn sasl_without_tls_and_without_a_layer_is_refused_before_anything_is_sent() {
    let realm = Realm::start();
    let lease = ports::port();
    let listener = TcpListener::bind(("127.0.0.1", lease.port())).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"RFB 003.008\n\x01\x14\0\0\0\x0dSCRAM-SHA-256")
            .unwrap();
        let mut received = Vec::new();
        let _ = conn.read_to_end(&mut received);
        tx.send(received).unwrap();
    });
    let target = format!(
        "vnc://{SCRAM_USER}:{SCRAM_PASSWORD}@127.0.0.1:{}",
        lease.port()
    );
    let proxy = Proxy::start(proxy_config(&realm).token(TOKEN, &target));
    let detail = refused(
        &proxy,
        MECHANISM,
        "the console offers no security the proxy accepts",
    );
    assert_eq!(
        detail,
        "no acceptable SASL mechanism over plain RFB (type 20): the server offers \
         [SCRAM-SHA-256], mechanisms allows [GSSAPI, SCRAM-SHA-256]; SCRAM-SHA-256 gives no \
         security layer, so it is used only inside TLS"
    );
    let received = rx.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!(
        received, b"RFB 003.008\n\x14",
        "only the version and the type"
    );
}

#[test]
fn a_server_offering_no_sasl_is_refused_with_what_it_offers() {
    let realm = Realm::start();
    let qemu = Qemu::start(Mode::VncNone);
    let proxy = Proxy::start(proxy_config(&realm).token(TOKEN, &qemu.addr()));
    let phrase = "the console offers no security the proxy accepts";
    let detail = refused(&proxy, phrase, phrase);
    assert!(
        detail.starts_with(
            "the VNC server offers no SASL the proxy can use (security types [None(1)])"
        ),
        "{detail}"
    );
}

#[test]
fn x509sasl_without_console_proxy_tls_is_a_configuration_error() {
    let realm = Realm::start();
    let qemu = SaslQemu::start(&realm, "gssapi", Wire::X509);
    let config = Config::new()
        .driver("sasl_gssapi")
        .unset("connect_insecure")
        .section(
            "console_proxy_sasl",
            "keytab",
            &realm.proxy_keytab.display().to_string(),
        )
        .env("KRB5_CONFIG", &realm.kdc.krb5_conf().display().to_string())
        .token(TOKEN, &qemu.addr());
    let proxy = Proxy::start(config);
    let phrase = "console proxy error";
    let detail = refused(&proxy, phrase, phrase);
    assert!(
        detail.starts_with("the VNC server offers SASL only inside VeNCrypt X509SASL"),
        "{detail}"
    );
}

/// Twenty sessions in a row through one proxy, ten per mechanism inside X509SASL and ten
/// with GSSAPI over type 20: each reaches ServerInit (cyrus-sasl's lock, the in-memory ticket
/// cache and the connections' disposal hold up). Prints the median, min and max set-up times.
#[test]
fn sequential_sessions_each_reach_server_init() {
    let realm = Realm::start();
    let layered = SaslQemu::start(&realm, "gssapi", Wire::Plain);
    let tls = SaslQemu::start(&realm, "gssapi scram-sha-256", Wire::X509);
    let scram_target = format!("vnc://{SCRAM_USER}:{SCRAM_PASSWORD}@{}", tls.addr());
    for (what, target, mechanisms) in [
        ("GSSAPI type 20", layered.addr(), "GSSAPI"),
        ("GSSAPI in X509SASL", tls.addr(), "GSSAPI"),
        ("SCRAM-SHA-256 in X509SASL", scram_target, "SCRAM-SHA-256"),
    ] {
        let proxy = Proxy::start(
            proxy_config(&realm)
                .section("console_proxy_sasl", "mechanisms", mechanisms)
                .token(TOKEN, &target),
        );
        let mut times: Vec<Duration> = (0..10)
            .map(|_| {
                let (ws, init, took) = server_init(&proxy);
                assert!(init.name.starts_with("QEMU"), "{init:?}");
                ws.close();
                took
            })
            .collect();
        times.sort();
        eprintln!(
            "FIGURE {what}: websocket open to ServerInit over 10 sessions: median {:?}, min {:?}, \
             max {:?}",
            times[5], times[0], times[9]
        );
    }
}
