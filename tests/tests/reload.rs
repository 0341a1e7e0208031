//! Reloading without a restart: the token file on SIGHUP and on its own within about a second
//! of a change, the TLS certificate on SIGHUP; running sessions are not dropped.

use std::fs;
use std::time::Duration;

use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb;
use consolegate_tests::setup::{assert_qemu_console, VncSetup, TOKEN};
use consolegate_tests::wait;
use consolegate_tests::ws::{self, Client, Failure};

const NEW_TOKEN: &str = "tok-added-later-5e2c";

/// Whether `token` opens a session within `timeout`.
fn token_works_within(proxy: &Proxy, token: &str, timeout: Duration) -> bool {
    wait::until_true(timeout, || {
        Client::default().connect(&proxy.url(token)).is_ok()
    })
}

#[test]
fn sighup_reloads_the_token_file() {
    let setup = VncSetup::start();
    assert_eq!(ws::refusal(&setup.proxy.url(NEW_TOKEN)).status, 404);
    let target = setup.qemu.addr();
    setup
        .proxy
        .write_tokens(&format!("{TOKEN}: {target}\n{NEW_TOKEN}: {target}\n"));
    setup.proxy.sighup();
    assert!(
        token_works_within(&setup.proxy, NEW_TOKEN, Duration::from_secs(3)),
        "the added token is still refused after SIGHUP:\n{}",
        setup.proxy.log()
    );
    let mut ws = ws::open(&setup.proxy.url(NEW_TOKEN));
    assert_qemu_console(&mut ws);
}

#[test]
fn changed_token_file_is_reloaded_without_a_signal() {
    let setup = VncSetup::start();
    let target = setup.qemu.addr();
    setup.proxy.write_tokens(&format!(
        "# added\n{TOKEN}: {target}\n{NEW_TOKEN}: {target}\n"
    ));
    assert!(
        token_works_within(&setup.proxy, NEW_TOKEN, Duration::from_secs(3)),
        "the added token was not picked up within 3 s:\n{}",
        setup.proxy.log()
    );
}

#[test]
fn removed_token_is_refused_but_its_running_session_continues() {
    let setup = VncSetup::start();
    let mut ws = ws::open(&setup.url());
    let init = assert_qemu_console(&mut ws);
    setup
        .proxy
        .write_tokens(&format!("{NEW_TOKEN}: {}\n", setup.qemu.addr()));
    setup.proxy.sighup();
    let gone = wait::until_true(
        Duration::from_secs(3),
        || matches!(Client::default().connect(&setup.url()), Err(Failure::Refused(r)) if r.status == 404),
    );
    assert!(gone, "the removed token still works");
    rfb::request_update(&mut ws, init.width, init.height).unwrap();
    assert!(rfb::read_update_header(&mut ws).expect("the old session still relays") >= 1);
}

#[test]
fn sighup_reloads_the_tls_certificate() {
    let qemu = Qemu::start(Mode::VncNone);
    let config = Config::new().token(TOKEN, &qemu.addr()).tls();
    let cert = config.dir().join("cert.pem");
    let key = config.dir().join("key.pem");
    fs::copy(pki().trusted.server_cert(), &cert).unwrap();
    fs::copy(pki().trusted.server_key(), &key).unwrap();
    let config = config
        .set("ssl_certificate", &cert.display().to_string())
        .set("ssl_key", &key.display().to_string());
    let proxy = Proxy::start(config);
    let trusting_rogue = Client {
        ca: Some(pki().rogue.ca_cert()),
        ..Client::default()
    };
    assert!(Client::default().connect(&proxy.url(TOKEN)).is_ok());
    assert!(trusting_rogue.connect(&proxy.url(TOKEN)).is_err());

    fs::copy(pki().rogue.server_cert(), &cert).unwrap();
    fs::copy(pki().rogue.server_key(), &key).unwrap();
    proxy.sighup();
    let switched = wait::until_true(Duration::from_secs(3), || {
        trusting_rogue.connect(&proxy.url(TOKEN)).is_ok()
    });
    assert!(
        switched,
        "the new certificate is not served after SIGHUP:\n{}",
        proxy.log()
    );
    assert!(
        Client::default().connect(&proxy.url(TOKEN)).is_err(),
        "the old certificate is still served"
    );
}
