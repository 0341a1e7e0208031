//! How a request names its console: the `token` query parameter on any path, else the `token`
//! cookie; and the refusals when it does not.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use consolegate_tests::setup::{assert_qemu_console, VncSetup, TOKEN};
use consolegate_tests::ws::{self, Client, Refusal};

fn refused(status: u16, reason: &str) -> Refusal {
    Refusal {
        status,
        body: format!("consolegate: {reason}\n"),
    }
}

#[test]
fn unknown_token_gets_404() {
    let setup = VncSetup::start();
    let refusal = ws::refusal(&setup.proxy.url("no-such-token"));
    assert_eq!(refusal, refused(404, "unknown or expired token"));
}

#[test]
fn request_without_token_gets_400() {
    let setup = VncSetup::start();
    let refusal = ws::refusal(&setup.proxy.url_path("/websockify"));
    assert_eq!(
        refusal,
        refused(
            400,
            "no token in the request (query parameter or cookie 'token')"
        )
    );
}

#[test]
fn token_in_cookie_works() {
    let setup = VncSetup::start();
    let client = Client::default().cookie(&format!("lang=en; token={TOKEN}; other=1"));
    let mut ws = client.open(&setup.proxy.url_path("/websockify"));
    assert_qemu_console(&mut ws);
}

#[test]
fn unknown_token_in_cookie_gets_404() {
    let setup = VncSetup::start();
    let client = Client::default().cookie("token=not-a-token");
    let refusal = client.refusal(&setup.proxy.url_path("/websockify"));
    assert_eq!(refusal, refused(404, "unknown or expired token"));
}

#[test]
fn query_token_is_used_before_the_cookie() {
    let setup = VncSetup::start();
    let client = Client::default().cookie("token=not-a-token");
    let mut ws = client.open(&setup.url());
    assert_qemu_console(&mut ws);
}

#[test]
fn plain_get_without_web_dir_gets_400() {
    let setup = VncSetup::start();
    let mut tcp = TcpStream::connect(setup.proxy.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "GET /websockify?token={TOKEN} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        setup.proxy.addr()
    );
    tcp.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    let status_line = answer.lines().next().unwrap_or_default();
    assert!(
        status_line.starts_with("HTTP/1.1 400"),
        "status line: {answer:?}"
    );
    assert!(
        answer.ends_with("\r\n\r\nconsolegate: expected a websocket upgrade\n"),
        "answer: {answer:?}"
    );
}
