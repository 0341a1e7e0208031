//! A websocket client for the tests, on tungstenite: ws and wss (trusting the test CA), with
//! the headers a browser sets (`Origin`, `Cookie`, `Sec-WebSocket-Protocol: binary`). It
//! returns either the open socket or the HTTP refusal the proxy answered instead of the
//! upgrade. An open [`Ws`] is also a byte stream ([`Read`]/[`Write`]): every write is one
//! binary message, reads return the payload of binary messages in order.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::pki::pki;

/// The HTTP answer the proxy gave instead of upgrading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status code (400, 403, 404, 502, 503, 504, …).
    pub status: u16,
    /// The body, for example `consolegate: unknown or expired token\n`.
    pub body: String,
}

/// Why [`Client::connect`] did not return an open websocket.
#[derive(Debug)]
pub enum Failure {
    /// The proxy answered with an HTTP status instead of the upgrade.
    Refused(Refusal),
    /// TCP, TLS or websocket protocol failed.
    Transport(String),
}

/// Connection options; the default is noVNC's: subprotocol `binary`, no Origin, no cookie,
/// trusts the test PKI's CA for wss, 10 s read and write timeouts.
#[derive(Debug, Clone)]
pub struct Client {
    /// The `Origin` header.
    pub origin: Option<String>,
    /// The `Cookie` header.
    pub cookie: Option<String>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol` (none: the header is left out).
    pub protocols: Vec<String>,
    /// CA certificate (PEM) trusted for wss; `None`: the test PKI's CA.
    pub ca: Option<PathBuf>,
    /// Read and write timeout of the socket.
    pub timeout: Duration,
    /// The local address to connect from (any of 127.0.0.0/8), so one test can be several
    /// clients; `None`: the system's choice.
    pub source: Option<std::net::IpAddr>,
    /// More request header fields (`X-Forwarded-For`, …), in order.
    pub headers: Vec<(String, String)>,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            origin: None,
            cookie: None,
            protocols: vec!["binary".into()],
            ca: None,
            timeout: Duration::from_secs(10),
            source: None,
            headers: Vec::new(),
        }
    }
}

impl Client {
    /// With an `Origin` header.
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// With a `Cookie` header.
    pub fn cookie(mut self, cookie: &str) -> Self {
        self.cookie = Some(cookie.into());
        self
    }

    /// Offering these subprotocols (empty: none).
    pub fn protocols(mut self, protocols: &[&str]) -> Self {
        self.protocols = protocols.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Connects from the local address `source`.
    pub fn source(mut self, source: std::net::IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Adds the request header field `name: value`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Opens `url` (ws:// or wss://).
    pub fn connect(&self, url: &str) -> Result<Ws, Failure> {
        let transport = |e: &dyn std::fmt::Display| Failure::Transport(format!("{url}: {e}"));
        let mut request = url.into_client_request().map_err(|e| transport(&e))?;
        let headers = request.headers_mut();
        let mut add = |name: &'static str, value: &str| {
            headers.insert(name, HeaderValue::from_str(value).expect("header value"));
        };
        if let Some(origin) = &self.origin {
            add("Origin", origin);
        }
        if let Some(cookie) = &self.cookie {
            add("Cookie", cookie);
        }
        if !self.protocols.is_empty() {
            add("Sec-WebSocket-Protocol", &self.protocols.join(", "));
        }
        for (name, value) in &self.headers {
            headers.append(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let uri = request.uri().clone();
        let host = uri
            .host()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("wss") {
                443
            } else {
                80
            });
        let tcp = match self.source {
            Some(source) => {
                let to = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                    .map_err(|e| transport(&e))?
                    .next()
                    .ok_or_else(|| transport(&"no address"))?;
                crate::http::connect_from(source, to)
            }
            None => TcpStream::connect((host.as_str(), port)).map_err(|e| transport(&e))?,
        };
        tcp.set_read_timeout(Some(self.timeout))
            .map_err(|e| transport(&e))?;
        tcp.set_write_timeout(Some(self.timeout))
            .map_err(|e| transport(&e))?;
        let _ = tcp.set_nodelay(true);
        let tcp_handle = tcp.try_clone().map_err(|e| transport(&e))?;
        let inner = if uri.scheme_str() == Some("wss") {
            Inner::Tls(Box::new(self.tls(&host, tcp).map_err(|e| transport(&e))?))
        } else {
            Inner::Plain(tcp)
        };
        let stream = Stream(Arc::new(Mutex::new(inner)));
        match tungstenite::client::client_with_config(request, stream.clone(), None) {
            Ok((socket, response)) => {
                let protocol = response
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok(Ws {
                    socket,
                    tcp: tcp_handle,
                    protocol,
                    pending: Vec::new(),
                    close: None,
                })
            }
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let length = response
                    .headers()
                    .get("Content-Length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let head = response.body().clone().unwrap_or_default();
                let body = rest_of_body(stream, head, length);
                Err(Failure::Refused(Refusal {
                    status: response.status().as_u16(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                }))
            }
            Err(e) => Err(transport(&e)),
        }
    }

    /// Opens `url`; panics if the proxy refuses.
    pub fn open(&self, url: &str) -> Ws {
        match self.connect(url) {
            Ok(ws) => ws,
            Err(e) => panic!("websocket to {url} failed: {e:?}"),
        }
    }

    /// The proxy's HTTP refusal of `url`; panics if it upgrades or the transport fails.
    pub fn refusal(&self, url: &str) -> Refusal {
        match self.connect(url) {
            Ok(_) => panic!("{url}: the proxy upgraded, but a refusal was expected"),
            Err(Failure::Refused(r)) => r,
            Err(Failure::Transport(e)) => panic!("expected an HTTP refusal, got {e}"),
        }
    }

    /// A TLS client connection over `tcp` to `host`, trusting [`Client::ca`].
    pub fn tls(&self, host: &str, tcp: TcpStream) -> Result<TlsStream, String> {
        let ca = self.ca.clone().unwrap_or_else(|| pki().trusted.ca_cert());
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(&ca).map_err(|e| format!("{}: {e}", ca.display()))?
        {
            roots
                .add(cert.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }
}

/// Opens `url` with the default client; panics if refused.
pub fn open(url: &str) -> Ws {
    Client::default().open(url)
}

/// The refusal of `url` with the default client; panics if it upgrades.
pub fn refusal(url: &str) -> Refusal {
    Client::default().refusal(url)
}

/// A blocking TLS client stream.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// TCP, or TLS over TCP, shared so that the client can go on reading a refusal's body after
/// tungstenite gave up on the handshake (it keeps only what arrived with the headers).
#[derive(Debug, Clone)]
pub struct Stream(Arc<Mutex<Inner>>);

#[derive(Debug)]
enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut *self.lock() {
            Inner::Plain(s) => s.read(buf),
            Inner::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut *self.lock() {
            Inner::Plain(s) => s.write(buf),
            Inner::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut *self.lock() {
            Inner::Plain(s) => s.flush(),
            Inner::Tls(s) => s.flush(),
        }
    }
}

/// The rest of a refusal's body: up to `Content-Length` bytes in all, or until the proxy
/// closes the connection.
fn rest_of_body(mut stream: Stream, mut body: Vec<u8>, length: Option<usize>) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    while length.is_none_or(|len| body.len() < len) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    body
}

/// An open websocket.
#[derive(Debug)]
pub struct Ws {
    /// The tungstenite socket.
    pub socket: WebSocket<Stream>,
    tcp: TcpStream,
    /// The subprotocol the proxy answered, if any.
    pub protocol: Option<String>,
    pending: Vec<u8>,
    close: Option<(u16, String)>,
}

impl Ws {
    /// The underlying TCP stream (for timeouts, local address, shutdown).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Sets the read timeout of the socket.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.tcp()
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
    }

    /// Waits up to `timeout` for the proxy's Close frame, discarding data before it: the
    /// code and reason, or what happened instead.
    pub fn close_frame(&mut self, timeout: Duration) -> Result<(u16, String), String> {
        if let Some(close) = self.close.clone() {
            return Ok(close);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no Close frame within {timeout:?}"));
            }
            self.set_read_timeout(left.min(Duration::from_millis(500)));
            match self.socket.read() {
                Ok(Message::Close(frame)) => {
                    let close = code_and_reason(frame);
                    self.close = Some(close.clone());
                    return Ok(close);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("connection ended without a Close frame: {e}")),
            }
        }
    }

    /// Sends a Close frame (1000) and waits briefly for the proxy's answer.
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        self.set_read_timeout(Duration::from_secs(2));
        while self.socket.read().is_ok() {}
    }

    /// Reads the next binary message's payload (`Ok(0)` on Close); the close frame is kept
    /// for [`Ws::close_frame`].
    fn fill(&mut self) -> io::Result<()> {
        while self.pending.is_empty() {
            match self.socket.read() {
                Ok(Message::Binary(data)) => self.pending.extend_from_slice(&data),
                Ok(Message::Text(text)) => self.pending.extend_from_slice(text.as_bytes()),
                Ok(Message::Close(frame)) => {
                    self.close = Some(code_and_reason(frame));
                    return Ok(());
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) => return Err(e),
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(())
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        Ok(())
    }
}

/// A Close frame's code and reason; 1005 (no status) when it had none.
fn code_and_reason(frame: Option<CloseFrame>) -> (u16, String) {
    frame
        .map(|f| (u16::from(f.code), f.reason.to_string()))
        .unwrap_or((u16::from(CloseCode::Status), String::new()))
}

impl Read for Ws {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() && self.close.is_none() {
            self.fill()?;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

impl Write for Ws {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket
            .send(Message::binary(buf.to_vec()))
            .map_err(io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush().map_err(io::Error::other)
    }
}

/// Reads from `ws` until what arrived contains `needle`; all of it, or a panic naming what
/// did arrive after `timeout`.
pub fn read_until(ws: &mut Ws, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {needle:?} within {timeout:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        ws.set_read_timeout(left);
        match ws.read(&mut buf) {
            Ok(0) => panic!(
                "the websocket closed before {needle:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading {needle:?}: {e}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}
