//! The console pages (`web/`: `vnc.html`, `spice.html`, `serial.html`) in a real headless
//! Chromium, served over wss by consolegate with the test certificate, reaching real QEMU
//! consoles through the TLS drivers: what the user sees on each page (status line, name,
//! canvas, terminal text, refusal reasons), that markup from the server stays text, and that
//! the token leaves the address bar once connected. Each test saves what the page looked like
//! in `target/screenshots/` (the ones in `docs/screenshots/` are copies).

use std::fs;
use std::time::Duration;

use serde_json::{json, Value};

use consolegate_tests::browser::{Chromium, Page};
use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{profile_dir, Config, Proxy};
use consolegate_tests::qemu::{Mode, Options, Qemu};
use consolegate_tests::reasons::{assert_close_reason, assert_rfb_reason};
use consolegate_tests::scratch::TempDir;
use consolegate_tests::web::web_dir;

/// How long a page may take to reach a final state.
const PAGE_TIMEOUT: Duration = Duration::from_secs(15);

/// A proxy serving the pages over wss, with the configuration `customize` makes, and the web
/// directory it serves (kept as long as the proxy).
struct PageProxy {
    proxy: Proxy,
    _web: TempDir,
}

impl PageProxy {
    fn start(customize: impl FnOnce(Config) -> Config) -> Self {
        let web = web_dir();
        let config = customize(
            Config::new()
                .tls()
                .set("web", &web.path().display().to_string()),
        );
        Self {
            proxy: Proxy::start(config),
            _web: web,
        }
    }

    /// `https://127.0.0.1:PORT/` + `page_and_query`.
    fn url(&self, page_and_query: &str) -> String {
        format!("https://{}/{page_and_query}", self.proxy.addr())
    }
}

/// Writes a JSON token file holding `token` as `console` and points the proxy at it.
fn json_tokens(config: Config, token: &str, console: Value) -> Config {
    let path = config.dir().join("tokens.json");
    fs::write(&path, json!({ token: console }).to_string()).expect("write the token file");
    config.set("token_source", &format!("json:{}", path.display()))
}

/// A proxy whose JSON token `token` opens QEMU's SPICE TLS port through `spice_tls`, with
/// `key: value` added to the console (`single_use`, `expires`).
fn spice_proxy(qemu: &Qemu, token: &str, key: &str, value: Value) -> PageProxy {
    PageProxy::start(|c| {
        let mut console = json!({"type": "spice", "address": qemu.addr()});
        console[key] = value;
        json_tokens(c.trusted_tls_drivers("spice_tls"), token, console)
    })
}

/// Waits until the page's status line says `state` (`connected`, `disconnected`); panics
/// with what the page shows otherwise.
fn wait_state(page: &mut Page, state: &str) {
    let expression = format!("document.body.dataset.state === {state:?}");
    if !page.wait_for(&expression, PAGE_TIMEOUT) {
        panic!(
            "the page never said {state:?}: status {:?}, reason {:?}",
            page.text("status"),
            page.text("reason")
        );
    }
}

/// Waits until the page is disconnected with a non-empty reason, and returns the reason.
fn refusal_reason(page: &mut Page) -> String {
    let shown = page.wait_for(
        "document.body.dataset.state === 'disconnected' && \
         document.getElementById('reason').textContent !== ''",
        PAGE_TIMEOUT,
    );
    assert!(
        shown,
        "no refusal reason on the page: status {:?}, reason {:?}",
        page.text("status"),
        page.text("reason")
    );
    page.text("reason")
}

/// `{w, h, colours}` of the first canvas under `selector`: its size and how many distinct
/// colours a sample of its pixels has (null while there is no canvas).
fn canvas_expression(selector: &str) -> String {
    format!(
        "(() => {{ const c = document.querySelector({selector:?}); if (!c || !c.width) return null; \
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
         const s = new Set(); for (let i = 0; i < d.length; i += 4 * 31) \
         s.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); \
         return {{w: c.width, h: c.height, colours: s.size}}; }})()"
    )
}

/// Waits until the canvas under `selector` is `width`×`height` and not one colour; returns
/// what it last was.
fn wait_canvas(page: &mut Page, selector: &str, width: u64, height: u64) -> Value {
    let expression = canvas_expression(selector);
    let mut last = Value::Null;
    let drawn = page.wait_for(
        &format!(
            "(() => {{ const c = {expression}; return !!c && c.w === {width} && \
             c.h === {height} && c.colours > 1; }})()"
        ),
        PAGE_TIMEOUT,
    );
    if !drawn {
        last = page.eval(&expression);
    }
    assert!(
        drawn,
        "canvas {selector} is not {width}x{height} with more than one colour: {last}"
    );
    page.eval(&expression)
}

/// Saves a screenshot as `target/screenshots/NAME.png`.
fn screenshot(page: &mut Page, name: &str) {
    let dir = profile_dir()
        .parent()
        .map(|target| target.join("screenshots"))
        .unwrap_or_else(|| profile_dir().join("screenshots"));
    page.screenshot(&dir.join(format!("{name}.png")));
}

/// Asserts that the page threw nothing and broke no Content-Security-Policy rule.
fn assert_no_problems(page: &mut Page) {
    let problems = page.problems();
    assert!(problems.is_empty(), "the page had problems: {problems:#?}");
}

/// Asserts that neither the address bar nor the tab's history has the token any more.
fn assert_token_gone(page: &mut Page, token: &str) {
    let url = page.url();
    assert!(
        !url.contains("token=") && !url.contains(token),
        "the token is still in the address: {url}"
    );
    let history = page.history();
    assert!(
        history.iter().all(|u| !u.contains(token)),
        "the token is still in the history: {history:?}"
    );
}

/// QEMU with a VeNCrypt X509None console (client certificate required), named `name`
/// (QEMU's `-name`: the desktop name becomes `QEMU (NAME)`).
fn vencrypt_qemu(name: &str) -> Qemu {
    Qemu::start_with(
        Mode::VencryptX509None,
        Options {
            name: Some(name.into()),
            ..Options::default()
        },
    )
}

/// A proxy whose `token` opens `KIND://` QEMU's console through the TLS `driver`, which
/// trusts the test PKI and presents its client certificate; `customize` adds to it.
fn console_proxy(
    qemu: &Qemu,
    driver: &str,
    kind: &str,
    token: &str,
    customize: impl FnOnce(Config) -> Config,
) -> PageProxy {
    PageProxy::start(|c| {
        customize(
            c.trusted_tls_drivers(driver)
                .token(token, &format!("{kind}://{}", qemu.addr())),
        )
    })
}

/// Opens `PAGE?token=TOKEN` and waits until it says connected.
fn connected_page<'a>(
    chromium: &'a mut Chromium,
    server: &PageProxy,
    page: &str,
    token: &str,
) -> Page<'a> {
    let mut page = chromium.open(&server.url(&format!("{page}?token={token}")));
    wait_state(&mut page, "connected");
    page
}

#[test]
fn vnc_page_through_vencrypt_shows_qemus_name_and_screen_and_survives_keys() {
    let qemu = vencrypt_qemu("pages-vm");
    let token = "vnc-page-7d41c9";
    let server = console_proxy(&qemu, "vencrypt", "vnc", token, |c| c);
    let mut chromium = Chromium::start();
    let mut page = connected_page(&mut chromium, &server, "vnc.html", token);
    assert_eq!(page.text("status"), "connected");
    assert_eq!(page.text("name"), "QEMU (pages-vm)");
    wait_canvas(&mut page, "#screen canvas", 720, 400);
    assert_token_gone(&mut page, token);

    // Ctrl-Alt-Del from the button, then a key typed into the console.
    page.eval("document.getElementById('ctrlaltdel').click()");
    page.eval("document.querySelector('#screen canvas').focus()");
    page.press("a", "KeyA", 65);
    // Text typed as key presses from the Type field (newline as Return).
    page.eval(
        "document.getElementById('paste-text').value = 'ls -l\\n'; \
         document.getElementById('paste').requestSubmit()",
    );
    assert_eq!(
        page.eval("document.getElementById('paste-text').value"),
        json!(""),
        "the Type field was not sent"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(page.text("status"), "connected", "{}", page.text("reason"));
    wait_canvas(&mut page, "#screen canvas", 720, 400);
    assert_no_problems(&mut page);
    screenshot(&mut page, "vnc");

    // The canvas is scaled to the window: 720x400 shown in a 480-pixel-wide one.
    page.resize(480, 400);
    let shown = "document.querySelector('#screen canvas').getBoundingClientRect().width";
    let scaled = page.wait_for(&format!("{shown} > 0 && {shown} <= 480"), PAGE_TIMEOUT);
    assert!(scaled, "the canvas is shown {} wide", page.eval(shown));
    drop(chromium);
    let audit = server
        .proxy
        .wait_for_log("driver=vencrypt", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no vencrypt session in the log: {}", server.proxy.log()));
    assert!(!audit.contains(token), "the token reached the log: {audit}");
}

#[test]
fn vnc_page_shows_why_the_session_ended_and_reconnects_with_the_token_it_kept() {
    let first = vencrypt_qemu("first-vm");
    let token = "vnc-reconnect-6f0a";
    let server = console_proxy(&first, "vencrypt", "vnc", token, |c| c);
    let mut chromium = Chromium::start();
    let mut page = connected_page(&mut chromium, &server, "vnc.html", token);
    assert_eq!(page.text("name"), "QEMU (first-vm)");
    assert_token_gone(&mut page, token);

    // The VM is killed; the token now opens another one. Whether the proxy sees the TLS end
    // cleanly or the connection reset depends on timing: either reason is shown as sent.
    drop(first);
    let reason = refusal_reason(&mut page);
    if reason != "console closed" {
        assert_close_reason(&reason, "the console connection failed");
    }
    let second = vencrypt_qemu("second-vm");
    server
        .proxy
        .write_tokens(&format!("{token}: vnc://{}\n", second.addr()));
    server.proxy.sighup();
    assert!(server
        .proxy
        .wait_for_log("SIGHUP: reloading", Duration::from_secs(5))
        .is_some());

    assert_eq!(
        page.eval("document.getElementById('reconnect').hidden"),
        json!(false)
    );
    page.eval("document.getElementById('reconnect').click()");
    wait_state(&mut page, "connected");
    assert_eq!(page.text("name"), "QEMU (second-vm)");
    assert_no_problems(&mut page);
}

#[test]
fn pages_take_a_websocket_path_from_the_address_and_say_what_is_wrong_with_one() {
    let qemu = vencrypt_qemu("path-vm");
    let token = "vnc-path-1c9e";
    let server = console_proxy(&qemu, "vencrypt", "vnc", token, |c| c);
    let mut chromium = Chromium::start();
    let mut page = connected_page(
        &mut chromium,
        &server,
        "vnc.html",
        &format!("{token}&path=console/ws"),
    );
    let websockets = page.network().websockets;
    let expected = format!("wss://{}/console/ws?token={token}", server.proxy.addr());
    assert_eq!(websockets, [expected]);
    assert_eq!(page.url(), server.url("vnc.html?path=console%2Fws"));
    drop(page);

    let mut page =
        chromium.open(&server.url("serial.html?path=https://elsewhere.example/ws&token=t"));
    assert_eq!(
        refusal_reason(&mut page),
        "the path in the address leaves this page's origin"
    );
    let mut page = chromium.open(&server.url("spice.html"));
    assert_eq!(
        refusal_reason(&mut page),
        "no token in the address: open this page as spice.html?token=..."
    );
    assert!(page.network().websockets.is_empty());
}

#[test]
fn vnc_page_shows_markup_in_the_desktop_name_as_text_and_runs_no_script() {
    let markup = "<img src=x onerror=window.pwned=1><b>bold</b>";
    // `guest=`, so that QEMU takes the `=` inside the markup as part of the name.
    let qemu = vencrypt_qemu(&format!("guest={markup}"));
    let token = "vnc-markup-2b9f0e";
    let server = console_proxy(&qemu, "vencrypt", "vnc", token, |c| c);
    let mut chromium = Chromium::start();
    let mut page = connected_page(&mut chromium, &server, "vnc.html", token);
    assert_eq!(page.text("name"), format!("QEMU ({markup})"));
    assert_eq!(
        page.eval("document.querySelectorAll('img, b').length"),
        json!(0),
        "the desktop name became elements"
    );
    assert_eq!(page.eval("typeof window.pwned"), json!("undefined"));
    assert_no_problems(&mut page);
    assert_eq!(
        page.eval("document.title"),
        json!(format!("QEMU ({markup}) - VNC console"))
    );
}

#[test]
fn spice_page_opens_every_channel_with_one_single_use_token() {
    let qemu = Qemu::start(Mode::SpiceTlsOnly(None));
    let token = "spice-page-5e8a13";
    let server = spice_proxy(&qemu, token, "single_use", json!(true));
    let mut chromium = Chromium::start();
    let mut page = connected_page(&mut chromium, &server, "spice.html", token);
    wait_canvas(&mut page, "#spice-screen canvas", 720, 400);
    let websockets = page.network().websockets;
    assert!(
        websockets.len() >= 3,
        "spice-html5 opened {} channels: {websockets:?}",
        websockets.len()
    );
    assert_token_gone(&mut page, token);
    assert_eq!(page.text("status"), "connected", "{}", page.text("reason"));
    assert_no_problems(&mut page);
    screenshot(&mut page, "spice");
}

#[test]
fn serial_page_echoes_what_is_typed_through_the_echo_guest() {
    let qemu = Qemu::start(Mode::SerialTls);
    let token = "serial-page-c07d2a";
    let server = console_proxy(&qemu, "spice_tls", "serial", token, |c| c);
    let mut chromium = Chromium::start();
    let mut page = connected_page(&mut chromium, &server, "serial.html", token);
    assert_token_gone(&mut page, token);
    // One key press is one websocket frame: far below QEMU 7.2's 14-byte TLS record limit.
    let typed = "hello console 42";
    page.eval("document.querySelector('#terminal textarea').focus()");
    page.type_text(typed);
    let echoed = page.wait_for(
        &format!("document.querySelector('.xterm-rows').textContent.includes({typed:?})"),
        PAGE_TIMEOUT,
    );
    assert!(
        echoed,
        "the terminal shows {:?}",
        page.eval("document.querySelector('.xterm-rows').textContent")
    );
    assert_no_problems(&mut page);
    screenshot(&mut page, "serial");

    // The terminal follows the window.
    let rows = "document.querySelectorAll('.xterm-rows > div').length";
    let before = page.eval(rows).as_u64().unwrap_or(0);
    page.resize(640, 240);
    let fitted = page.wait_for(&format!("{rows} < {before} && {rows} > 0"), PAGE_TIMEOUT);
    assert!(
        fitted,
        "the terminal kept {} of its {before} rows in a smaller window",
        page.eval(rows)
    );
}

#[test]
fn vnc_page_with_an_unknown_token_says_so() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let server = console_proxy(&qemu, "vencrypt", "vnc", "the-real-token", |c| c);
    let mut chromium = Chromium::start();
    let mut page = chromium.open(&server.url("vnc.html?token=no-such-token"));
    assert_eq!(
        refusal_reason(&mut page),
        "unknown or expired token (HTTP 404)"
    );
    assert_eq!(page.text("status"), "disconnected");
    assert_no_problems(&mut page);
    screenshot(&mut page, "vnc-unknown-token");
}

#[test]
fn spice_page_with_an_expired_token_says_so() {
    let qemu = Qemu::start(Mode::SpiceTlsOnly(None));
    let token = "spice-expired-0b3c";
    let server = spice_proxy(&qemu, token, "expires", json!(1));
    let mut chromium = Chromium::start();
    let mut page = chromium.open(&server.url(&format!("spice.html?token={token}")));
    assert_eq!(
        refusal_reason(&mut page),
        "unknown or expired token (HTTP 404)"
    );
    assert_no_problems(&mut page);
}

/// The reason `page` shows for a console in `mode` reached through `driver`, which trusts the
/// wrong CA (the test PKI's rogue one) for the hypervisor.
fn wrong_ca_reason(mode: Mode, driver: &str, kind: &str, page: &str) -> String {
    let qemu = Qemu::start(mode);
    let token = "wrong-ca-91fe";
    let server = PageProxy::start(|c| {
        c.tls_drivers(driver, &pki().rogue, Some(&pki().trusted))
            .token(token, &format!("{kind}://{}", qemu.addr()))
    });
    let mut chromium = Chromium::start();
    let mut page = chromium.open(&server.url(&format!("{page}?token={token}")));
    let reason = refusal_reason(&mut page);
    assert_eq!(page.text("status"), "disconnected");
    assert_no_problems(&mut page);
    reason
}

#[test]
fn vnc_page_with_the_wrong_ca_for_the_hypervisor_shows_the_drivers_rfb_reason() {
    let reason = wrong_ca_reason(Mode::VencryptX509None, "vencrypt", "vnc", "vnc.html");
    assert_rfb_reason(&reason, "the secure connection to the console failed");
}

#[test]
fn serial_page_with_the_wrong_ca_for_the_hypervisor_shows_the_close_reason() {
    let reason = wrong_ca_reason(Mode::SerialTls, "spice_tls", "serial", "serial.html");
    assert_close_reason(&reason, "the secure connection to the console failed");
}

#[test]
fn serial_page_from_a_refused_origin_says_so() {
    let qemu = Qemu::start(Mode::SerialTls);
    let token = "serial-origin-4a7c";
    let server = console_proxy(&qemu, "spice_tls", "serial", token, |c| {
        c.set("allowed_origins", "https://console.example")
    });
    let mut chromium = Chromium::start();
    let mut page = chromium.open(&server.url(&format!("serial.html?token={token}")));
    assert_eq!(refusal_reason(&mut page), "origin not allowed (HTTP 403)");
    assert_no_problems(&mut page);
}

#[test]
fn cold_load_of_the_vnc_page_is_all_served_and_its_connections_are_counted() {
    let qemu = Qemu::start(Mode::VencryptX509None);
    let token = "vnc-cold-load-33d0";
    let server = console_proxy(&qemu, "vencrypt", "vnc", token, |c| c);
    let mut chromium = Chromium::start();
    let mut page = connected_page(&mut chromium, &server, "vnc.html", token);
    let network = page.network();
    let failed: Vec<_> = network.responses.iter().filter(|r| r.1 != 200).collect();
    assert!(failed.is_empty(), "requests that failed: {failed:?}");
    assert_no_problems(&mut page);
    assert_eq!(network.websockets.len(), 1, "{:?}", network.websockets);
    assert!(
        network
            .responses
            .iter()
            .any(|r| r.0.ends_with("/core/rfb.js")),
        "noVNC was not loaded: {:?}",
        network.responses
    );
    // The figure docs/console-pages.md quotes.
    eprintln!(
        "cold load of vnc.html over wss: {} HTTP responses and {} websocket over {} TCP connections",
        network.responses.len(),
        network.websockets.len(),
        network.connections()
    );
}
