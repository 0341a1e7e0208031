//! The `web` directory: plain GET and HEAD requests get its files (so the console pages come
//! from the proxy's own origin), with the right type, validators and caching; paths that leave
//! it are refused, hidden files are never served, and every answer carries the headers that keep
//! a console page from running injected script, being framed or leaking its token-carrying URL;
//! without `web`, plain GETs get 400.
//!
//! Connections answered from `web` are kept alive: many requests on one TCP connection, then a
//! websocket upgrade on that same connection; an idle one closes after `keepalive_timeout`, a
//! drip-fed next request at `handshake_timeout`, and shutdown does not wait for idle ones.
//! Asset requests are not console sessions: no audit line. A real Chromium's cold load of a page
//! with 40 module files is measured with keep-alive off (every answer closes) and on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::browser::Chromium;
use consolegate_tests::http::{
    self, exchange, exchange_tls, get, read_one_response, read_response, Response,
};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::scratch::TempDir;
use consolegate_tests::wait;

/// The `Content-Security-Policy` of every answer but `101`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'self'; \
                   base-uri 'none'; form-action 'none'; object-src 'none'";
/// `Cache-Control` of pages and unversioned files.
const REVALIDATE: &str = "no-cache";
/// `Cache-Control` of files under `/lib/<name>-<version>/`.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

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
    ("content-security-policy", CSP),
    ("x-frame-options", "SAMEORIGIN"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
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

/// Every kind of file a console page loads, with the type it must be served as.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "<h1>consoles</h1>",
        "text/html; charset=utf-8",
    ),
    ("vnc.html", "<p>vnc</p>", "text/html; charset=utf-8"),
    (
        "app/ui.js",
        "export const x = 1;",
        "text/javascript; charset=utf-8",
    ),
    (
        "app/mod.mjs",
        "export default 2;",
        "text/javascript; charset=utf-8",
    ),
    ("app/ui.css", "p{}", "text/css; charset=utf-8"),
    ("app/ui.js.map", "{\"version\":3}", "application/json"),
    ("app/pages.json", "{}", "application/json"),
    ("app/decoder.wasm", "\0asm", "application/wasm"),
    ("app/icon.svg", "<svg/>", "image/svg+xml"),
    ("app/mono.woff2", "wOF2", "font/woff2"),
    ("app/mono.woff", "wOFF", "font/woff"),
    ("app/mono.ttf", "ttf", "font/ttf"),
    ("app/LICENSE", "MPL", "application/octet-stream"),
    (
        "lib/novnc-1.7.0/core/rfb.js",
        "export class RFB {}",
        "text/javascript; charset=utf-8",
    ),
    (
        "lib/novnc/core/rfb.js",
        "export class RFB {}",
        "text/javascript; charset=utf-8",
    ),
];

/// A `web` directory with [`FILES`], and a proxy serving it (`customize`d).
fn web_proxy_with(customize: impl FnOnce(Config) -> Config) -> (Proxy, TempDir) {
    let web = TempDir::new("web");
    for (path, contents, _) in FILES {
        if let Some((dir, _)) = path.rsplit_once('/') {
            std::fs::create_dir_all(web.join(dir)).unwrap();
        }
        web.write(path, contents);
    }
    let config = Config::new().set("web", &web.path().display().to_string());
    (Proxy::start(customize(config)), web)
}

fn web_proxy() -> (Proxy, TempDir) {
    web_proxy_with(|c| c)
}

/// `GET target` with `extra` header lines, on a connection that closes after the answer.
fn get_with(proxy: &Proxy, target: &str, extra: &str) -> Response {
    exchange(
        proxy.addr(),
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n").as_bytes(),
    )
}

/// Sends `GET target` on a kept-alive connection and reads its answer.
fn get_on(tcp: &mut TcpStream, target: &str) -> Response {
    tcp.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    read_one_response(tcp, false)
}

/// A connection with read and write timeouts.
fn connect(proxy: &Proxy) -> TcpStream {
    let tcp = TcpStream::connect(proxy.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    tcp
}

/// Waits until the proxy closes `tcp` (a read returns 0 or fails); how long that took, or
/// `None` if it was still open after `limit`.
fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    tcp.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Ok(0) => Some(t0.elapsed()),
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(_) => Some(t0.elapsed()),
    }
}

fn audit_lines(proxy: &Proxy) -> usize {
    proxy
        .log()
        .lines()
        .filter(|l| l.contains("audit session="))
        .count()
}

#[test]
fn each_kind_of_file_gets_its_content_type() {
    let (proxy, _web) = web_proxy();
    for (path, contents, content_type) in FILES {
        let r = get(proxy.addr(), &format!("/{path}"));
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, *contents),
            "{path}: {r:?}"
        );
        assert_eq!(r.header("content-type"), Some(*content_type), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    let r = get(proxy.addr(), "/");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "<h1>consoles</h1>"),
        "{r:?}"
    );
}

#[test]
fn head_gets_the_headers_without_the_body() {
    let (proxy, _web) = web_proxy();
    let r = http(
        &proxy,
        "HEAD /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("Content-Length: 17\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
}

#[test]
fn either_validator_gets_304_and_a_changed_file_200() {
    let (proxy, web) = web_proxy();
    let first = get(proxy.addr(), "/app/ui.js");
    let etag = first.header("etag").expect("an ETag").to_string();
    let modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong tag: {etag}"
    );
    assert!(httpdate_like(&modified), "{modified}");

    for extra in [
        format!("If-None-Match: {etag}\r\n"),
        format!("If-None-Match: \"other\", W/{etag}\r\n"),
        format!("If-Modified-Since: {modified}\r\n"),
    ] {
        let r = get_with(&proxy, "/app/ui.js", &extra);
        assert_eq!((r.status, r.body.as_str()), (304, ""), "{extra}: {r:?}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{extra}");
        assert_eq!(r.header("cache-control"), Some(REVALIDATE), "{extra}");
        assert_eq!(r.header("content-length"), None, "{extra}");
        assert_security_headers(&r, false);
    }
    // If-None-Match decides when present; an older date or a bad one gets the file.
    for extra in [
        format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n".to_string(),
        "If-Modified-Since: yesterday\r\n".to_string(),
    ] {
        let r = get_with(&proxy, "/app/ui.js", &extra);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "export const x = 1;"),
            "{extra}"
        );
    }
    // A new release of the file: the old tag no longer matches.
    std::thread::sleep(Duration::from_millis(20));
    web.write("app/ui.js", "export const x = 22;");
    let r = get_with(&proxy, "/app/ui.js", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "export const x = 22;"),
        "{r:?}"
    );
    assert_ne!(r.header("etag"), Some(etag.as_str()));
}

/// Whether `date` looks like an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate_like(date: &str) -> bool {
    date.len() == 29 && date.ends_with(" GMT") && date.as_bytes()[3] == b','
}

#[test]
fn only_files_under_lib_name_version_are_cached_as_immutable() {
    let (proxy, _web) = web_proxy();
    let r = get(proxy.addr(), "/lib/novnc-1.7.0/core/rfb.js");
    assert_eq!(
        (r.status, r.header("cache-control")),
        (200, Some(IMMUTABLE)),
        "{r:?}"
    );
    for target in [
        "/lib/novnc/core/rfb.js",
        "/vnc.html?token=t",
        "/app/ui.js",
        "/",
    ] {
        let r = get(proxy.addr(), target);
        assert_eq!(
            (r.status, r.header("cache-control")),
            (200, Some(REVALIDATE)),
            "{target}"
        );
    }
    // Refusals are never stored, versioned directory or not.
    let r = get(proxy.addr(), "/lib/novnc-1.7.0/core/missing.js");
    assert_eq!(
        (r.status, r.header("cache-control")),
        (404, Some("no-store")),
        "{r:?}"
    );
}

#[test]
fn paths_leaving_web_are_refused_and_missing_files_are_404() {
    let (proxy, _web) = web_proxy();
    for path in ["/../../etc/passwd", "/app/%2e%2e/%2e%2e/etc/passwd"] {
        let r = http(
            &proxy,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{path}: {r}");
        assert!(!r.contains("root:"), "{path} leaked a file: {r}");
    }
    let r = get(proxy.addr(), "/nope.js");
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "consolegate: not found\n")
    );
    let r = http(
        &proxy,
        "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
}

#[test]
fn every_answer_carries_the_strict_csp_and_the_security_headers() {
    let (proxy, _web) = web_proxy();
    for (target, status, cache) in [
        ("/index.html", 200, REVALIDATE),
        ("/vnc.html?token=t", 200, REVALIDATE),
        ("/lib/novnc-1.7.0/core/rfb.js", 200, IMMUTABLE),
        ("/nope.js", 404, "no-store"),
        ("/../x", 403, "no-store"),
        // Not an upgrade: a file, here a missing one.
        ("/websockify?token=unknown-one", 404, "no-store"),
    ] {
        let r = get(proxy.addr(), target);
        assert_eq!(r.status, status, "{target}: {r:?}");
        assert_security_headers(&r, false);
        assert_eq!(r.header("cache-control"), Some(cache), "{target}");
    }
    let r = exchange(
        proxy.addr(),
        b"GET /websockify?token=unknown-one HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert_security_headers(&r, false);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn hsts_is_sent_over_tls() {
    let (proxy, _web) = web_proxy_with(Config::tls);
    let r = exchange_tls(
        proxy.addr(),
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
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

/// The token of the echo console in the upgrade tests.
const ECHO_TOKEN: &str = "keepalive-echo-7f3a";

/// Sends 22 requests (GET, a 404, HEAD, a 304) on `stream`, one connection, then upgrades that
/// same connection to a websocket and checks that the echo console answers through it, that
/// the console session is the proxy's first connection and the only audit line.
fn serve_then_upgrade<S: Read + Write>(mut stream: S, proxy: &Proxy, echo: &Backend) {
    let targets = [
        "/vnc.html",
        "/app/ui.js",
        "/lib/novnc-1.7.0/core/rfb.js",
        "/nope.js",
    ];
    for round in 0..5 {
        for target in targets {
            stream
                .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .unwrap();
            let r = read_one_response(&mut stream, false);
            let expected = if target == "/nope.js" { 404 } else { 200 };
            assert_eq!(r.status, expected, "round {round}, {target}: {r:?}");
            assert_eq!(r.header("connection"), None, "kept alive: {r:?}");
        }
    }
    // A HEAD and a 304 keep the connection in step too.
    stream
        .write_all(b"HEAD /app/ui.js HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_one_response(&mut stream, true);
    assert_eq!(head.status, 200, "{head:?}");
    let etag = head.header("etag").unwrap().to_string();
    stream
        .write_all(
            format!("GET /app/ui.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(read_one_response(&mut stream, false).status, 304);

    // The same connection now asks for a websocket and gets its console.
    let url = proxy.url(ECHO_TOKEN);
    let (mut ws, response) =
        tungstenite::client(url.as_str(), stream).expect("upgrade after 22 requests");
    assert_eq!(response.status(), 101);
    let text = b"through the kept-alive connection";
    ws.send(tungstenite::Message::binary(text.to_vec()))
        .unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < text.len() {
        match ws.read().expect("the echo") {
            tungstenite::Message::Binary(b) => echoed.extend_from_slice(&b),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed, text);
    ws.close(None).unwrap();
    let log = proxy
        .wait_for_log("audit session=1 ", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the console session was not connection 1:\n{}", proxy.log()));
    assert_eq!(audit_lines(proxy), 1, "{log}");
    assert_eq!(echo.accepted(), 1);
}

#[test]
fn one_connection_serves_many_requests_then_becomes_a_console_session() {
    let echo = Backend::start(Behaviour::Echo);
    let (proxy, _web) = web_proxy_with(|c| c.token(ECHO_TOKEN, &echo.addr()));
    serve_then_upgrade(connect(&proxy), &proxy, &echo);
}

#[test]
fn one_tls_connection_serves_many_requests_then_becomes_a_console_session() {
    let echo = Backend::start(Behaviour::Echo);
    let (proxy, _web) = web_proxy_with(|c| c.tls().token(ECHO_TOKEN, &echo.addr()));
    let tls = consolegate_tests::ws::Client::default()
        .tls("127.0.0.1", connect(&proxy))
        .expect("TLS to the proxy");
    serve_then_upgrade(tls, &proxy, &echo);
}

#[test]
fn an_idle_kept_alive_connection_closes_after_keepalive_timeout() {
    let (proxy, _web) = web_proxy_with(|c| c.set("keepalive_timeout", "1"));
    let mut tcp = connect(&proxy);
    assert_eq!(get_on(&mut tcp, "/index.html").status, 200);
    let took = closed_within(&mut tcp, Duration::from_secs(5));
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(800) && t < Duration::from_millis(2500)),
        "an idle kept-alive connection closed after {took:?} (keepalive_timeout = 1)"
    );
    // Keep-alive off: every answer closes its connection, as before keep-alive.
    let (proxy, _web) = web_proxy_with(|c| c.set("keepalive_timeout", "0"));
    let mut tcp = connect(&proxy);
    let r = get_on(&mut tcp, "/index.html");
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(closed_within(&mut tcp, Duration::from_secs(1)).is_some());
}

#[test]
fn the_connection_closes_after_keepalive_requests_or_when_the_client_asks() {
    let (proxy, _web) = web_proxy_with(|c| c.set("keepalive_requests", "3"));
    let mut tcp = connect(&proxy);
    for n in 1..=3 {
        let r = get_on(&mut tcp, "/app/ui.js");
        let expected = (n == 3).then_some("close");
        assert_eq!(
            (r.status, r.header("connection")),
            (200, expected),
            "request {n}"
        );
    }
    assert!(closed_within(&mut tcp, Duration::from_secs(1)).is_some());
    for request in [
        "GET /app/ui.js HTTP/1.0\r\n\r\n",
        "GET /app/ui.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // A body the proxy never reads: the connection cannot be trusted to be in step.
        "GET /app/ui.js HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    ] {
        let mut tcp = connect(&proxy);
        tcp.write_all(request.as_bytes()).unwrap();
        let r = read_response(&mut tcp);
        assert_eq!(
            (r.status, r.header("connection")),
            (200, Some("close")),
            "{request:?}"
        );
    }
}

#[test]
fn a_drip_fed_next_request_is_cut_at_handshake_timeout() {
    let (proxy, _web) = web_proxy_with(|c| {
        c.set("handshake_timeout", "2")
            .set("keepalive_timeout", "10")
    });
    let mut tcp = connect(&proxy);
    assert_eq!(get_on(&mut tcp, "/index.html").status, 200);
    let head = "GET /app/ui.js HTTP/1.1\r\nHost: x\r\nX-Pad: drip-drip-drip\r\n\r\n";
    let took = http::drip(
        &mut tcp,
        head.as_bytes(),
        Duration::from_millis(200),
        Duration::from_secs(8),
    );
    assert!(
        took.is_some_and(|t| t < Duration::from_millis(3500)),
        "a drip-fed second request held its connection for {took:?} (handshake_timeout 2 s)"
    );
}

#[test]
fn asset_requests_leave_no_audit_line_and_log_at_debug_without_the_token() {
    let (proxy, _web) = web_proxy_with(|c| c.rust_log("debug"));
    drop(TcpStream::connect(proxy.addr()).unwrap());
    let mut tcp = connect(&proxy);
    for target in [
        "/vnc.html?token=secret-page-token-41d2",
        "/app/ui.js",
        "/nope.js",
    ] {
        get_on(&mut tcp, target);
    }
    drop(tcp);
    let ended = |l: &str| {
        l.contains("closed after 3 static requests") && l.contains("closed before a request")
    };
    let log = wait::until(Duration::from_secs(5), || {
        Some(proxy.log()).filter(|l| ended(l))
    })
    .unwrap_or_else(|| panic!("no debug line for each connection:\n{}", proxy.log()));
    for line in [
        "GET /vnc.html 200",
        "GET /app/ui.js 200",
        "GET /nope.js 404",
    ] {
        assert!(log.contains(line), "no {line:?} debug line:\n{log}");
    }
    assert_eq!(audit_lines(&proxy), 0, "assets are not sessions:\n{log}");
    assert!(
        !log.contains("secret-page-token-41d2"),
        "the page's token reached the log:\n{log}"
    );
}

#[test]
fn shutdown_does_not_wait_for_idle_kept_alive_connections() {
    let (mut proxy, _web) =
        web_proxy_with(|c| c.set("keepalive_timeout", "30").set("drain_timeout", "20"));
    let mut idle = connect(&proxy);
    assert_eq!(get_on(&mut idle, "/index.html").status, 200);
    let t0 = Instant::now();
    proxy.sigterm();
    let status = proxy.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?} after {:?}:\n{}",
        t0.elapsed(),
        proxy.log()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    assert!(closed_within(&mut idle, Duration::from_secs(1)).is_some());
}

#[test]
fn kept_alive_connections_count_against_the_per_client_limit() {
    let (proxy, _web) = web_proxy_with(|c| c.set("max_connections_per_client", "2"));
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(&proxy)).collect();
    for tcp in &mut held {
        assert_eq!(get_on(tcp, "/index.html").status, 200);
    }
    let r = get(proxy.addr(), "/index.html");
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "consolegate: too many connections\n")
    );
    drop(held);
    let served = wait::until(Duration::from_secs(5), || {
        Some(get(proxy.addr(), "/index.html")).filter(|r| r.status == 200)
    });
    assert!(served.is_some(), "{}", proxy.log());
}

/// Modules the measured page loads (one entry module importing the others).
const MODULES: usize = 40;

/// A page whose entry module (under a versioned library directory, as the console pages'
/// libraries are) imports `MODULES - 1` more, then writes `loaded N` into the page.
fn module_page(web: &TempDir) {
    let lib = web.join("lib/app-1.0.0");
    std::fs::create_dir_all(&lib).unwrap();
    let mut main = String::new();
    for i in 1..MODULES {
        web.write(
            &format!("lib/app-1.0.0/m{i}.js"),
            format!("export const v = {i};\n"),
        );
        main.push_str(&format!("import {{ v as v{i} }} from './m{i}.js';\n"));
    }
    let sum: Vec<String> = (1..MODULES).map(|i| format!("(v{i} > 0)")).collect();
    main.push_str(&format!(
        "document.getElementById('out').textContent = 'loaded ' + (1 + {});\n",
        sum.join(" + ")
    ));
    web.write("lib/app-1.0.0/main.js", main);
    web.write(
        "cold.html",
        "<!doctype html><meta charset=utf-8><title>cold</title>\
         <script type=module src=/lib/app-1.0.0/main.js></script><p id=out>waiting</p>",
    );
}

/// Loads `url` cold in a fresh headless Chromium (the harness's) and returns the text of the
/// page's `out` paragraph once its modules ran, or what it says after 60 s. Chromium has
/// exited, so its connections are closed, when this returns.
fn cold_load(url: &str) -> String {
    let mut chromium = Chromium::start();
    let mut page = chromium.open(url);
    let loaded = format!("loaded {MODULES}");
    page.wait_for(
        &format!("document.getElementById('out').textContent === {loaded:?}"),
        Duration::from_secs(60),
    );
    page.text("out")
}

/// The connections the proxy accepted, from its debug lines (`connection N ...`), once each
/// has logged its end.
fn connections_accepted(proxy: &Proxy) -> (usize, usize) {
    let count = || {
        let log = proxy.log();
        let ended = log
            .lines()
            .filter(|l| l.contains("closed after") || l.contains("closed before a request"))
            .count();
        let requests = log.lines().filter(|l| l.contains(": GET /")).count();
        (ended, requests)
    };
    // Chromium closed its connections when it exited: wait until the count holds still.
    let mut last = count();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_cold_load_of_a_page_with_40_modules_over_https_takes_a_few_connections() {
    let mut figures = Vec::new();
    for keepalive in ["0", "5"] {
        let web = TempDir::new("web-cold");
        module_page(&web);
        let proxy = Proxy::start(
            Config::new()
                .tls()
                .rust_log("debug")
                .set("keepalive_timeout", keepalive)
                .set("web", &web.path().display().to_string()),
        );
        let url = format!("https://127.0.0.1:{}/cold.html", proxy.addr().port());
        let out = cold_load(&url);
        assert_eq!(
            out,
            format!("loaded {MODULES}"),
            "the page did not load its {MODULES} modules (keepalive_timeout = {keepalive}):\n{}",
            proxy.log()
        );
        let (connections, requests) = connections_accepted(&proxy);
        eprintln!(
            "cold load of cold.html + {MODULES} modules over https, keepalive_timeout = \
             {keepalive}: {requests} requests on {connections} TCP+TLS connections"
        );
        figures.push((connections, requests));
    }
    let (before, after) = (figures[0], figures[1]);
    assert!(
        before.1 > MODULES && before.0 >= before.1,
        "keep-alive off: {before:?}"
    );
    assert!(after.1 > MODULES, "keep-alive on: {after:?}");
    assert!(
        after.0 <= 8,
        "with keep-alive a cold load still took {} connections for {} requests",
        after.0,
        after.1
    );
}
