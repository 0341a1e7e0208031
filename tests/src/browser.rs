//! A real headless Chromium (Debian's `chromium`), driven over the DevTools protocol through
//! its browser websocket endpoint, for the console-page tests.
//!
//! [`Chromium::start`] runs a fresh browser with an empty profile (so every page load is a
//! cold one) that trusts the test PKI's server certificate for wss, by its public key
//! (`--ignore-certificate-errors-spki-list`), and no other. [`Chromium::open`] opens a page in
//! a new tab and returns a [`Page`] that evaluates JavaScript, types keys, takes screenshots
//! and records the network requests and websockets it made. Every step has a deadline; a
//! missing `chromium` fails the test with what to install. At most two browsers run at once
//! in a test process; a third test waits for a place before its browser starts.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::pki::pki;
use crate::scratch::TempDir;

/// How long Chromium may take to start and print its DevTools endpoint.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one DevTools command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Run before a page's own scripts: keeps each Content-Security-Policy violation.
const RECORD_CSP_VIOLATIONS: &str = "window.__cspViolations = []; \
    document.addEventListener('securitypolicyviolation', \
    (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));";

/// The window size of every page: the screenshots' size.
pub const WINDOW: (u32, u32) = (1024, 600);

/// How many browsers one test process runs at once: each page test also runs QEMU and the
/// proxy, and on a 2-core machine a dozen browsers at once starve all of them.
const MAX_BROWSERS: usize = 2;

/// A place among the [`MAX_BROWSERS`] browsers allowed at once, given back when dropped.
struct BrowserSlot;

static BROWSERS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl BrowserSlot {
    /// Waits for a free place.
    fn take() -> Self {
        let (count, freed) = &BROWSERS;
        let mut running = count.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= MAX_BROWSERS {
            running = freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        BrowserSlot
    }
}

impl Drop for BrowserSlot {
    fn drop(&mut self) {
        let (count, freed) = &BROWSERS;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// A headless Chromium with its own profile directory, killed when dropped.
pub struct Chromium {
    child: Child,
    devtools: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// DevTools events read while waiting for a command's reply, in order.
    events: Vec<Value>,
    _profile: TempDir,
    /// Declared last: given back once the browser is gone.
    _slot: BrowserSlot,
}

/// One tab, attached over a flat DevTools session.
pub struct Page<'a> {
    browser: &'a mut Chromium,
    session: String,
}

/// What a page loaded over the network: its HTTP responses and its websockets.
#[derive(Debug, Default)]
pub struct NetworkLog {
    /// `(url, HTTP status, Chromium's connection id)` of each response.
    pub responses: Vec<(String, u64, u64)>,
    /// The URL of each websocket the page opened.
    pub websockets: Vec<String>,
}

impl NetworkLog {
    /// How many TCP connections the page opened: one per distinct connection id its HTTP
    /// responses came over, plus one per websocket (a websocket never shares a connection
    /// over HTTP/1.1).
    pub fn connections(&self) -> usize {
        let mut ids: Vec<u64> = self.responses.iter().map(|r| r.2).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() + self.websockets.len()
    }
}

/// The base64 SHA-256 of the test server certificate's SubjectPublicKeyInfo (what
/// `--ignore-certificate-errors-spki-list` takes), by the `openssl` CLI.
fn test_server_spki_hash() -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("openssl x509 -in \"$1\" -pubkey -noout | openssl pkey -pubin -outform DER")
        .arg("sh")
        .arg(pki().trusted.server_cert())
        .output()
        .expect("openssl is needed for the test PKI");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "openssl could not read the test server key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&out.stdout))
}

impl Chromium {
    /// Starts headless Chromium with a fresh profile; panics if it is missing or does not
    /// print its DevTools endpoint within 20 s.
    pub fn start() -> Self {
        let slot = BrowserSlot::take();
        let profile = TempDir::new("chromium");
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
            .arg(format!(
                "--ignore-certificate-errors-spki-list={}",
                test_server_spki_hash()
            ))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("chromium is needed for the browser tests (apt-get install chromium)");
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let (found, endpoint) = mpsc::channel();
        // Reads on for the browser's life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(url.trim().to_string());
                }
            }
        });
        let endpoint = match endpoint.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium printed no DevTools endpoint within {START_TIMEOUT:?}");
            }
        };
        let (devtools, _) = tungstenite::connect(endpoint.as_str()).expect("DevTools websocket");
        if let MaybeTlsStream::Plain(tcp) = devtools.get_ref() {
            tcp.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("read timeout on the DevTools socket");
        }
        Self {
            child,
            devtools,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
            _slot: slot,
        }
    }

    /// Sends one DevTools command (to `session`, or to the browser) and waits for its result;
    /// events read meanwhile are kept for [`Page::network`].
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.devtools
            .send(Message::Text(message.to_string().into()))
            .expect("send a DevTools command");
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "DevTools gave no answer to {method} within {CALL_TIMEOUT:?}"
            );
            let reply = match self.devtools.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("DevTools connection failed during {method}: {e}"),
            };
            let value: Value = serde_json::from_str(&reply).expect("DevTools sends JSON");
            if value["id"] == json!(id) {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
            if value.get("method").is_some() {
                self.events.push(value);
            }
        }
    }

    /// Opens `url` in a new tab, with the network recorded from its first request.
    pub fn open(&mut self, url: &str) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        let mut page = Page {
            browser: self,
            session,
        };
        page.call("Network.enable", json!({}));
        page.call("Page.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": RECORD_CSP_VIOLATIONS}),
        );
        page.call("Page.navigate", json!({"url": url}));
        page
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Page<'_> {
    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.browser.call(Some(&session), method, params)
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {result}"
        );
        result["result"]["value"].clone()
    }

    /// The text of the element `id` ("" when there is none).
    pub fn text(&mut self, id: &str) -> String {
        let expression = format!("document.getElementById({id:?})?.textContent ?? ''");
        self.eval(&expression).as_str().unwrap_or("").to_string()
    }

    /// Polls `expression` every 100 ms until it is true or `timeout` passes; returns whether
    /// it became true. An expression that throws (the page is still loading) counts as false.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let guarded =
            format!("(() => {{ try {{ return {expression}; }} catch (e) {{ return false; }} }})()");
        loop {
            if self.eval(&guarded) == json!(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses and releases the key `key` (a DOM key value such as `a` or `Enter`) in the
    /// focused element, as a user would.
    pub fn press(&mut self, key: &str, code: &str, key_code: u32) {
        let text = if key.chars().count() == 1 { key } else { "" };
        for kind in ["keyDown", "keyUp"] {
            let mut params = json!({"type": kind, "key": key, "code": code,
                "windowsVirtualKeyCode": key_code, "nativeVirtualKeyCode": key_code});
            if kind == "keyDown" && !text.is_empty() {
                params["text"] = json!(text);
            }
            self.call("Input.dispatchKeyEvent", params);
        }
    }

    /// Types `text` (ASCII letters, digits and spaces) key by key.
    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let (code, key_code) = match c {
                'a'..='z' => (
                    format!("Key{}", c.to_ascii_uppercase()),
                    c.to_ascii_uppercase() as u32,
                ),
                '0'..='9' => (format!("Digit{c}"), c as u32),
                ' ' => ("Space".to_string(), 32),
                _ => panic!("type_text types letters, digits and spaces, not {c:?}"),
            };
            self.press(&c.to_string(), &code, key_code);
        }
    }

    /// Resizes the page's viewport to `width`×`height` CSS pixels (the page gets a `resize`).
    pub fn resize(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// The addresses in the tab's session history (what Back and Forward go to), oldest first.
    pub fn history(&mut self) -> Vec<String> {
        let history = self.call("Page.getNavigationHistory", json!({}));
        history["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["url"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// The page's current address.
    pub fn url(&mut self) -> String {
        self.eval("location.href")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// What went wrong in the page so far: uncaught exceptions and Content-Security-Policy
    /// violations, one line each.
    pub fn problems(&mut self) -> Vec<String> {
        let violations = self.eval("window.__cspViolations ?? []");
        let mut problems: Vec<String> = violations
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| format!("CSP violation: {}", v.as_str().unwrap_or("?")))
            .collect();
        for event in self.events("Runtime.exceptionThrown") {
            let details = &event["params"]["exceptionDetails"];
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("?");
            problems.push(format!("uncaught: {text}"));
        }
        problems
    }

    /// This page's DevTools events named `method`, in order.
    fn events(&mut self, method: &str) -> Vec<Value> {
        // A round trip, so events sent before it have been read.
        self.eval("1");
        self.browser
            .events
            .iter()
            .filter(|e| e["sessionId"].as_str() == Some(&self.session) && e["method"] == method)
            .cloned()
            .collect()
    }

    /// The HTTP responses and websockets this page has had so far.
    pub fn network(&mut self) -> NetworkLog {
        let mut log = NetworkLog::default();
        for event in self.events("Network.responseReceived") {
            let response = &event["params"]["response"];
            log.responses.push((
                response["url"].as_str().unwrap_or("").to_string(),
                response["status"].as_u64().unwrap_or(0),
                response["connectionId"].as_u64().unwrap_or(0),
            ));
        }
        for event in self.events("Network.webSocketCreated") {
            log.websockets
                .push(event["params"]["url"].as_str().unwrap_or("").to_string());
        }
        log
    }
}
