//! The hypervisor leg refuses weak or wrong TLS: each TLS driver, for each console kind it
//! serves, against a fake console (`consolegate_tests::tls_peer`) that offers only TLS 1.0/1.1,
//! or presents an expired certificate, one from outside the configured CA, or one for another
//! name. Each test checks what the browser gets (Close 1011, with a reason that names no host,
//! address or certificate subject; for VNC also the RFB failure string), what the log says
//! (the precise reason), and that no console byte was relayed (the audit line's `up=0 down=0`,
//! and the peer's post-handshake bytes never reach the browser).
//!
//! The whole matrix, driver × case (a cell marked ¹ ² ³ is covered in another file, against
//! QEMU, without the relayed-bytes and browser-reason checks of this one):
//!
//! | case                 | `vencrypt` (VNC)   | `spice_tls` (SPICE) | `spice_tls` (serial)    |
//! |----------------------|--------------------|---------------------|-------------------------|
//! | only TLS 1.0/1.1     | `vnc_legacy_tls`   | `spice_legacy_tls`  | `serial_legacy_tls`     |
//! | expired certificate  | `vnc_expired`      | `spice_expired`     | `serial_expired`        |
//! | outside the CA       | ¹                  | ²                   | `serial_outside_the_ca` |
//! | for another name     | `vnc_other_name`   | ³                   | `serial_other_name`     |
//!
//! ¹ `vencrypt_proxy.rs`: `a_ca_that_did_not_sign_the_server_is_refused_with_the_reason`;
//! ² `spice_tls.rs`: `spice_with_the_wrong_ca_is_refused_with_the_reason`;
//! ³ `spice_tls.rs`: `spice_with_the_wrong_server_name_is_refused_with_the_reason` (a
//! `server_name` the certificate does not carry).
//!
//! The fake console is needed where QEMU cannot serve the case: QEMU refuses to start with an
//! expired certificate of its own, and neither QEMU 7.2's gnutls defaults nor rustls serve
//! TLS 1.0/1.1.

use std::io::Read;
use std::time::Duration;

use consolegate_tests::pki::{pki, RefusedServer, ServerIdentity, OTHER_NAME};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::rfb::{self, Version};
use consolegate_tests::tls_peer::{Preface, TlsPeer, Versions, MARKER};
use consolegate_tests::ws;

const TOKEN: &str = "tls-refusal-tok-5e0c7a91";
/// From the upgrade to the Close frame, the whole refusal.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(15);

/// A console kind with the driver that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Console {
    Vnc,
    Spice,
    Serial,
}

impl Console {
    fn driver(self) -> &'static str {
        match self {
            Console::Vnc => "vencrypt",
            Console::Spice | Console::Serial => "spice_tls",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Console::Vnc => "vnc",
            Console::Spice => "spice",
            Console::Serial => "serial",
        }
    }

    fn preface(self) -> Preface {
        match self {
            Console::Vnc => Preface::Vencrypt,
            Console::Spice | Console::Serial => Preface::None,
        }
    }
}

/// What is wrong with the console's TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    LegacyTls,
    Expired,
    OutsideTheCa,
    OtherName,
}

impl Case {
    fn identity(self) -> ServerIdentity {
        match self {
            Case::LegacyTls => pki().trusted_server(),
            Case::Expired => pki().refused_server(RefusedServer::Expired),
            Case::OutsideTheCa => pki().rogue_server(),
            Case::OtherName => pki().refused_server(RefusedServer::OtherName),
        }
    }

    fn versions(self) -> Versions {
        match self {
            Case::LegacyTls => Versions::Legacy,
            _ => Versions::Current,
        }
    }

    /// What the log's failure line says after `driver 'NAME' failed: `, word for word (the TLS
    /// client's error and its status); for an expired certificate up to today's date.
    fn detail(self) -> String {
        match self {
            Case::LegacyTls => {
                "the hypervisor offers only TLS versions older than 1.2 (alert ProtocolVersion); \
                 the proxy requires TLS 1.2 or 1.3: update the hypervisor's TLS settings (tls)"
                    .into()
            }
            Case::Expired => "the hypervisor's certificate has expired (on 2001-01-01; now ".into(),
            Case::OutsideTheCa => "the hypervisor's certificate is not signed by the configured \
                CA (ca_certificate); point ca_certificate at the CA that issued the \
                hypervisor's server-cert.pem (tls)"
                .into(),
            Case::OtherName => format!(
                "the hypervisor's certificate is not valid for \"127.0.0.1\" (it names \
                DnsName(\"{OTHER_NAME}\")); reissue it with that name in subjectAltName or set \
                server_name (tls)"
            ),
        }
    }
}

/// What one refused session showed.
struct Refusal {
    /// The Close frame's code and reason.
    close: (u16, String),
    /// The RFB failure string the browser got (VNC only).
    rfb_failure: Option<String>,
    /// Every byte the browser received.
    received: Vec<u8>,
    /// The proxy's log once the session's audit line is there.
    log: String,
    /// The peer's one line for the connection.
    peer_event: String,
    /// `127.0.0.1:PORT` of the fake console.
    peer_addr: String,
}

/// Opens a `console` session through a wss proxy with the trusted `[console_proxy_tls]` to a
/// fake console in `case`, and collects what the browser, the log and the peer saw.
fn refusal(console: Console, case: Case) -> Refusal {
    let peer = TlsPeer::start(&case.identity(), console.preface(), case.versions());
    let target = format!("{}://{}", console.scheme(), peer.addr());
    let config = Config::new()
        .tls()
        .trusted_tls_drivers(console.driver())
        .token(TOKEN, &target);
    let proxy = Proxy::start(config);
    let mut ws = ws::open(&proxy.url(TOKEN));
    ws.set_read_timeout(REFUSAL_TIMEOUT);
    let rfb_failure = (console == Console::Vnc).then(|| {
        rfb::handshake(&mut ws, Version::V3_8)
            .map(|init| panic!("the VNC handshake succeeded: {init:?}"))
            .unwrap_err()
    });
    let mut received = Vec::new();
    ws.read_to_end(&mut received)
        .unwrap_or_else(|e| panic!("reading until the Close frame: {e}\n{}", proxy.log()));
    let close = ws
        .close_frame(Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}\n{}", proxy.log()));
    let log = proxy
        .wait_for_log("audit session=", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no audit line:\n{}", proxy.log()));
    let peer_event = peer
        .first_event(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the peer saw no connection: {}", peer.output()));
    Refusal {
        close,
        rfb_failure,
        received,
        log,
        peer_event,
        peer_addr: peer.addr(),
    }
}

/// The assertions every cell shares.
fn assert_refused(console: Console, case: Case) {
    let r = refusal(console, case);
    let (code, reason) = &r.close;
    assert_eq!(*code, 1011, "close code; reason {reason:?}\n{}", r.log);
    assert!(!reason.is_empty(), "the browser gets a reason");
    // The log has the detail, in the session's failure line.
    let failed = format!("driver '{}' failed: ", console.driver());
    let line = r
        .log
        .lines()
        .find(|l| l.contains(&failed))
        .unwrap_or_else(|| panic!("no driver failure line:\n{}", r.log));
    let want = format!("{failed}{}", case.detail());
    assert!(line.contains(&want), "the log must say {want:?}: {line}");
    // Nothing relayed: the audit line counts no byte either way, the peer's console bytes
    // never reached the browser, and the peer's TLS handshake failed.
    let audit = r
        .log
        .lines()
        .find(|l| l.contains("audit session="))
        .expect("audit line");
    assert!(audit.contains("up=0 down=0"), "{audit}");
    assert!(
        !String::from_utf8_lossy(&r.received).contains(MARKER),
        "console bytes reached the browser"
    );
    assert!(
        r.peer_event.starts_with("tls-failed"),
        "the peer's TLS handshake must fail: {}",
        r.peer_event
    );
    assert!(!r.log.contains(TOKEN), "the token is in the log");
    // The browser learns nothing about the hypervisor side: no address, port, host name or
    // certificate subject, in the close reason nor in the RFB failure string.
    let port = r.peer_addr.rsplit(':').next().unwrap_or_default();
    let leaks = [
        "127.0.0.1",
        port,
        "localhost",
        OTHER_NAME,
        "Console Proxy Test",
        "Rogue",
        "CN=",
    ];
    for seen in std::iter::once(reason).chain(r.rfb_failure.as_ref()) {
        for leak in leaks {
            assert!(
                !seen.contains(leak),
                "the browser was told {leak:?}: {seen:?}"
            );
        }
    }
}

/// One test per cell of the matrix that this file covers.
macro_rules! cells {
    ($($name:ident: $console:ident, $case:ident;)*) => {
        $(
            #[test]
            fn $name() {
                assert_refused(Console::$console, Case::$case);
            }
        )*
    };
}

cells! {
    vnc_legacy_tls: Vnc, LegacyTls;
    spice_legacy_tls: Spice, LegacyTls;
    serial_legacy_tls: Serial, LegacyTls;
    vnc_expired: Vnc, Expired;
    spice_expired: Spice, Expired;
    serial_expired: Serial, Expired;
    serial_outside_the_ca: Serial, OutsideTheCa;
    vnc_other_name: Vnc, OtherName;
    serial_other_name: Serial, OtherName;
}

/// The control: the same fake console with the trusted certificate and TLS 1.2+ completes the
/// handshake through the proxy and its bytes reach the browser, so the refusals above are the
/// proxy's doing, not the fake's.
#[test]
fn control_a_valid_console_gets_through() {
    let peer = TlsPeer::start(&pki().trusted_server(), Preface::None, Versions::Current);
    let config = Config::new()
        .tls()
        .trusted_tls_drivers("spice_tls")
        .token(TOKEN, &format!("spice://{}", peer.addr()));
    let proxy = Proxy::start(config);
    let mut ws = ws::open(&proxy.url(TOKEN));
    let got = rfb::read_n(&mut ws, MARKER.len(), "the console's bytes")
        .unwrap_or_else(|e| panic!("{e}\n{}", proxy.log()));
    assert_eq!(got, MARKER.as_bytes());
    assert_eq!(
        peer.first_event(Duration::from_secs(5)).as_deref(),
        Some("tls-ok TLSv1.3")
    );
}
