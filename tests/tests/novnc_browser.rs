//! noVNC, the real browser client, in a real headless Chromium, served from the proxy's own
//! `web` directory, reaches a QEMU console through consolegate: its RFB object reports the
//! desktop name and `connected`.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use consolegate_tests::proxy::{self, Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::scratch::TempDir;

const NOVNC: &str = "@novnc/novnc@1.7.0";

/// noVNC's library (the npm package ships `core/` and `vendor/` only), unpacked once under
/// `target/` with `npm pack` from the npm registry.
fn novnc_package() -> PathBuf {
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
    assert!(out.status.success(), "npm pack {NOVNC} failed: {}", String::from_utf8_lossy(&out.stderr));
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

/// A `web` directory with the console page and noVNC.
fn web_dir() -> TempDir {
    let web = TempDir::new("web");
    let package = novnc_package();
    for part in ["core", "vendor"] {
        copy_dir(&package.join(part), &web.join("novnc").join(part));
    }
    let page = proxy::workspace_root().join("tests/web/console.html");
    std::fs::copy(page, web.join("console.html")).unwrap();
    web
}

/// A headless Chromium driven over the DevTools protocol (its browser websocket endpoint).
struct Chromium {
    child: Child,
    devtools: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: TempDir,
}

impl Chromium {
    fn start() -> Self {
        let profile = TempDir::new("chromium");
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("chromium is needed for the browser test (apt-get install chromium)");
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut endpoint = None;
        for line in stderr.by_ref() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                endpoint = Some(url.trim().to_string());
                break;
            }
        }
        // Keep reading, so chromium never blocks on a full pipe.
        std::thread::spawn(move || stderr.for_each(drop));
        let endpoint = endpoint.expect("chromium printed no DevTools endpoint");
        let (devtools, _) = tungstenite::connect(endpoint.as_str()).expect("DevTools websocket");
        Self { child, devtools, next_id: 0, _profile: profile }
    }

    /// Sends one DevTools command and waits for its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.devtools.send(Message::Text(message.to_string().into())).unwrap();
        loop {
            let reply = self.devtools.read().expect("DevTools reply");
            let Message::Text(text) = reply else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == json!(id) {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
        }
    }

    /// Opens `url` in a new tab and polls the console page's status lines until `done` says
    /// they are final, or 20 s pass.
    fn console_status(&mut self, url: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let target = self.call(None, "Target.createTarget", json!({"url": url}));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached =
            self.call(None, "Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let result = self.call(
                Some(&session),
                "Runtime.evaluate",
                json!({"expression": "document.getElementById('status')?.textContent ?? ''"}),
            );
            let text = result["result"]["value"].as_str().unwrap_or("").to_string();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if done(&lines) || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn novnc_in_chromium_connects_to_qemu_through_the_proxy() {
    let qemu = Qemu::start(Mode::VncNone);
    let web = web_dir();
    let proxy = Proxy::start(
        Config::new().set("web", &web.path().display().to_string()).token("browser-t1", &qemu.addr()),
    );
    let url = format!("http://127.0.0.1:{}/console.html?token=browser-t1", proxy.addr().port());
    let lines = Chromium::start().console_status(&url, |l| l.iter().any(|s| s == "connected"));
    assert!(lines.contains(&"desktopname:QEMU".to_string()), "noVNC said {lines:?}");
    assert!(lines.contains(&"connected".to_string()), "noVNC said {lines:?}");
    assert!(proxy.wait_for_log("driver=noop", Duration::from_secs(5)).is_some());
}

#[test]
fn novnc_with_an_unknown_token_never_connects() {
    let qemu = Qemu::start(Mode::VncNone);
    let web = web_dir();
    let proxy = Proxy::start(
        Config::new().set("web", &web.path().display().to_string()).token("browser-t2", &qemu.addr()),
    );
    let url = format!("http://127.0.0.1:{}/console.html?token=wrong", proxy.addr().port());
    let lines = Chromium::start()
        .console_status(&url, |l| l.iter().any(|s| s.starts_with("disconnected")));
    assert!(!lines.contains(&"connected".to_string()), "noVNC said {lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("disconnected")), "noVNC said {lines:?}");
}

#[test]
fn novnc_in_chromium_reaches_qemu_over_vencrypt_x509() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let web = web_dir();
    let set = &consolegate_tests::pki::pki().trusted;
    let config = Config::new()
        .set("web", &web.path().display().to_string())
        .driver("vencrypt")
        .unset("connect_insecure")
        .section("console_proxy_tls", "ca_certificate", &set.ca_cert().display().to_string())
        .section("console_proxy_tls", "client_certificate", &set.client_cert().display().to_string())
        .section("console_proxy_tls", "client_key", &set.client_key().display().to_string())
        .token("browser-t3", &format!("vnc://127.0.0.1:{}", qemu.port()));
    let proxy = Proxy::start(config);
    let url = format!("http://127.0.0.1:{}/console.html?token=browser-t3", proxy.addr().port());
    let mut chromium = Chromium::start();
    let lines = chromium.console_status(&url, |l| l.iter().any(|s| s == "connected"));
    assert!(lines.contains(&"desktopname:QEMU".to_string()), "noVNC said {lines:?}");
    drop(chromium); // closes the session, which writes its audit line
    let audit = proxy.wait_for_log("driver=vencrypt", Duration::from_secs(5));
    assert!(audit.is_some(), "no vencrypt session in the log: {}", proxy.log());
}
