//! wss: the proxy serves TLS with the configured certificate, and a client that trusts the
//! test CA reaches the console through it.

use consolegate_tests::pki::pki;
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws::{Client, Failure};

#[test]
fn wss_with_generated_certificate_reaches_the_console() {
    let setup = VncSetup::start_with(|c| c.tls());
    let url = setup.url();
    assert!(url.starts_with("wss://"), "{url}");
    let mut ws = Client::default().open(&url);
    assert_qemu_console(&mut ws);
}

#[test]
fn wss_certificate_is_the_configured_one() {
    let setup = VncSetup::start_with(|c| c.tls());
    let client = Client {
        ca: Some(pki().rogue.ca_cert()),
        ..Client::default()
    };
    match client.connect(&setup.url()) {
        Err(Failure::Transport(e)) => assert!(
            e.contains("certificate") || e.contains("Certificate"),
            "{e}"
        ),
        other => panic!("a client trusting only another CA must fail TLS, got {other:?}"),
    }
}

#[test]
fn plain_ws_to_a_wss_listener_is_not_served() {
    let setup = VncSetup::start_with(|c| c.tls());
    let url = setup.url().replacen("wss://", "ws://", 1);
    assert!(
        Client::default().connect(&url).is_err(),
        "plain ws upgraded on a TLS listener"
    );
}
