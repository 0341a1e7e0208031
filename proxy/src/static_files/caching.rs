//! How long a browser may keep a file and how it asks whether its copy is still good.
//!
//! Every file carries a strong `ETag` (its size and modification time to the nanosecond, as
//! nginx does: equal on every proxy that installed the same package) and `Last-Modified`; a
//! request whose `If-None-Match` (or, without one, `If-Modified-Since`) still matches gets
//! `304 Not Modified` with no body (RFC 9110 section 13). Pages get `Cache-Control: no-cache`
//! (kept, but revalidated before each use, so a new release shows at once); files under
//! `/lib/<name>-<version>/` (the pinned JavaScript libraries) never change under their URL and
//! get a year and `immutable`.

use std::fs::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap};

/// `Cache-Control` of pages and everything not versioned: revalidate before each use.
pub const REVALIDATE: &str = "no-cache";
/// `Cache-Control` of versioned library files: a year, never revalidated.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The URL directory whose `<name>-<version>/` subdirectories hold versioned libraries.
pub const LIBRARY_DIR: &str = "lib";

/// The `Cache-Control` for the URL path `url_path` (as requested, percent-encoded).
pub fn cache_control(url_path: &str) -> &'static str {
    if is_versioned_library_file(url_path) {
        IMMUTABLE
    } else {
        REVALIDATE
    }
}

/// Whether `url_path` names something under `/lib/<name>-<version>/`: a name, a dash, and a
/// version that starts with a digit (`novnc-1.7.0`, `spice-html5-0.2.1`, `xterm-5.5.0-beta.1`).
fn is_versioned_library_file(url_path: &str) -> bool {
    let Ok(decoded) = percent_encoding::percent_decode_str(url_path).decode_utf8() else {
        return false;
    };
    let mut segments = decoded.split('/').filter(|s| !s.is_empty() && *s != ".");
    segments.next() == Some(LIBRARY_DIR)
        && segments.next().is_some_and(is_name_and_version)
        && segments.next().is_some()
}

fn is_name_and_version(segment: &str) -> bool {
    let version_start = segment.char_indices().find(|&(i, c)| {
        c == '-' && i > 0 && segment[i + 1..].starts_with(|d: char| d.is_ascii_digit())
    });
    version_start.is_some_and(|(i, _)| {
        segment[i + 1..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
    })
}

/// A file's validators: its entity tag and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    etag: String,
    modified: SystemTime,
}

impl Validators {
    /// The validators of a file with `metadata`; `None` when the file system keeps no
    /// modification time (then nothing is ever answered with 304).
    pub fn of(metadata: &Metadata) -> Option<Self> {
        Some(Self::new(metadata.len(), metadata.modified().ok()?))
    }

    /// The validators of a file of `len` bytes last modified at `modified`.
    pub fn new(len: u64, modified: SystemTime) -> Self {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            etag: format!(
                "\"{len:x}-{:x}.{:x}\"",
                since_epoch.as_secs(),
                since_epoch.subsec_nanos()
            ),
            // HTTP dates have whole seconds: compare in whole seconds.
            modified: UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs()),
        }
    }

    /// The `ETag` value, quotes included.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The `Last-Modified` value (an IMF-fixdate).
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }

    /// Whether a `GET`/`HEAD` with `headers` gets 304: `If-None-Match` lists this tag (weak
    /// comparison, or `*`), or, only when there is no `If-None-Match`, `If-Modified-Since` is a
    /// valid date no earlier than the modification time (RFC 9110 sections 13.1.2, 13.1.3,
    /// 13.2.2). An unparsable date is ignored.
    pub fn not_modified(&self, headers: &HeaderMap) -> bool {
        let mut if_none_match = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
        if if_none_match.peek().is_some() {
            return if_none_match
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.etag);
        }
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
            .is_some_and(|since| self.modified <= since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_files_under_lib_name_version_are_immutable() {
        for path in [
            "/lib/novnc-1.7.0/core/rfb.js",
            "/lib/spice-html5-0.2.1/src/main.js",
            "/lib/xterm-5.5.0/lib/xterm.js",
            "/lib/xterm-5.5.0-beta.1/xterm.css",
            "//lib/./novnc-1.7.0/core/rfb.js",
            "/lib/novnc%2D1.7.0/core/rfb.js",
        ] {
            assert_eq!(cache_control(path), IMMUTABLE, "{path}");
        }
        for path in [
            "/vnc.html",
            "/lib/novnc/core/rfb.js",
            "/lib/novnc-latest/core/rfb.js",
            "/lib/-1.0/x.js",
            "/lib/novnc-1.7.0",
            "/lib/novnc-1.7.0/",
            "/lib/novnc-1.7.0 x/a.js",
            "/app/lib/novnc-1.7.0/core/rfb.js",
            "/library/novnc-1.7.0/core/rfb.js",
            "/lib/novnc-1.7.0%ff/a.js",
        ] {
            assert_eq!(cache_control(path), REVALIDATE, "{path}");
        }
    }

    fn validators() -> Validators {
        let v = Validators::new(
            17,
            UNIX_EPOCH + Duration::from_nanos(1_600_000_000_000_000_007),
        );
        assert_eq!(v.etag(), "\"11-5f5e1000.7\"");
        v
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn if_none_match_is_a_weak_comparison_over_a_list() {
        let v = validators();
        let inm = header::IF_NONE_MATCH;
        for value in [
            "\"11-5f5e1000.7\"",
            "W/\"11-5f5e1000.7\"",
            "\"other\", \"11-5f5e1000.7\"",
            "*",
        ] {
            assert!(v.not_modified(&headers(&[(inm.clone(), value)])), "{value}");
        }
        for value in ["\"other\"", "11-5f5e1000.7", ""] {
            assert!(
                !v.not_modified(&headers(&[(inm.clone(), value)])),
                "{value}"
            );
        }
        assert!(v.not_modified(&headers(&[
            (inm.clone(), "\"a\""),
            (inm.clone(), "\"11-5f5e1000.7\"")
        ])));
    }

    #[test]
    fn if_modified_since_counts_only_without_if_none_match() {
        let v = validators();
        let ims = header::IF_MODIFIED_SINCE;
        let at = httpdate::fmt_http_date(v.modified);
        let before = httpdate::fmt_http_date(v.modified - Duration::from_secs(1));
        assert_eq!(at, v.last_modified());
        assert_eq!(at, "Sun, 13 Sep 2020 12:26:40 GMT");
        assert!(v.not_modified(&headers(&[(ims.clone(), &at)])));
        assert!(!v.not_modified(&headers(&[(ims.clone(), &before)])));
        assert!(!v.not_modified(&headers(&[(ims.clone(), "yesterday")])));
        assert!(!v.not_modified(&headers(&[
            (header::IF_NONE_MATCH, "\"other\""),
            (ims.clone(), &at)
        ])));
    }
}
