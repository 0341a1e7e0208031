//! The optional `web` directory: plain `GET`/`HEAD` requests are answered from it, so the
//! console pages and their libraries come from the proxy's own origin.
//!
//! - [`resolve`]: where a URL path leads; traversal refused, hidden files never served, no
//!   listing, no redirect;
//! - [`mime`]: the `Content-Type` (ES modules are `text/javascript`);
//! - [`caching`]: `ETag`, `Last-Modified`, `304 Not Modified`, and `Cache-Control` (pages
//!   revalidated, `/lib/<name>-<version>/` immutable);
//! - [`response`]: the answer heads, with the security headers (a strict
//!   `Content-Security-Policy`, `nosniff`, `Referrer-Policy: no-referrer`);
//! - [`keep_alive`]: whether a connection stays open for the next request, and the wait for it.
//!
//! These answers are not console sessions: they get no audit line, only debug lines. The
//! caller holds each answer to a deadline (the stream's), so a client that reads slowly cannot
//! keep a file reply going.

pub mod caching;
pub mod keep_alive;
pub mod mime;
pub mod resolve;
pub mod response;

use std::fs::File;
use std::io::{self, Write};

use http::{Method, StatusCode};

use crate::browser_stream::BrowserStream;
use caching::Validators;
use response::{write_refusal, Head};

pub use keep_alive::KeepAlive;
pub use resolve::{resolve, Lookup};
pub use response::Persistence;

/// The largest file served.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Answers `request` from `root` (the reply is streamed from the file) and says whether the
/// connection stays open after it (`persistence`); returns the status sent.
pub fn serve(
    stream: &mut BrowserStream,
    root: &std::path::Path,
    request: &http::Request<()>,
    persistence: Persistence,
) -> io::Result<StatusCode> {
    let transport = stream.transport();
    let mut refuse = |status: StatusCode, reason: &str| {
        write_refusal(stream, status, reason, transport, persistence).map(|()| status)
    };
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served",
        );
    }
    let url_path = request.uri().path();
    let path = match resolve(root, url_path) {
        Lookup::File(path) => path,
        Lookup::Hidden => return refuse(StatusCode::NOT_FOUND, "not found"),
        Lookup::Outside => return refuse(StatusCode::FORBIDDEN, "path not allowed"),
    };
    let Ok(mut file) = File::open(&path) else {
        return refuse(StatusCode::NOT_FOUND, "not found");
    };
    let metadata = match file.metadata() {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE_SIZE => m,
        _ => return refuse(StatusCode::NOT_FOUND, "not found"),
    };
    let validators = Validators::of(&metadata);
    let not_modified = validators
        .as_ref()
        .is_some_and(|v| v.not_modified(request.headers()));
    let status = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut head_text = Head::new(status);
    if !not_modified {
        head_text = head_text
            .header("Content-Type", mime::content_type(&path))
            .header("Content-Length", metadata.len());
    }
    if let Some(v) = &validators {
        head_text = head_text
            .header("ETag", v.etag())
            .header("Last-Modified", v.last_modified());
    }
    let head_text = head_text
        .header("Cache-Control", caching::cache_control(url_path))
        .finish(transport, persistence);
    stream.write_all(head_text.as_bytes())?;
    if !head && !not_modified {
        let sent = io::copy(&mut io::Read::take(&mut file, metadata.len()), stream)?;
        if sent != metadata.len() {
            // The file shrank while it was sent: the promised length cannot be kept, and a
            // kept-alive connection would be out of step. Close it.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
    }
    stream.flush()?;
    Ok(status)
}
