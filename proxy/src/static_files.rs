//! The optional `web` directory: plain `GET`/`HEAD` requests are answered from it, so noVNC can
//! be served from the proxy's own origin. Paths that leave the directory are refused, hidden
//! files (`.git`, `.env`: any path component starting with a dot) are never served, a directory
//! without `index.html` is not listed, and nothing redirects.
//!
//! The caller holds the whole reply to a deadline (the stream's), so a client that reads slowly
//! cannot keep a file reply going.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use http::{Method, StatusCode};

use crate::browser_stream::BrowserStream;
use crate::http_upgrade::{response_head, write_refusal};

/// The largest file served.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Where a URL path leads under the `web` directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A file inside the directory (it may not exist).
    File(PathBuf),
    /// A hidden file or directory: answered as missing.
    Hidden,
    /// A path that leaves the directory (`..`, an absolute path, a symbolic link outside).
    Outside,
}

/// Answers `request` from `root`; the reply is streamed from the file.
pub fn serve(
    stream: &mut BrowserStream,
    root: &Path,
    request: &http::Request<()>,
) -> io::Result<StatusCode> {
    let transport = stream.transport();
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let status = StatusCode::METHOD_NOT_ALLOWED;
        write_refusal(stream, status, "only GET and HEAD are served", transport)?;
        return Ok(status);
    }
    let path = match resolve(root, request.uri().path()) {
        Lookup::File(path) => path,
        Lookup::Hidden => return not_found(stream),
        Lookup::Outside => {
            let status = StatusCode::FORBIDDEN;
            write_refusal(stream, status, "path not allowed", transport)?;
            return Ok(status);
        }
    };
    let Ok(mut file) = File::open(&path) else {
        return not_found(stream);
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE_SIZE => m.len(),
        _ => return not_found(stream),
    };
    let status = StatusCode::OK;
    let head_text = response_head(status, content_type(&path), size, transport);
    stream.write_all(head_text.as_bytes())?;
    if !head {
        io::copy(&mut io::Read::take(&mut file, size), stream)?;
    }
    stream.flush()?;
    Ok(status)
}

fn not_found(stream: &mut BrowserStream) -> io::Result<StatusCode> {
    let transport = stream.transport();
    write_refusal(stream, StatusCode::NOT_FOUND, "not found", transport)?;
    Ok(StatusCode::NOT_FOUND)
}

/// Maps a URL path (percent-decoded as RFC 3986 says) to a file under `root`.
pub fn resolve(root: &Path, url_path: &str) -> Lookup {
    let Ok(decoded) = percent_encoding::percent_decode_str(url_path).decode_utf8() else {
        return Lookup::Outside;
    };
    let relative = Path::new(decoded.trim_start_matches('/'));
    let mut path = root.to_path_buf();
    for component in relative.components() {
        match component {
            Component::Normal(c) if c.as_encoded_bytes().starts_with(b".") => {
                return Lookup::Hidden
            }
            Component::Normal(c) => path.push(c),
            Component::CurDir => {}
            _ => return Lookup::Outside,
        }
    }
    if path.is_dir() {
        path.push("index.html");
    }
    let Ok(root) = root.canonicalize() else {
        return Lookup::Outside;
    };
    match path.canonicalize() {
        Ok(real) if real.starts_with(&root) => Lookup::File(real),
        Ok(_) => Lookup::Outside,
        // A missing file: answer 404, not 403.
        Err(_) => Lookup::File(path),
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
    use consolegate_tests::scratch::TempDir;

    #[test]
    fn traversal_is_refused() {
        let dir = TempDir::new("web");
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.js"), "x").unwrap();
        let Lookup::File(a) = resolve(root, "/sub/a.js") else {
            panic!("sub/a.js not found")
        };
        assert!(a.ends_with("sub/a.js"));
        assert_eq!(resolve(root, "/../etc/passwd"), Lookup::Outside);
        assert_eq!(
            resolve(root, "/sub/%2e%2e/%2e%2e/etc/passwd"),
            Lookup::Outside
        );
        assert_eq!(
            resolve(root, "//etc/passwd"),
            Lookup::File(root.join("etc/passwd"))
        );
        std::os::unix::fs::symlink("/etc", root.join("out")).ok();
        assert_eq!(resolve(root, "/out/passwd"), Lookup::Outside);
    }

    #[test]
    fn hidden_files_are_never_served() {
        let dir = TempDir::new("web-hidden");
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".env"), "SECRET=1").unwrap();
        std::fs::write(root.join(".git/config"), "x").unwrap();
        for path in [
            "/.env",
            "/.git/config",
            "/%2egit/config",
            "/sub/.hidden",
            "/a+b/.x",
        ] {
            assert_eq!(resolve(root, path), Lookup::Hidden, "{path}");
        }
    }
}
