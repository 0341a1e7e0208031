//! The heads of the static server's answers. Each carries the proxy's security headers
//! ([`SECURITY_HEADERS`]: the strict `Content-Security-Policy`, `nosniff`, no framing, no
//! `Referer`), HSTS over TLS, its caching, and whether the connection stays open
//! ([`Persistence`]).

use std::io::{self, Write};
use std::time::SystemTime;

use http::StatusCode;

use crate::http_upgrade::{Transport, SECURITY_HEADERS};

/// Whether the connection stays open for another request after this answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1's default: the client may send its next request on the same connection.
    KeepAlive,
    /// `Connection: close`: the proxy closes the connection after this answer.
    Close,
}

/// A response head under construction.
#[derive(Debug)]
pub struct Head {
    text: String,
}

impl Head {
    /// The status line and `Date`.
    pub fn new(status: StatusCode) -> Self {
        let text = format!(
            "HTTP/1.1 {} {}\r\nDate: {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            httpdate::fmt_http_date(SystemTime::now())
        );
        Self { text }
    }

    /// Adds `name: value`.
    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.text.push_str(&format!("{name}: {value}\r\n"));
        self
    }

    /// The whole head: the security headers, HSTS over TLS, `Connection: close` unless the
    /// connection is kept alive, and the blank line.
    pub fn finish(mut self, transport: Transport, persistence: Persistence) -> String {
        self.text.push_str(SECURITY_HEADERS);
        self.text.push_str(transport.headers());
        if persistence == Persistence::Close {
            self.text.push_str("Connection: close\r\n");
        }
        self.text.push_str("\r\n");
        self.text
    }
}

/// Writes a refusal of the static server (403, 404, 405): `status` with the body
/// `consolegate: REASON\n`, never cached, like the proxy's other refusals.
pub fn write_refusal(
    stream: &mut impl Write,
    status: StatusCode,
    reason: &str,
    transport: Transport,
    persistence: Persistence,
) -> io::Result<()> {
    let body = format!("consolegate: {reason}\n");
    let head = Head::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Content-Length", body.len())
        .header("Cache-Control", "no-store")
        .finish(transport, persistence);
    stream.write_all(format!("{head}{body}").as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_alive_head_has_no_connection_close() {
        let head = Head::new(StatusCode::OK)
            .header("Content-Length", 3)
            .finish(Transport::Tls, Persistence::KeepAlive);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nDate: "), "{head}");
        assert!(head.contains("Content-Length: 3\r\n"), "{head}");
        assert!(head.contains("Strict-Transport-Security"), "{head}");
        assert!(!head.contains("Connection:"), "{head}");
        assert!(head.ends_with("Referrer-Policy: no-referrer\r\nStrict-Transport-Security: max-age=31536000\r\n\r\n"), "{head}");
        let head = Head::new(StatusCode::NOT_FOUND).finish(Transport::Plain, Persistence::Close);
        assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
        assert!(!head.contains("Strict-Transport-Security"), "{head}");
    }
}
