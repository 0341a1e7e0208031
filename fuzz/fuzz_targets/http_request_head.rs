//! The browser's request head: `http_upgrade::read_request`, then everything the session
//! asks of the parsed request (`token`, `origin_allowed`, `is_websocket`, `check_upgrade`,
//! `write_upgrade`).
//!
//! Input: one byte picking how many bytes each read returns (1-256), then the bytes the client
//! sends. Properties:
//! - the result does not depend on how the bytes arrive: read in one go (up to 2 KiB a read)
//!   and read in small pieces, the same head parses to the same request (only the 16 KiB
//!   limit may cut one of them, since the two readers cross it at different points);
//! - the bytes after the head come back unchanged as `leftover`, and the head fits the limit;
//! - a token is never empty; `allowed_origins = *` admits every request whose `Origin` (if any) is text;
//! - on a kept-alive connection the next head is read from what followed (`read_request_after`)
//!   as if it came fresh; the static server's questions (`If-None-Match`, `If-Modified-Since`,
//!   keep-alive, `Cache-Control`) are answered without a panic, and a request that announces a
//!   body never keeps its connection alive.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use consolegate::http_upgrade::{
    check_upgrade, is_websocket, origin_allowed, read_request, read_request_after, token,
    write_upgrade, RequestError, UpgradeRequest, MAX_REQUEST_HEAD,
};
use consolegate::static_files::caching::{cache_control, Validators};
use consolegate::static_files::{KeepAlive, Persistence};
use consolegate_fuzz::Script;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    // Up to 2 KiB a read (read_request's own buffer), and 1-256 bytes a read.
    let mut at_once = Script::new(input, usize::MAX);
    let whole = read_request(&mut at_once);
    let mut piecewise = Script::new(input, usize::from(chunk) + 1);
    let pieces = read_request(&mut piecewise);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.request.method(), b.request.method());
            assert_eq!(a.request.uri(), b.request.uri());
            assert_eq!(a.request.version(), b.request.version());
            assert_eq!(a.request.headers(), b.request.headers());
            // Each reader stops at the read that completes the head.
            let (short, long) = if a.leftover.len() <= b.leftover.len() {
                (&a.leftover, &b.leftover)
            } else {
                (&b.leftover, &a.leftover)
            };
            assert!(long.starts_with(short));
        }
        (Ok(_), Err(RequestError::TooLarge)) | (Err(RequestError::TooLarge), Ok(_)) => {}
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => panic!("one reader parsed the head, the other: {e}"),
        (Err(_), Err(_)) => {}
    }
    for (reader, result) in [(&at_once, &whole), (&piecewise, &pieces)] {
        if let Ok(parsed) = result {
            check(&input[..input.len() - reader.unread().len()], parsed);
        }
    }
});

/// Checks one parsed request; `read` is what the reader consumed.
fn check(read: &[u8], parsed: &UpgradeRequest) {
    assert!(read.ends_with(&parsed.leftover));
    let head = read.len() - parsed.leftover.len();
    assert!(
        head <= MAX_REQUEST_HEAD + 2048,
        "head of {head} bytes accepted"
    );
    let request = &parsed.request;
    if let Some(t) = token(request) {
        assert!(!t.is_empty());
    }
    let origin_is_text = request
        .headers()
        .get(http::header::ORIGIN)
        .is_none_or(|o| o.to_str().is_ok());
    assert_eq!(origin_allowed(request, &["*".to_string()]), origin_is_text);
    let _ = origin_allowed(request, &[]);
    let _ = origin_allowed(request, &["https://proxy.example".to_string()]);
    match check_upgrade(request) {
        Ok(response) => {
            // Only a websocket upgrade passes, and its answer is a well-formed 101 head.
            assert!(is_websocket(request));
            let mut out = Vec::new();
            write_upgrade(&mut out, &response).expect("writing to a Vec");
            assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(out.ends_with(b"\r\n\r\n"));
        }
        Err(bad) => assert!(!bad.reason().chars().any(char::is_control)),
    }
    static_questions(request);
    // A pipelined next request: read from the leftover alone, or fresh, it is the same.
    if !parsed.leftover.is_empty() {
        let buffered = read_request_after(&mut &[][..], parsed.leftover.clone());
        let fresh = read_request(&mut &parsed.leftover[..]);
        match (buffered, fresh) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.request.uri(), b.request.uri());
                assert_eq!(a.request.headers(), b.request.headers());
                // The fresh reader stops at the read that completes the head.
                assert!(a.leftover.starts_with(&b.leftover));
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("buffered {:?}, fresh {:?}", a.is_ok(), b.is_ok()),
        }
    }
}

/// What the static server asks of a request: never a panic, and a body means close.
fn static_questions(request: &http::Request<()>) {
    let validators = Validators::new(1234, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let _ = validators.not_modified(request.headers());
    let _ = cache_control(request.uri().path());
    let keep_alive = KeepAlive {
        idle: Some(Duration::from_secs(5)),
        max_requests: 100,
    };
    let has_body = request
        .headers()
        .contains_key(http::header::TRANSFER_ENCODING)
        || request
            .headers()
            .get_all(http::header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0");
    if has_body {
        assert_eq!(keep_alive.persistence(request, 1), Persistence::Close);
    }
}
