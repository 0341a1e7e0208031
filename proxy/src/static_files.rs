//! The optional `web` directory: plain `GET`/`HEAD` requests are answered from it, so noVNC can
//! be served from the proxy's own origin. Paths that leave the directory are refused.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use http::{Method, StatusCode};

use crate::http_upgrade::{write_refusal, write_response};

/// The largest file served.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Answers `request` from `root`.
pub fn serve(
    stream: &mut impl Write,
    root: &Path,
    request: &http::Request<()>,
) -> io::Result<StatusCode> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        write_refusal(
            stream,
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served",
        )?;
        return Ok(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(path) = resolve(root, request.uri().path()) else {
        write_refusal(stream, StatusCode::FORBIDDEN, "path not allowed")?;
        return Ok(StatusCode::FORBIDDEN);
    };
    let meta = std::fs::metadata(&path);
    match meta {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE_SIZE => {
            let body = std::fs::read(&path)?;
            write_response(stream, StatusCode::OK, content_type(&path), &body, !head)?;
            Ok(StatusCode::OK)
        }
        _ => {
            write_refusal(stream, StatusCode::NOT_FOUND, "not found")?;
            Ok(StatusCode::NOT_FOUND)
        }
    }
}

/// Maps a URL path to a file under `root`, or `None` if it would leave `root` (through `..`,
/// or through a symbolic link pointing outside).
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded: String =
        url::form_urlencoded::parse(format!("p={}", url_path.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
    let relative = Path::new(decoded.trim_start_matches('/'));
    let mut path = root.to_path_buf();
    for component in relative.components() {
        match component {
            Component::Normal(c) => path.push(c),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if path.is_dir() {
        path.push("index.html");
    }
    let root = root.canonicalize().ok()?;
    match path.canonicalize() {
        Ok(real) if real.starts_with(&root) => Some(real),
        Ok(_) => None,
        // A missing file: answer 404, not 403.
        Err(_) => Some(path),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused() {
        let root = std::env::temp_dir().join(format!("cg-web-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.js"), "x").unwrap();
        assert!(resolve(&root, "/sub/a.js").unwrap().ends_with("sub/a.js"));
        assert_eq!(resolve(&root, "/../etc/passwd"), None);
        assert_eq!(resolve(&root, "/sub/%2e%2e/%2e%2e/etc/passwd"), None);
        std::os::unix::fs::symlink("/etc", root.join("out")).ok();
        assert_eq!(resolve(&root, "/out/passwd"), None);
    }
}
