//! The `web` directory: plain GET and HEAD requests get its files (so noVNC can come from the
//! proxy's own origin); paths that leave it are refused, hidden files are never served, and
//! every answer carries the headers that keep a console page from being framed or leaking its
//! token-carrying URL; without `web`, plain GETs get 400.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use consolegate_tests::http::{exchange, exchange_tls, get, Response};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::scratch::TempDir;

/// Sends one raw HTTP request and returns the whole response as text.
fn http(proxy: &Proxy, request: &str) -> String {
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The headers every answer but `101` carries, with their exact values.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "frame-ancestors 'self'; object-src 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "SAMEORIGIN"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
];

fn assert_security_headers(r: &Response, tls: bool) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(r.header(name), Some(*value), "{name} in {r:?}");
    }
    let hsts = r.header("strict-transport-security");
    if tls {
        assert_eq!(hsts, Some("max-age=31536000"), "{r:?}");
    } else {
        assert_eq!(hsts, None, "HSTS only over TLS: {r:?}");
    }
}

fn web_proxy() -> (Proxy, TempDir) {
    let web = TempDir::new("web");
    std::fs::create_dir_all(web.join("app")).unwrap();
    web.write("index.html", "<h1>consoles</h1>");
    web.write("app/ui.js", "export const x = 1;");
    let proxy = Proxy::start(Config::new().set("web", &web.path().display().to_string()));
    (proxy, web)
}

#[test]
fn files_under_web_are_served_with_their_type() {
    let (proxy, _web) = web_proxy();
    let r = http(&proxy, "GET /app/ui.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("Content-Type: text/javascript"), "{r}");
    assert!(r.ends_with("\r\n\r\nexport const x = 1;"), "{r}");
    let r = http(&proxy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("<h1>consoles</h1>"),
        "{r}"
    );
}

#[test]
fn head_gets_the_headers_without_the_body() {
    let (proxy, _web) = web_proxy();
    let r = http(&proxy, "HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("Content-Length: 17\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
}

#[test]
fn paths_leaving_web_are_refused_and_missing_files_are_404() {
    let (proxy, _web) = web_proxy();
    for path in ["/../../etc/passwd", "/app/%2e%2e/%2e%2e/etc/passwd"] {
        let r = http(&proxy, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{path}: {r}");
        assert!(!r.contains("root:"), "{path} leaked a file: {r}");
    }
    let r = http(&proxy, "GET /nope.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    let r = http(
        &proxy,
        "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
}

#[test]
fn a_bare_tcp_connection_and_a_static_file_leave_no_audit_line() {
    // Issue 14: asset requests produce no audit line (a debug line instead), and neither does a
    // connection that sent no request.
    let web = TempDir::new("web");
    web.write("index.html", "<h1>consoles</h1>");
    let proxy = Proxy::start(
        Config::new()
            .set("web", &web.path().display().to_string())
            .rust_log("debug"),
    );
    drop(TcpStream::connect(proxy.addr()).unwrap());
    let r = http(&proxy, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    for line in [
        "static file request from 127.0.0.1:",
        "connection closed before a request from 127.0.0.1:",
    ] {
        let seen = proxy.wait_for_log(line, Duration::from_secs(5));
        assert!(seen.is_some(), "no {line:?}:\n{}", proxy.log());
    }
    assert!(
        !proxy.log().contains("audit "),
        "no audit line:\n{}",
        proxy.log()
    );
}

#[test]
fn every_answer_carries_the_security_headers() {
    let (proxy, _web) = web_proxy();
    for target in [
        "/index.html",
        "/nope.js",
        "/../x",
        "/websockify?token=unknown-one",
    ] {
        assert_security_headers(&get(proxy.addr(), target), false);
    }
    let r = exchange(
        proxy.addr(),
        b"GET /websockify?token=unknown-one HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert_security_headers(&r, false);
}

#[test]
fn hsts_is_sent_over_tls() {
    let web = TempDir::new("web-tls");
    web.write("index.html", "<h1>consoles</h1>");
    let proxy = Proxy::start(
        Config::new()
            .tls()
            .set("web", &web.path().display().to_string()),
    );
    let r = exchange_tls(proxy.addr(), b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{r:?}");
    assert_security_headers(&r, true);
}

#[test]
fn hidden_files_are_never_served() {
    let (proxy, web) = web_proxy();
    std::fs::create_dir_all(web.join(".git")).unwrap();
    web.write(".git/config", "[core]");
    web.write(".env", "SECRET=hunter2");
    web.write("app/.htpasswd", "admin:x");
    for target in [
        "/.env",
        "/.git/config",
        "/%2Egit/config",
        "/app/.htpasswd",
        "/.git/",
    ] {
        let r = get(proxy.addr(), target);
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "consolegate: not found\n"),
            "{target}"
        );
    }
}
