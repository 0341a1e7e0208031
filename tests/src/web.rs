//! The browser side of the tests and the demo: noVNC's library (fetched once with `npm pack`)
//! and `tests/web/console.html`, a page that opens noVNC against its own origin's websocket.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::proxy;
use crate::scratch::TempDir;

const NOVNC: &str = "@novnc/novnc@1.7.0";

/// noVNC's library (the npm package ships `core/` and `vendor/` only), unpacked once under
/// `target/` with `npm pack` from the npm registry.
pub fn novnc_package() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = proxy::workspace_root().join("target/novnc-1.7.0");
    if dir.join("core/rfb.js").is_file() {
        return dir;
    }
    let work = TempDir::new("novnc-pack");
    let out = Command::new("npm")
        .args(["pack", NOVNC, "--silent"])
        .current_dir(work.path())
        .output()
        .expect("npm is needed to fetch noVNC (apt-get install npm)");
    assert!(
        out.status.success(),
        "npm pack {NOVNC} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tarball = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let status = Command::new("tar")
        .args(["xzf", &tarball])
        .current_dir(work.path())
        .status()
        .unwrap();
    assert!(status.success(), "cannot unpack {tarball}");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(work.path().join("package"), &dir).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A `web` directory (for the proxy's `web` key) with `console.html` and noVNC under
/// `novnc/`.
pub fn web_dir() -> TempDir {
    let web = TempDir::new("web");
    let package = novnc_package();
    for part in ["core", "vendor"] {
        copy_dir(&package.join(part), &web.join("novnc").join(part));
    }
    let page = proxy::workspace_root().join("tests/web/console.html");
    std::fs::copy(page, web.join("console.html")).unwrap();
    web
}
