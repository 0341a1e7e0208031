//! Where a URL path leads under the `web` directory: paths that leave it are refused, hidden
//! files (`.git`, `.env`: any path component starting with a dot) are never served, and a
//! directory means its `index.html` (never a listing, never a redirect).

use std::path::{Component, Path, PathBuf};

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
