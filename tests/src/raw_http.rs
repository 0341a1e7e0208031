//! Raw HTTP/1.1 exchanges with the proxy, for what a websocket library never sends: a bad
//! upgrade, a drip-fed head, a flood from one client address. Responses are parsed with
//! `httparse`; the proxy closes after every refusal, so a response ends at EOF.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// A websocket upgrade request for `path_and_query` that the proxy answers with `101`: noVNC's
/// headers plus `extra` (whole header lines, each ending in `\r\n`).
pub fn upgrade_request(path_and_query: &str, extra: &str) -> String {
    format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n{extra}\r\n"
    )
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

/// A response head and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (up to EOF, or the head's end for `101`).
    pub body: String,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` on a new connection to `to` and reads the response.
pub fn exchange(to: SocketAddr, request: &str) -> Response {
    let mut tcp = TcpStream::connect(to).unwrap_or_else(|e| panic!("connect {to}: {e}"));
    tcp.write_all(request.as_bytes()).expect("send the request");
    read_response(&mut tcp)
}

/// Reads one response from `tcp`: up to the end of the head for `101`, else up to EOF (the
/// proxy closes after every other answer). Panics if none arrives within 10 s.
pub fn read_response(tcp: &mut TcpStream) -> Response {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set_read_timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(len)) = parsed.parse(&got) {
            let status = parsed.code.unwrap_or(0);
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_ascii_lowercase(), value)
                })
                .collect();
            if status != 101 {
                let _ = tcp.read_to_end(&mut got);
            }
            let body = String::from_utf8_lossy(&got[len..]).into_owned();
            return Response {
                status,
                headers,
                body,
            };
        }
        match tcp.read(&mut buf) {
            Ok(0) => panic!(
                "the connection closed before a response head: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no response: {e}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
}
