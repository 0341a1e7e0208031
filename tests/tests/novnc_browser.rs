//! noVNC, the real browser client, in a real headless Chromium, served from the proxy's own
//! `web` directory, reaches a QEMU console through consolegate: its RFB object reports the
//! desktop name and `connected`.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::scratch::TempDir;
use consolegate_tests::web::web_dir;

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
        Self {
            child,
            devtools,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Sends one DevTools command and waits for its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.devtools
            .send(Message::Text(message.to_string().into()))
            .unwrap();
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
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
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
        Config::new()
            .set("web", &web.path().display().to_string())
            .token("browser-t1", &qemu.addr()),
    );
    let url = format!(
        "http://127.0.0.1:{}/console.html?token=browser-t1",
        proxy.addr().port()
    );
    let lines = Chromium::start().console_status(&url, |l| l.iter().any(|s| s == "connected"));
    assert!(
        lines.contains(&"desktopname:QEMU".to_string()),
        "noVNC said {lines:?}"
    );
    assert!(
        lines.contains(&"connected".to_string()),
        "noVNC said {lines:?}"
    );
    assert!(proxy
        .wait_for_log("driver=noop", Duration::from_secs(5))
        .is_some());
}

#[test]
fn novnc_with_an_unknown_token_never_connects() {
    let qemu = Qemu::start(Mode::VncNone);
    let web = web_dir();
    let proxy = Proxy::start(
        Config::new()
            .set("web", &web.path().display().to_string())
            .token("browser-t2", &qemu.addr()),
    );
    let url = format!(
        "http://127.0.0.1:{}/console.html?token=wrong",
        proxy.addr().port()
    );
    let lines =
        Chromium::start().console_status(&url, |l| l.iter().any(|s| s.starts_with("disconnected")));
    assert!(
        !lines.contains(&"connected".to_string()),
        "noVNC said {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("disconnected")),
        "noVNC said {lines:?}"
    );
}

#[test]
fn novnc_in_chromium_reaches_qemu_over_vencrypt_x509() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let web = web_dir();
    let config = Config::new()
        .set("web", &web.path().display().to_string())
        .trusted_tls_drivers("vencrypt")
        .token("browser-t3", &format!("vnc://127.0.0.1:{}", qemu.port()));
    let proxy = Proxy::start(config);
    let url = format!(
        "http://127.0.0.1:{}/console.html?token=browser-t3",
        proxy.addr().port()
    );
    let mut chromium = Chromium::start();
    let lines = chromium.console_status(&url, |l| l.iter().any(|s| s == "connected"));
    assert!(
        lines.contains(&"desktopname:QEMU".to_string()),
        "noVNC said {lines:?}"
    );
    drop(chromium); // closes the session, which writes its audit line
    let audit = proxy.wait_for_log("driver=vencrypt", Duration::from_secs(5));
    assert!(
        audit.is_some(),
        "no vencrypt session in the log: {}",
        proxy.log()
    );
}
