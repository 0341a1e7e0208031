//! The browser's HTTP request: read its head (bounded in size and time), parse it with
//! `httparse`, find the token, check the `Origin`, and answer: `101 Switching Protocols`, or a
//! refusal with a precise status and a one-line body.

use std::io::{self, Read, Write};

use http::header::{self, HeaderValue};

/// The most bytes a request head may take.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// The most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head plus the bytes that followed it.
#[derive(Debug)]
pub struct UpgradeRequest {
    /// The request as the `http` crate models it (for tungstenite's `create_response`).
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
    /// The head is larger than [`MAX_REQUEST_HEAD`].
    #[error("request head larger than {MAX_REQUEST_HEAD} bytes")]
    TooLarge,
}

/// Reads and parses one request head from `stream` (blocking; the caller sets timeouts).
pub fn read_request(stream: &mut impl Read) -> Result<UpgradeRequest, RequestError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(RequestError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
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

/// Whether the client offered the `binary` subprotocol.
pub fn offers_binary(request: &http::Request<()>) -> bool {
    header_has_token(request, header::SEC_WEBSOCKET_PROTOCOL, "binary")
}

/// Writes `101 Switching Protocols` for `request` (validating its websocket headers with
/// tungstenite), answering the `binary` subprotocol when offered.
pub fn write_upgrade(stream: &mut impl Write, request: &http::Request<()>) -> Result<(), String> {
    let mut response = tungstenite::handshake::server::create_response(request)
        .map_err(|e| format!("bad websocket handshake: {e}"))?;
    if offers_binary(request) {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("binary"),
        );
    }
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in response.headers() {
        head.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap_or("")));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.flush())
        .map_err(|e| e.to_string())
}

/// Writes a complete response with a body and `Connection: close`.
pub fn write_response(
    stream: &mut impl Write,
    status: http::StatusCode,
    content_type: &str,
    body: &[u8],
    include_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if include_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// Writes a refusal: `status` with the body `consolegate: REASON\n`.
pub fn write_refusal(
    stream: &mut impl Write,
    status: http::StatusCode,
    reason: &str,
) -> io::Result<()> {
    let body = format!("consolegate: {reason}\n");
    write_response(
        stream,
        status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        true,
    )
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
    }
}
