//! When the console cannot be reached, the browser learns why before the upgrade: an HTTP
//! status and a one-line reason.

use std::time::{Duration, Instant};

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::ports;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::ws::{self, Refusal};

fn refused(status: u16, reason: &str) -> Refusal {
    Refusal {
        status,
        body: format!("consolegate: {reason}\n"),
    }
}

#[test]
fn backend_port_closed_gets_502_console_unreachable() {
    let closed = ports::port();
    let proxy =
        Proxy::start(Config::new().token("closed", &format!("127.0.0.1:{}", closed.port())));
    assert_eq!(
        ws::refusal(&proxy.url("closed")),
        refused(502, "console unreachable")
    );
}

#[test]
fn backend_not_answering_gets_504_after_connect_timeout() {
    let backend = Backend::start(Behaviour::Unanswered);
    let proxy = Proxy::start(
        Config::new()
            .token("slow", &backend.addr())
            .set("connect_timeout", "1"),
    );
    let t0 = Instant::now();
    let refusal = ws::refusal(&proxy.url("slow"));
    let took = t0.elapsed();
    assert_eq!(refusal, refused(504, "console did not answer in time"));
    assert!(
        took >= Duration::from_millis(900),
        "refused after only {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "connect_timeout = 1 took {took:?}"
    );
}

#[test]
fn console_kind_no_driver_serves_gets_502() {
    let backend = Backend::start(Behaviour::Silent);
    let proxy = Proxy::start(
        Config::new()
            .fault_driver("ok")
            .token("spice", &format!("spice://{}", backend.addr())),
    );
    assert_eq!(
        ws::refusal(&proxy.url("spice")),
        refused(502, "no security driver serves spice consoles")
    );
    assert_eq!(
        backend.accepted(),
        0,
        "the proxy connected to a console no driver serves"
    );
}
