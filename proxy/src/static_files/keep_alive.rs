//! HTTP/1.1 keep-alive for static answers: a page and its dozens of modules come over one
//! connection (one TCP and TLS handshake, one thread, one `max_connections` place) instead of
//! one each.
//!
//! A connection stays open after an answer unless keep-alive is off (`keepalive_timeout = 0`),
//! the request asked to close or is HTTP/1.0, the request announced a body (never read, so the
//! connection cannot be trusted to be at a request boundary), it was the connection's
//! `keepalive_requests`th, or the proxy is shutting down. Between requests the connection
//! waits at most `keepalive_timeout` for the next one to begin; once its first byte arrives,
//! its whole head must arrive within `handshake_timeout` (the caller's deadline), as for the
//! first request. A websocket upgrade may be the next request: the connection then becomes a
//! console session.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use http::header;

use super::response::Persistence;
use crate::browser_stream::BrowserStream;
use crate::deadline::is_timeout;

/// `keepalive_timeout`'s default, in seconds.
pub const DEFAULT_IDLE_SECS: f64 = 5.0;
/// `keepalive_requests`' default.
pub const DEFAULT_MAX_REQUESTS: usize = 100;

/// How long kept-alive connections wait and how many requests they serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// How long a connection waits for its next request to begin; `None`: keep-alive is off.
    pub idle: Option<Duration>,
    /// The most requests one connection serves.
    pub max_requests: usize,
}

impl KeepAlive {
    /// Whether the connection stays open after answering `request`, the `served`th request on
    /// it (counting from 1).
    pub fn persistence(&self, request: &http::Request<()>, served: usize) -> Persistence {
        let headers = request.headers();
        let asks_to_close = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"));
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get_all(header::CONTENT_LENGTH)
                .iter()
                .any(|v| v.as_bytes() != b"0");
        let keep = self.idle.is_some()
            && served < self.max_requests
            && request.version() == http::Version::HTTP_11
            && !asks_to_close
            && !has_body;
        if keep {
            Persistence::KeepAlive
        } else {
            Persistence::Close
        }
    }
}

/// Waits, until `idle` has passed, for the next request on a kept-alive connection to begin.
/// Returns its first bytes: `pending` at once if the client already sent some (what followed
/// the previous head), else what one read brings. `None` when the client closed the connection
/// or stayed idle (or shutdown closed it for reading): the connection ends normally.
pub fn await_next_request(
    stream: &mut BrowserStream,
    pending: Vec<u8>,
    idle: Duration,
) -> io::Result<Option<Vec<u8>>> {
    if !pending.is_empty() {
        return Ok(Some(pending));
    }
    stream.set_deadline(Some(Instant::now() + idle));
    let mut first = vec![0u8; 2048];
    match stream.read(&mut first) {
        Ok(0) => Ok(None),
        Ok(n) => {
            first.truncate(n);
            Ok(Some(first))
        }
        Err(e)
            if is_timeout(&e)
                || matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::BrokenPipe
                ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: KeepAlive = KeepAlive {
        idle: Some(Duration::from_secs(5)),
        max_requests: 3,
    };

    fn request(version: http::Version, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/a.js").version(version);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn kept_alive_only_when_nothing_asks_to_close() {
        use http::Version;
        const HTTP_10: Version = Version::HTTP_10;
        const HTTP_11: Version = Version::HTTP_11;
        use Persistence::{Close, KeepAlive as Keep};
        let plain = request(HTTP_11, &[]);
        assert_eq!(ON.persistence(&plain, 1), Keep);
        assert_eq!(ON.persistence(&plain, 2), Keep);
        assert_eq!(ON.persistence(&plain, 3), Close, "the cap");
        let off = KeepAlive { idle: None, ..ON };
        assert_eq!(off.persistence(&plain, 1), Close);
        for (version, headers) in [
            (HTTP_10, vec![("Host", "x")]),
            (HTTP_11, vec![("Connection", "keep-alive, Close")]),
            (HTTP_11, vec![("Content-Length", "5")]),
            (HTTP_11, vec![("Transfer-Encoding", "chunked")]),
        ] {
            let r = request(version, &headers);
            assert_eq!(ON.persistence(&r, 1), Close, "{version:?} {headers:?}");
        }
        let empty_body = request(HTTP_11, &[("Content-Length", "0")]);
        assert_eq!(ON.persistence(&empty_body, 1), Keep);
    }
}
