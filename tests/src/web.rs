//! The console pages (`web/`): [`web_dir`] assembles them with `web/build.sh` into a scratch
//! directory, the proxy's `web` directory for the browser tests and the demo.

use std::process::Command;

use crate::proxy;
use crate::scratch::TempDir;

/// A `web` directory built by `web/build.sh`: `vnc.html`, `spice.html`, `serial.html`, their
/// scripts and styles, and the pinned libraries under `lib/<name>-<version>/`. The first call
/// of the day runs `npm ci` (into `target/web-npm/`); later ones only copy.
pub fn web_dir() -> TempDir {
    let web = TempDir::new("web");
    let script = proxy::workspace_root().join("web/build.sh");
    let out = Command::new(&script)
        .arg(web.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "web/build.sh failed (it needs npm: apt-get install npm): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    web
}
