//! Raw HTTP exchanges with the proxy over plain TCP, for requests a websocket client will not
//! send: oversized heads, odd paths, repeated parameters, bad upgrades, drip-fed heads, floods
//! from one client address. The answer is parsed with `httparse`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// How long one exchange may take in all (connect, write, read to the end).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The proxy's answer to one raw request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Everything after the head.
    pub body: String,
}

impl Response {
    /// The value of the first header field `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is to `addr` and reads the answer: up to the end of the head for `101`
/// (the websocket stays open) or after `HEAD`, else until its `Content-Length` bytes of body
/// arrived (the connection may be kept alive) or the proxy closes the connection (a reset after
/// the answer counts as the end: a server may reset a connection whose request it did not read
/// to the end). Panics if no complete HTTP answer arrives, with what did arrive.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let mut tcp = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    set_timeouts(&tcp);
    // The proxy may answer and close before it read everything: a failed write is not the
    // test's verdict, the answer is.
    let _ = tcp.write_all(request);
    read_answer(&mut tcp, request.starts_with(b"HEAD "))
}

/// [`exchange`] over TLS, trusting the test PKI's CA (the proxy's wss listener).
pub fn exchange_tls(addr: SocketAddr, request: &[u8]) -> Response {
    let tcp = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    set_timeouts(&tcp);
    let mut tls = crate::ws::Client::default()
        .tls(&addr.ip().to_string(), tcp)
        .unwrap_or_else(|e| panic!("TLS to {addr}: {e}"));
    let _ = tls.write_all(request);
    read_answer(&mut tls, request.starts_with(b"HEAD "))
}

fn set_timeouts(tcp: &TcpStream) {
    tcp.set_read_timeout(Some(EXCHANGE_TIMEOUT))
        .expect("set_read_timeout");
    tcp.set_write_timeout(Some(EXCHANGE_TIMEOUT))
        .expect("set_write_timeout");
}

/// Reads one answer to a request other than `HEAD` from `stream`, as [`exchange`] does (the
/// caller sets its timeouts).
pub fn read_response(stream: &mut impl Read) -> Response {
    read_answer(stream, false)
}

/// Reads one answer; after `HEAD` (`head_only`) it has no body, whatever its `Content-Length`.
fn read_answer(stream: &mut impl Read, head_only: bool) -> Response {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    while !complete(&raw, head_only) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "no complete HTTP answer; got {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Reads exactly one answer from a connection that may stay open (keep-alive): its head, then
/// `Content-Length` bytes of body (none after `HEAD` when `head_only`, or for 304). Bytes of a
/// later answer are never read. Panics if the answer is not complete, with what did arrive.
pub fn read_one_response(stream: &mut impl Read, head_only: bool) -> Response {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            Ok(_) => panic!(
                "the connection closed inside an answer's head: {:?}",
                String::from_utf8_lossy(&raw)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "{e} inside an answer's head: {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    let mut response = parse(&raw).expect("a complete head parses");
    let length: usize = response
        .header("content-length")
        .map_or(0, |v| v.parse().expect("a numeric Content-Length"));
    if !head_only && response.status != 304 {
        let mut body = vec![0u8; length];
        stream
            .read_exact(&mut body)
            .unwrap_or_else(|e| panic!("{e} reading a body of {length} bytes"));
        response.body = String::from_utf8_lossy(&body).into_owned();
    }
    response
}

/// Sends `bytes` one at a time, `gap` apart (cycling through them), until the proxy closes the
/// connection; returns how long after the first byte it closed, or `None` if it was still open
/// after `limit`. Panics if the proxy answers: it never got a whole request.
pub fn drip(tcp: &mut TcpStream, bytes: &[u8], gap: Duration, limit: Duration) -> Option<Duration> {
    let t0 = std::time::Instant::now();
    tcp.set_read_timeout(Some(gap)).expect("set_read_timeout");
    let mut buf = [0u8; 4096];
    for byte in bytes.iter().cycle() {
        if t0.elapsed() > limit {
            return None;
        }
        if tcp.write_all(&[*byte]).is_err() {
            return Some(t0.elapsed());
        }
        match tcp.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Ok(n) if n > 0 => panic!(
                "the proxy answered a request it never got whole: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            _ => return Some(t0.elapsed()),
        }
    }
    unreachable!("cycle() never ends")
}

/// Connects to `to` from the local address `source` (any of 127.0.0.0/8 is this host), so that
/// one test can be several clients.
pub fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {source} -> {to}: {e}"));
    socket.into()
}

/// [`exchange`] of `GET target HTTP/1.1` with a `Host` header and nothing else.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A websocket upgrade request head for `target` (a fixed key, subprotocol `binary`), with
/// `extra` header lines (each ending in `\r\n`) before the blank line.
pub fn upgrade_request(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n{extra}\r\n"
    )
}

/// Whether `raw` holds a whole answer: a `101` head, or a head and as much body as its
/// `Content-Length` says (none for `HEAD`, 204 and 304); without one, only the end of the
/// connection ends it.
fn complete(raw: &[u8], head_only: bool) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = response.parse(raw) else {
        return false;
    };
    if response.code == Some(101) || head_only || matches!(response.code, Some(204 | 304)) {
        return true;
    }
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    length.is_some_and(|length| raw.len() - head_len >= length)
}

fn parse(raw: &[u8]) -> Option<Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(raw).ok()? else {
        return None;
    };
    Some(Response {
        status: response.code?,
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&raw[len..]).into_owned(),
    })
}
