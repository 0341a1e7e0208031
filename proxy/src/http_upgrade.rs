//! The browser's HTTP request: read its head (bounded in size and time), parse it with
//! `httparse`, check the websocket upgrade and the `Origin`, find the token, and answer:
//! `101 Switching Protocols`, or a refusal with a precise status and a one-line body.
//!
//! The upgrade is checked in full ([`check_upgrade`]) before the token is looked up, so a request
//! that would not get `101` never consumes a single-use token.

use std::io::{self, Read, Write};

use base64::Engine as _;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};

/// The most bytes a request head may take.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// The most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head plus the bytes that followed it.
#[derive(Debug)]
pub struct UpgradeRequest {
    /// The request as the `http` crate models it.
    pub request: http::Request<()>,
    /// Bytes read after the head (early websocket frames).
    pub leftover: Vec<u8>,
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The client closed or the socket failed before a full head arrived.
    #[error("client connection failed before the request arrived: {0}")]
    Io(#[from] io::Error),
    /// Not HTTP, or a header is malformed.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The head is larger than [`MAX_REQUEST_HEAD`], or has more than [`MAX_HEADERS`] headers.
    #[error("request head larger than {MAX_REQUEST_HEAD} bytes or {MAX_HEADERS} headers")]
    TooLarge,
}

/// Why a websocket upgrade request cannot be answered with `101`. Each says what the client
/// must send instead; the reason goes to the browser as is (it holds nothing but the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadUpgrade {
    /// Not `GET`.
    Method,
    /// Older than HTTP/1.1.
    HttpVersion,
    /// `Upgrade` does not name `websocket`.
    Upgrade,
    /// `Connection` does not list `Upgrade`.
    Connection,
    /// `Sec-WebSocket-Version` is missing or not 13.
    WebsocketVersion,
    /// `Sec-WebSocket-Key` is missing or not 16 bytes in base64.
    Key,
    /// `Sec-WebSocket-Protocol` is present but does not offer `binary`.
    Subprotocol,
}

impl BadUpgrade {
    /// The reason sent to the browser with `400`.
    pub fn reason(self) -> &'static str {
        match self {
            BadUpgrade::Method => "a websocket upgrade must use GET",
            BadUpgrade::HttpVersion => "a websocket upgrade needs HTTP/1.1",
            BadUpgrade::Upgrade => "the Upgrade header must name websocket",
            BadUpgrade::Connection => "the Connection header must include Upgrade",
            BadUpgrade::WebsocketVersion => {
                "unsupported websocket version (send Sec-WebSocket-Version: 13)"
            }
            BadUpgrade::Key => "missing or malformed Sec-WebSocket-Key",
            BadUpgrade::Subprotocol => "unsupported websocket subprotocol (offer 'binary' or none)",
        }
    }
}

impl std::fmt::Display for BadUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for BadUpgrade {}

/// The `101 Switching Protocols` head for a request that [`check_upgrade`] accepted.
#[derive(Debug)]
pub struct UpgradeResponse {
    head: String,
}

/// Reads and parses one request head from `stream` (blocking; the caller sets timeouts).
pub fn read_request(stream: &mut impl Read) -> Result<UpgradeRequest, RequestError> {
    read_request_after(stream, Vec::new())
}

/// Reads and parses one request head whose first bytes, `buffered`, were already read (the
/// next request on a kept-alive connection: what followed the previous head, or the bytes that
/// ended its idle wait); reads from `stream` only while the head is incomplete.
pub fn read_request_after(
    stream: &mut impl Read,
    buffered: Vec<u8>,
) -> Result<UpgradeRequest, RequestError> {
    let mut buf = buffered;
    buf.reserve(1024);
    let mut chunk = [0u8; 2048];
    let mut fresh = buf.is_empty();
    loop {
        if fresh {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(RequestError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        fresh = true;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let request = to_http(&parsed)?;
                return Ok(UpgradeRequest {
                    request,
                    leftover: buf[len..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(RequestError::TooLarge),
            Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge),
            Err(e) => return Err(RequestError::Malformed(e.to_string())),
        }
    }
}

fn to_http(parsed: &httparse::Request<'_, '_>) -> Result<http::Request<()>, RequestError> {
    let malformed = |e: &dyn std::fmt::Display| RequestError::Malformed(e.to_string());
    let mut builder = http::Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(if parsed.version == Some(0) {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        });
    for h in parsed.headers.iter() {
        let value = HeaderValue::from_bytes(h.value).map_err(|e| malformed(&e))?;
        builder = builder.header(h.name, value);
    }
    builder.body(()).map_err(|e| malformed(&e))
}

/// Whether the request asks for a websocket.
pub fn is_websocket(request: &http::Request<()>) -> bool {
    header_has_token(request, header::UPGRADE, "websocket")
}

fn header_has_token(request: &http::Request<()>, name: header::HeaderName, token: &str) -> bool {
    request.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// The token: the query parameter `token`, else the cookie `token`.
pub fn token(request: &http::Request<()>) -> Option<String> {
    if let Some(query) = request.uri().query() {
        if let Some((_, v)) =
            url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token")
        {
            if !v.is_empty() {
                return Some(v.into_owned());
            }
        }
    }
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == "token" && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// Checks the `Origin` header against `allowed` (normalised `scheme://host[:port]`), or when
/// `allowed` is empty, against the `Host` the browser connected to. A request without `Origin`
/// (not from a browser) passes.
pub fn origin_allowed(request: &http::Request<()>, allowed: &[String]) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a == "*" || *a == origin);
    }
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let Some((_, origin_host)) = origin.split_once("://") else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    let strip_default = |h: &str| -> String {
        h.strip_suffix(":80")
            .or_else(|| h.strip_suffix(":443"))
            .unwrap_or(h)
            .to_string()
    };
    origin_host == host || strip_default(origin_host) == strip_default(&host)
}

/// Checks everything about a websocket upgrade request (method, HTTP version, `Upgrade`,
/// `Connection`,
/// `Sec-WebSocket-Version`, `Sec-WebSocket-Key`, subprotocol) and prepares the `101` answer,
/// with the `binary` subprotocol when offered. Called before the token lookup.
pub fn check_upgrade(request: &http::Request<()>) -> Result<UpgradeResponse, BadUpgrade> {
    if request.method() != Method::GET {
        return Err(BadUpgrade::Method);
    }
    if request.version() < http::Version::HTTP_11 {
        return Err(BadUpgrade::HttpVersion);
    }
    if !is_websocket(request) {
        return Err(BadUpgrade::Upgrade);
    }
    if !header_has_token(request, header::CONNECTION, "upgrade") {
        return Err(BadUpgrade::Connection);
    }
    let headers = request.headers();
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(BadUpgrade::WebsocketVersion);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k.as_bytes())
                .is_ok_and(|nonce| nonce.len() == 16)
        })
        .ok_or(BadUpgrade::Key)?;
    let offers_protocols = headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL);
    let binary = header_has_token(request, header::SEC_WEBSOCKET_PROTOCOL, "binary");
    if offers_protocols && !binary {
        return Err(BadUpgrade::Subprotocol);
    }
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    );
    if binary {
        head.push_str("Sec-WebSocket-Protocol: binary\r\n");
    }
    head.push_str("\r\n");
    Ok(UpgradeResponse { head })
}

/// Writes `101 Switching Protocols`.
pub fn write_upgrade(stream: &mut impl Write, response: &UpgradeResponse) -> io::Result<()> {
    stream.write_all(response.head.as_bytes())?;
    stream.flush()
}

/// The policy text, for [`CONTENT_SECURITY_POLICY`] and [`SECURITY_HEADERS`] alike.
macro_rules! content_security_policy {
    () => {
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'self'; \
         base-uri 'none'; form-action 'none'; object-src 'none'"
    };
}

/// The `Content-Security-Policy` of every response but `101`, the console pages' included:
/// scripts only from the proxy's own origin and never inline (text from a VNC server or a URL
/// cannot become script, CVE-2017-18635), websockets only back to it, no plugins, no `<base>`,
/// no form posts, no framing by other origins (clickjacking). Styles alone may be inline
/// (`'unsafe-inline'` in `style-src`): xterm.js inserts `<style>` elements for its themes and
/// would not render without them (docs/SECURITY.md).
pub const CONTENT_SECURITY_POLICY: &str = content_security_policy!();

/// Headers on every response but `101`, whatever its caching: no sniffing, the
/// [`CONTENT_SECURITY_POLICY`], no framing by other origins for browsers that predate CSP, no
/// token-carrying URL in a `Referer`.
pub const SECURITY_HEADERS: &str = concat!(
    "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: ",
    content_security_policy!(),
    "\r\nX-Frame-Options: SAMEORIGIN\r\nReferrer-Policy: no-referrer\r\n"
);

/// `Strict-Transport-Security`, sent on the TLS listener only: one year.
const HSTS_HEADER: &str = "Strict-Transport-Security: max-age=31536000\r\n";

/// How a response is framed: whether it goes over TLS (then it carries HSTS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ws://`/`http://`.
    Plain,
    /// `wss://`/`https://`.
    Tls,
}

impl Transport {
    /// The headers this transport adds to every response but `101`: HSTS over TLS.
    pub fn headers(self) -> &'static str {
        match self {
            Transport::Plain => "",
            Transport::Tls => HSTS_HEADER,
        }
    }
}

/// The head of a complete response with a body of `length` bytes and `Connection: close`.
pub fn response_head(
    status: StatusCode,
    content_type: &str,
    length: u64,
    transport: Transport,
) -> String {
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Cache-Control: no-store\r\n{SECURITY_HEADERS}{}Connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        transport.headers(),
    )
}

/// Writes a refusal: `status` with the body `consolegate: REASON\n`.
pub fn write_refusal(
    stream: &mut impl Write,
    status: StatusCode,
    reason: &str,
    transport: Transport,
) -> io::Result<()> {
    let body = format!("consolegate: {reason}\n");
    let head = response_head(
        status,
        "text/plain; charset=utf-8",
        body.len() as u64,
        transport,
    );
    stream.write_all(format!("{head}{body}").as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> UpgradeRequest {
        read_request(&mut text.as_bytes()).unwrap()
    }

    #[test]
    fn token_from_query_then_cookie() {
        let r =
            parse("GET /websockify?token=a%2Fb&x=1 HTTP/1.1\r\nHost: h\r\nCookie: token=c\r\n\r\n");
        assert_eq!(token(&r.request).as_deref(), Some("a/b"));
        let r = parse("GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; token=c2; b=2\r\n\r\n");
        assert_eq!(token(&r.request).as_deref(), Some("c2"));
        let r = parse("GET /?token= HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(token(&r.request), None);
    }

    #[test]
    fn origin_must_match_host_or_list() {
        let r = parse("GET / HTTP/1.1\r\nHost: proxy:6080\r\nOrigin: https://proxy:6080\r\n\r\n");
        assert!(origin_allowed(&r.request, &[]));
        let r = parse("GET / HTTP/1.1\r\nHost: proxy:6080\r\nOrigin: https://evil:6080\r\n\r\n");
        assert!(!origin_allowed(&r.request, &[]));
        assert!(origin_allowed(&r.request, &["https://evil:6080".into()]));
        let r = parse("GET / HTTP/1.1\r\nHost: proxy\r\nOrigin: null\r\n\r\n");
        assert!(!origin_allowed(&r.request, &[]));
        let r = parse("GET / HTTP/1.1\r\nHost: proxy\r\n\r\n");
        assert!(origin_allowed(&r.request, &[]));
    }

    const GOOD_UPGRADE: &str =
        "GET /?token=t HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\
        Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    fn upgrade(extra: &str) -> Result<String, BadUpgrade> {
        let r = parse(&format!("{GOOD_UPGRADE}{extra}\r\n"));
        check_upgrade(&r.request).map(|u| u.head)
    }

    #[test]
    fn a_good_upgrade_gets_the_rfc_6455_accept_key() {
        let head = upgrade("").unwrap();
        // RFC 6455 section 1.3's example.
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!head.contains("Sec-WebSocket-Protocol"));
        let head = upgrade("Sec-WebSocket-Protocol: base64, binary\r\n").unwrap();
        assert!(
            head.contains("Sec-WebSocket-Protocol: binary\r\n"),
            "{head}"
        );
    }

    #[test]
    fn every_bad_upgrade_is_named() {
        let swap = |from: &str, to: &str| {
            let r = parse(&format!("{}\r\n", GOOD_UPGRADE.replace(from, to)));
            check_upgrade(&r.request).unwrap_err()
        };
        assert_eq!(swap("GET", "POST"), BadUpgrade::Method);
        assert_eq!(swap("HTTP/1.1", "HTTP/1.0"), BadUpgrade::HttpVersion);
        // Found by fuzz/ (http_request_head): a misspelt Upgrade header.
        assert_eq!(
            swap("Upgrade: websocket", "Apgrade: websocket"),
            BadUpgrade::Upgrade
        );
        assert_eq!(
            swap("keep-alive, Upgrade", "keep-alive"),
            BadUpgrade::Connection
        );
        assert_eq!(
            swap("Version: 13", "Version: 8"),
            BadUpgrade::WebsocketVersion
        );
        assert_eq!(
            swap("Sec-WebSocket-Version: 13\r\n", ""),
            BadUpgrade::WebsocketVersion
        );
        assert_eq!(
            swap("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
            BadUpgrade::Key
        );
        assert_eq!(
            swap("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
            BadUpgrade::Key
        );
        assert_eq!(
            upgrade("Sec-WebSocket-Protocol: base64\r\n").unwrap_err(),
            BadUpgrade::Subprotocol
        );
    }

    #[test]
    fn leftover_bytes_are_kept() {
        let r = read_request(&mut &b"GET / HTTP/1.1\r\nHost: h\r\n\r\n\x82\x00"[..]).unwrap();
        assert_eq!(r.leftover, b"\x82\x00");
    }

    #[test]
    fn bad_heads_are_refused() {
        let e = read_request(&mut &b"NOT HTTP\r\n\r\n"[..]).unwrap_err();
        assert!(matches!(e, RequestError::Malformed(_)), "{e}");
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_REQUEST_HEAD));
        let e = read_request(&mut big.as_bytes()).unwrap_err();
        assert!(matches!(e, RequestError::TooLarge), "{e}");
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        let e = read_request(&mut many.as_bytes()).unwrap_err();
        assert!(matches!(e, RequestError::TooLarge), "{e}");
    }
}
