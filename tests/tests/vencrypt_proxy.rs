//! The VeNCrypt driver inside the proxy: a browser-style client speaks RFB with security None
//! over wss, while the proxy negotiates VeNCrypt x509 (mutual TLS) with a real QEMU. Failures on
//! the hypervisor side reach the client as an RFB failure and a Close 1011 with the reason.

use std::time::Duration;

use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb::{self, Version};
use consolegate_tests::setup::{assert_qemu_console, TOKEN};
use consolegate_tests::{reasons, ws};

/// wss, the vencrypt driver only, `[console_proxy_tls]` from the trusted test PKI.
fn vencrypt_config(target: &str) -> Config {
    Config::new()
        .tls()
        .trusted_tls_drivers("vencrypt")
        .token(TOKEN, target)
}

fn vnc_url(qemu: &Qemu, password: Option<&str>) -> String {
    match password {
        Some(pw) => format!("vnc://:{pw}@127.0.0.1:{}", qemu.port()),
        None => format!("vnc://127.0.0.1:{}", qemu.port()),
    }
}

/// Runs RFB 3.8 through the proxy and returns the failure the client saw plus the Close frame.
fn refused(proxy: &Proxy) -> (String, (u16, String)) {
    let mut ws = ws::open(&proxy.url(TOKEN));
    let error = rfb::handshake(&mut ws, Version::V3_8).expect_err("the handshake must fail");
    let close = ws
        .close_frame(Duration::from_secs(5))
        .expect("a Close frame");
    (error, close)
}

#[test]
fn x509none_over_wss_reaches_qemu_server_init_and_framebuffer_update() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let proxy = Proxy::start(vencrypt_config(&vnc_url(&qemu, None)));
    assert!(
        proxy.url(TOKEN).starts_with("wss://"),
        "{}",
        proxy.url(TOKEN)
    );
    let mut ws = ws::open(&proxy.url(TOKEN));
    let init = assert_qemu_console(&mut ws);
    rfb::request_update(&mut ws, init.width, init.height).unwrap();
    assert!(rfb::read_update_header(&mut ws).unwrap() >= 1);
    ws.close();
    let audit = proxy
        .wait_for_log("driver=vencrypt", Duration::from_secs(5))
        .expect("audit line");
    assert!(audit.contains("kind=vnc"), "{audit}");
}

#[test]
fn x509vnc_uses_the_password_from_the_token() {
    let qemu = Qemu::start(Mode::VencryptX509Vnc("pw-right".into()));
    let proxy = Proxy::start(vencrypt_config(&vnc_url(&qemu, Some("pw-right"))));
    for version in [Version::V3_8, Version::V3_7, Version::V3_3] {
        let mut ws = ws::open(&proxy.url(TOKEN));
        let init = rfb::handshake(&mut ws, version).unwrap_or_else(|e| panic!("{version:?}: {e}"));
        assert_eq!((init.width, init.height), (720, 400));
        ws.close();
    }
    assert!(
        !proxy.log().contains("pw-right"),
        "the password must never be logged"
    );
}

#[test]
fn wrong_vnc_password_reaches_the_client_with_qemus_reason() {
    let qemu = Qemu::start(Mode::VencryptX509Vnc("pw-right".into()));
    let proxy = Proxy::start(vencrypt_config(&vnc_url(&qemu, Some("pw-wrong"))));
    let (error, (code, reason)) = refused(&proxy);
    let phrase = "the console refused the credentials";
    let id = reasons::assert_rfb_reason(&error, phrase);
    assert_eq!(code, 1011);
    assert_eq!(reasons::assert_close_reason(&reason, phrase), id);
    let detail = proxy.driver_failure(id);
    assert!(detail.contains("Authentication failed"), "log: {detail}");
}

#[test]
fn qemu_without_vencrypt_is_refused_never_relayed_in_cleartext() {
    let qemu = Qemu::start(Mode::VncNone);
    let proxy = Proxy::start(vencrypt_config(&vnc_url(&qemu, None)));
    let (error, (code, reason)) = refused(&proxy);
    assert_eq!(code, 1011);
    let id =
        reasons::assert_close_reason(&reason, "the console offers no security the proxy accepts");
    let detail = proxy.driver_failure(id);
    assert!(
        detail.contains("server offers no VeNCrypt; refusing to fall back to cleartext"),
        "log: {detail}"
    );
    assert!(!error.contains("ServerInit"), "client saw: {error}");
    let audit = proxy
        .wait_for_log("audit session=", Duration::from_secs(5))
        .unwrap();
    assert!(
        audit.contains("up=0 down=0"),
        "no byte may be relayed: {audit}"
    );
}

#[test]
fn a_ca_that_did_not_sign_the_server_is_refused_with_the_reason() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let config = vencrypt_config(&vnc_url(&qemu, None)).section(
        "console_proxy_tls",
        "ca_certificate",
        &pki().rogue.ca_cert().display().to_string(),
    );
    let proxy = Proxy::start(config);
    let (_, (code, reason)) = refused(&proxy);
    assert_eq!(code, 1011);
    let log = proxy
        .wait_for_log("audit session=", Duration::from_secs(5))
        .unwrap();
    assert!(
        log.contains("certificate is not signed by the configured CA (ca_certificate)"),
        "the log must name the CA problem: {log}"
    );
    let id = reasons::assert_close_reason(&reason, "the secure connection to the console failed");
    assert!(log.contains(&format!("session {id}: ")), "{log}");
}

#[test]
fn a_client_certificate_qemu_does_not_trust_is_reported() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let rogue = &pki().rogue;
    let config = vencrypt_config(&vnc_url(&qemu, None))
        .section(
            "console_proxy_tls",
            "client_certificate",
            &rogue.client_cert().display().to_string(),
        )
        .section(
            "console_proxy_tls",
            "client_key",
            &rogue.client_key().display().to_string(),
        );
    let proxy = Proxy::start(config);
    let (_, (code, _)) = refused(&proxy);
    assert_eq!(code, 1011);
    let log = proxy
        .wait_for_log("audit session=", Duration::from_secs(5))
        .unwrap();
    assert!(
        log.contains("client certificate"),
        "the log must point at the client certificate: {log}"
    );
}
