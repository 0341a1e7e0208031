//! Cross-site websocket hijacking defence: a browser's `Origin` must match the `Host` it
//! connected to, or be listed in `allowed_origins`; otherwise 403 before the upgrade.

use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws::{Client, Refusal};

fn forbidden() -> Refusal {
    Refusal {
        status: 403,
        body: "consolegate: origin not allowed\n".into(),
    }
}

#[test]
fn foreign_origin_gets_403() {
    let setup = VncSetup::start();
    let refusal = Client::default()
        .origin("http://evil.example")
        .refusal(&setup.url());
    assert_eq!(refusal, forbidden());
}

#[test]
fn origin_matching_host_is_allowed() {
    let setup = VncSetup::start();
    let origin = format!("http://{}", setup.proxy.addr());
    let mut ws = Client::default().origin(&origin).open(&setup.url());
    assert_qemu_console(&mut ws);
}

#[test]
fn origin_with_same_host_but_other_port_gets_403() {
    let setup = VncSetup::start();
    let origin = format!("http://127.0.0.1:{}", setup.proxy.addr().port() + 1);
    assert_eq!(
        Client::default().origin(&origin).refusal(&setup.url()),
        forbidden()
    );
}

#[test]
fn allowed_origins_admits_listed_origins_and_refuses_others() {
    let setup = VncSetup::start_with(|c| {
        c.set(
            "allowed_origins",
            "https://console.example, https://other.example:8443",
        )
    });
    for origin in ["https://console.example", "https://other.example:8443"] {
        let mut ws = Client::default().origin(origin).open(&setup.url());
        assert_qemu_console(&mut ws);
        ws.close();
    }
    for origin in [
        "https://evil.example",
        "http://console.example",
        "https://other.example",
    ] {
        let refusal = Client::default().origin(origin).refusal(&setup.url());
        assert_eq!(refusal, forbidden(), "origin {origin}");
    }
}
