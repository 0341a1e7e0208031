//! What a browser gets when its token is malformed or names a console outside
//! `allowed_targets`, and that nothing reaches the console then: the fake backend counts its
//! accepted connections. Also `--check-config`'s warning when `allowed_targets` is unset.

use std::time::Duration;

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::proxy::{check_config, Config, Proxy};
use consolegate_tests::wait;
use consolegate_tests::ws::{self, Client, Refusal};

/// Waits (bounded) until `backend` has accepted `n` connections; false if it never does.
fn accepted(backend: &Backend, n: u64) -> bool {
    wait::until_true(Duration::from_secs(2), || backend.accepted() >= n)
}

/// Whether `backend` still has accepted no connection after a moment (its accept loop polls
/// every 10 ms, so a connection the proxy made would be counted by then).
fn never_connected(backend: &Backend) -> bool {
    !wait::until_true(Duration::from_millis(300), || backend.accepted() > 0)
}

fn refused(status: u16, reason: &str) -> Refusal {
    Refusal {
        status,
        body: format!("consolegate: {reason}\n"),
    }
}

/// A proxy whose token file has `inside` → the backend by address and `byname` → the backend
/// as `localhost`, with `allowed_targets` set to `allowed`.
fn proxy(backend: &Backend, allowed: &str) -> Proxy {
    let by_name = backend.addr().replace("127.0.0.1", "localhost");
    Proxy::start(
        Config::new()
            .set("allowed_targets", allowed)
            .token("inside", &backend.addr())
            .token("byname", &by_name),
    )
}

#[test]
fn a_target_outside_allowed_targets_is_refused_before_connecting() {
    let backend = Backend::start(Behaviour::Silent);
    let proxy = proxy(&backend, "10.0.0.0/8, fd00::/8, hv.example");
    for token in ["inside", "byname"] {
        assert_eq!(
            ws::refusal(&proxy.url(token)),
            refused(403, "console not allowed"),
            "{token}"
        );
    }
    assert!(never_connected(&backend), "the console saw no connection");
    let line = proxy.wait_for_log(
        "console target refused: 127.0.0.1 is outside allowed_targets",
        Duration::from_secs(2),
    );
    assert!(line.is_some(), "the log names the target:\n{}", proxy.log());
    let line = proxy.wait_for_log(
        "console target refused: localhost is not listed in allowed_targets and resolves to",
        Duration::from_secs(2),
    );
    assert!(line.is_some(), "the log names the host:\n{}", proxy.log());
}

#[test]
fn a_target_inside_allowed_targets_is_connected() {
    let backend = Backend::start(Behaviour::Silent);
    let proxy = proxy(&backend, "10.0.0.0/8, 127.0.0.1/32");
    let ws = Client::default().open(&proxy.url("inside"));
    ws.close();
    assert!(accepted(&backend, 1), "the console saw the connection");
}

#[test]
fn a_name_is_allowed_by_name_or_when_every_address_is_inside() {
    let backend = Backend::start(Behaviour::Silent);
    // `localhost` may resolve to ::1 as well as 127.0.0.1: both are listed.
    for allowed in ["LocalHost.", "127.0.0.0/8, ::1"] {
        let proxy = proxy(&backend, allowed);
        Client::default().open(&proxy.url("byname")).close();
    }
    assert!(accepted(&backend, 2), "{}", backend.accepted());
    let before = backend.accepted();
    let proxy = proxy(&backend, "::1");
    assert_eq!(
        ws::refusal(&proxy.url("byname")),
        refused(403, "console not allowed"),
        "localhost also resolves to 127.0.0.1, which is not listed"
    );
    assert_eq!(backend.accepted(), before);
}

#[test]
fn a_malformed_token_gets_400_and_never_reaches_the_console() {
    let backend = Backend::start(Behaviour::Silent);
    let proxy = Proxy::start(
        Config::new()
            .token("..", &backend.addr())
            .token("ok", &backend.addr()),
    );
    let long = "a".repeat(300);
    for token in ["..", "%2E%2E", "a%20b", "a%2Fb", long.as_str()] {
        assert_eq!(
            ws::refusal(&proxy.url(token)),
            refused(400, "malformed token"),
            "{token}"
        );
    }
    assert!(never_connected(&backend));
    let line = proxy.wait_for_log("token refused: malformed token: ", Duration::from_secs(2));
    assert!(line.is_some(), "{}", proxy.log());
    assert!(!proxy.log().contains(&long), "the token is never logged");
    Client::default().open(&proxy.url("ok")).close();
    assert!(accepted(&backend, 1), "a well-formed token still works");
}

#[test]
fn check_config_warns_when_allowed_targets_is_unset() {
    const WARNING: &str = "WARNING: allowed_targets is not set";
    let (code, out) = check_config(&Config::new());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(WARNING), "{out}");

    let (code, out) = check_config(&Config::new().set("allowed_targets", "10.0.0.0/8"));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains(WARNING), "{out}");

    let (code, out) = check_config(&Config::new().set("allowed_targets", "10.0.0.0/99"));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("configuration key 'allowed_targets': '10.0.0.0/99' is not a CIDR"),
        "{out}"
    );
}
