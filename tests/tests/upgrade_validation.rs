//! Everything about a websocket upgrade is checked before the token is looked up: a request that
//! would not get `101` gets `400` with the rule it broke, the console is never dialled, and the
//! token is untouched (the corrected request then works).

use std::time::Duration;

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::http::{exchange, upgrade_request};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::wait;

const TOKEN: &str = "upgrade-check-7d1e";
const PATH: &str = "/websockify?token=upgrade-check-7d1e";

#[test]
fn every_bad_upgrade_is_refused_before_the_console_is_dialled() {
    let backend = Backend::start(Behaviour::Silent);
    let proxy = Proxy::start(Config::new().token(TOKEN, &backend.addr()));
    let good = upgrade_request(PATH, "");
    let cases = [
        (
            good.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            "unsupported websocket version (send Sec-WebSocket-Version: 13)",
        ),
        (
            good.replace("Sec-WebSocket-Version: 13\r\n", ""),
            "unsupported websocket version (send Sec-WebSocket-Version: 13)",
        ),
        (
            good.replacen("GET", "POST", 1),
            "a websocket upgrade must use GET",
        ),
        (
            good.replace("HTTP/1.1", "HTTP/1.0"),
            "a websocket upgrade needs HTTP/1.1",
        ),
        (
            good.replace("Connection: Upgrade", "Connection: keep-alive"),
            "the Connection header must include Upgrade",
        ),
        (
            good.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            "missing or malformed Sec-WebSocket-Key",
        ),
        (
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "missing or malformed Sec-WebSocket-Key",
        ),
        (
            good.replace(
                "Sec-WebSocket-Protocol: binary",
                "Sec-WebSocket-Protocol: base64",
            ),
            "unsupported websocket subprotocol (offer 'binary' or none)",
        ),
    ];
    for (request, reason) in &cases {
        let response = exchange(proxy.addr(), request.as_bytes());
        assert_eq!(
            (response.status, response.body.as_str()),
            (400, format!("consolegate: {reason}\n").as_str()),
            "{request}"
        );
    }
    assert_eq!(
        backend.accepted(),
        0,
        "a bad upgrade must never dial the console"
    );
    let response = exchange(proxy.addr(), good.as_bytes());
    assert_eq!(response.status, 101, "{response:?}\n{}", proxy.log());
    assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("binary"));
    assert_eq!(
        response.header("Sec-WebSocket-Accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "RFC 6455's example key"
    );
    assert!(
        wait::until_true(Duration::from_secs(5), || backend.accepted() == 1),
        "the good request reaches the console"
    );
}

#[test]
fn no_subprotocol_offered_is_fine() {
    let backend = Backend::start(Behaviour::Silent);
    let proxy = Proxy::start(Config::new().token(TOKEN, &backend.addr()));
    let request = upgrade_request(PATH, "").replace("Sec-WebSocket-Protocol: binary\r\n", "");
    let response = exchange(proxy.addr(), request.as_bytes());
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
}
