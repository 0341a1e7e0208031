//! The sasl_gssapi placeholder: it loads, `--check-config` warns about it, its options are
//! validated, and a session against a VNC server ends with a precise RFB failure and close
//! reason — "not implemented yet" when SASL is offered (QEMU `sasl=on`, plain and inside
//! VeNCrypt; a fake server), what was offered otherwise — and never relays a byte.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use consolegate_tests::pki::pki;
use consolegate_tests::ports;
use consolegate_tests::proxy::{check_config, Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb::{self, Version};
use consolegate_tests::{reasons, ws};

const TOKEN: &str = "sasl-tok-0e5f3a7c91";
const NOT_IMPLEMENTED: &str = "SASL negotiation is not implemented yet (placeholder driver \
    sasl_gssapi); use console_proxy_security_driver = vencrypt with x509 for now";

fn sasl_config() -> Config {
    Config::new()
        .set("console_proxy_security_driver", "sasl_gssapi")
        .unset("connect_insecure")
}

/// Runs an RFB 3.8 client through the proxy to `addr`: the failure reason the driver sent in
/// RFB, then the websocket close code and reason.
fn session(addr: &str) -> (String, (u16, String), Proxy) {
    let proxy = Proxy::start(sasl_config().token(TOKEN, addr));
    let mut ws = ws::open(&proxy.url(TOKEN));
    let rfb_error = match rfb::handshake(&mut ws, Version::V3_8) {
        Ok(init) => panic!(
            "the placeholder completed a session: {init:?}\n{}",
            proxy.log()
        ),
        Err(e) => e,
    };
    let close = ws
        .close_frame(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    (rfb_error, close, proxy)
}

/// The browser is told, in RFB and in the Close frame, that the console offers nothing the
/// proxy accepts; the log says "not implemented yet".
fn assert_not_implemented(rfb_error: &str, (code, reason): &(u16, String), proxy: &Proxy) {
    let phrase = "the console offers no security the proxy accepts";
    let id = reasons::assert_rfb_reason(rfb_error, phrase);
    assert_eq!(*code, 1011);
    assert_eq!(reasons::assert_close_reason(reason, phrase), id);
    assert_eq!(proxy.driver_failure(id), NOT_IMPLEMENTED);
}

/// QEMU with `-vnc …,sasl=on` (and `tls-creds` when `vencrypt`: then SASL is VeNCrypt
/// subtype TLSSASL or X509SASL).
fn qemu_with_sasl(vencrypt: bool) -> Qemu {
    let port = ports::vnc_port();
    let mut vnc = format!("127.0.0.1:{},sasl=on", port.port() - 5900);
    let mut args = Vec::new();
    if vencrypt {
        args.push("-object".to_string());
        args.push(format!(
            "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=off",
            pki().trusted.dir().display()
        ));
        vnc.push_str(",tls-creds=tls0");
    }
    args.extend(["-vnc".to_string(), vnc]);
    Qemu::start_custom(port, &args)
}

#[test]
fn check_config_warns_that_sasl_gssapi_is_a_placeholder() {
    let (code, out) = check_config(&sasl_config());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING: driver 'sasl_gssapi' is a placeholder"),
        "{out}"
    );
}

#[test]
fn check_config_names_a_bad_sasl_option() {
    let config = sasl_config().section("console_proxy_sasl", "keytab", "/nonexistent/proxy.keytab");
    let (code, out) = check_config(&config);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("[console_proxy_sasl] keytab = /nonexistent/proxy.keytab: cannot open it"),
        "{out}"
    );
    let (code, out) =
        check_config(&sasl_config().section("console_proxy_sasl", "mechanism", "GSS API"));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("mechanism = \"GSS API\" is not valid"),
        "{out}"
    );
}

#[test]
fn qemu_offering_sasl_gets_not_implemented() {
    let qemu = qemu_with_sasl(false);
    let (rfb_error, close, proxy) = session(&qemu.addr());
    assert_not_implemented(&rfb_error, &close, &proxy);
    assert!(
        proxy
            .log()
            .contains("the VNC server offers security types [SASL(20)]"),
        "{}",
        proxy.log()
    );
}

#[test]
fn qemu_offering_vencrypt_x509sasl_gets_not_implemented() {
    let qemu = qemu_with_sasl(true);
    let (rfb_error, close, proxy) = session(&qemu.addr());
    assert_not_implemented(&rfb_error, &close, &proxy);
    // QEMU 7.2 labels it TLSSASL (263) even with x509 credentials; either is SASL.
    let log = proxy.log();
    let offers = |subtype| {
        log.contains(&format!(
            "types [VeNCrypt(19)], VeNCrypt subtypes [{subtype}]"
        ))
    };
    assert!(offers("TLSSASL(263)") || offers("X509SASL(264)"), "{log}");
}

#[test]
fn qemu_without_sasl_is_reported_with_what_it_offers() {
    for (mode, offered) in [
        (Mode::VncNone, "security types [None(1)]"),
        (
            Mode::VncPassword("pw123456".into()),
            "security types [VncAuth(2)]",
        ),
    ] {
        let qemu = Qemu::start(mode);
        let (rfb_error, (code, reason), proxy) = session(&qemu.addr());
        let want =
            format!("the VNC server offers no SASL ({offered}); sasl_gssapi (a placeholder)");
        let phrase = "the console offers no security the proxy accepts";
        reasons::assert_rfb_reason(&rfb_error, phrase);
        assert_eq!(code, 1011);
        let id = reasons::assert_close_reason(&reason, phrase);
        let detail = proxy.driver_failure(id);
        assert!(detail.starts_with(&want), "{detail}");
    }
}

#[test]
fn fake_server_offering_sasl_receives_nothing_but_a_version() {
    let lease = ports::port();
    let listener = TcpListener::bind(("127.0.0.1", lease.port())).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"RFB 003.008\n\x01\x14").unwrap();
        let mut received = Vec::new();
        let _ = conn.read_to_end(&mut received);
        tx.send(received).unwrap();
    });
    let (rfb_error, close, proxy) = session(&format!("127.0.0.1:{}", lease.port()));
    assert_not_implemented(&rfb_error, &close, &proxy);
    let received = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the fake server's connection ended");
    assert_eq!(
        received, b"RFB 003.008\n",
        "only the version reached the server"
    );
}
