//! The refusal check (`proxy/src/refusal_check.rs`): a `POST` with `Consolegate-Check` to a
//! console URL gets the refusal the websocket upgrade would get from the checks that need no
//! console (origin, token, lookup), or 200, and never uses up a single-use token. The console
//! pages send it to show why their websocket closed with 1006 (`console_pages.rs` checks that
//! the pages show it).

use std::fs;

use consolegate_tests::http::{exchange, Response};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb::{self, Version};
use consolegate_tests::ws;

const TOKEN: &str = "check-single-use-8e21";

/// Sends a refusal check for `token` with the extra header lines `extra`.
fn check(proxy: &Proxy, token: &str, extra: &str) -> Response {
    let request = format!(
        "POST /websockify?token={token} HTTP/1.1\r\nHost: {}\r\nConsolegate-Check: 1\r\n\
         Content-Length: 0\r\n{extra}\r\n",
        proxy.addr()
    );
    exchange(proxy.addr(), request.as_bytes())
}

fn assert_answer(response: &Response, status: u16, reason: &str) {
    assert_eq!(
        (response.status, response.body.as_str()),
        (status, format!("consolegate: {reason}\n").as_str()),
        "{response:?}"
    );
}

#[test]
fn a_check_answers_as_the_upgrade_would_and_never_uses_up_a_single_use_token() {
    let qemu = Qemu::start(Mode::VncNone);
    let config = Config::new().set("allowed_origins", "https://console.example");
    let path = config.dir().join("tokens.json");
    let console = format!(
        r#"{{"{TOKEN}": {{"type": "vnc", "address": "{}", "single_use": true}}}}"#,
        qemu.addr()
    );
    fs::write(&path, console).expect("write the token file");
    let proxy = Proxy::start(config.set("token_source", &format!("json:{}", path.display())));

    let passed = "the checks that need no console pass";
    assert_answer(&check(&proxy, TOKEN, ""), 200, passed);
    assert_answer(
        &check(&proxy, TOKEN, "Origin: https://console.example\r\n"),
        200,
        passed,
    );
    assert_answer(
        &check(&proxy, TOKEN, "Origin: https://elsewhere.example\r\n"),
        403,
        "origin not allowed",
    );
    assert_answer(
        &check(&proxy, "no-such-token", ""),
        404,
        "unknown or expired token",
    );
    assert_answer(&check(&proxy, "bad!token", ""), 400, "malformed token");

    // None of these used the token up: it still opens the console, once.
    let mut client = ws::open(&proxy.url(TOKEN));
    let init = rfb::handshake(&mut client, Version::V3_8).expect("ServerInit through the proxy");
    assert_eq!((init.width, init.height), (720, 400));
    client.close();
    assert_answer(&check(&proxy, TOKEN, ""), 404, "unknown or expired token");
}
