//! `token_source = rest:URL` against a real HTTPS resolver on loopback that requires a client
//! certificate: the libvirt-console-proxy protocol, malformed tokens, lifetime rules, caching, and a
//! resolver that is down, hangs, or refuses the proxy's certificate.

mod token_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consolegate::token::{token_hash, Kind, TokenError};
use consolegate_tests::pki::{pki, CertSet};
use consolegate_tests::ports;
use consolegate_tests::resolver::{Answer, Resolver};
use token_support::{admit, open, timed};

/// `[token_rest]` with the PKI's CA and client certificate, and `extra` keys.
fn conf(pki: &CertSet, extra: &str) -> String {
    format!(
        "[token_rest]\nca_certificate = {}\nclient_certificate = {}\nclient_key = {}\n{extra}",
        pki.ca_cert().display(),
        pki.client_cert().display(),
        pki.client_key().display(),
    )
}

#[test]
fn found_unknown_expired_single_use_and_malformed_over_https() {
    let pki = &pki().trusted;
    let resolver = Resolver::start_tls();
    let past = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 5;
    resolver.answer("t1", 200, r#"{"type": "spice", "address": "10.1.2.3:5930", "insecure": false, "tlsTunnel": true, "password": "ticket"}"#);
    resolver.answer(
        "old",
        200,
        &format!(r#"{{"type": "vnc", "address": "h:1", "expires": {past}}}"#),
    );
    resolver.answer(
        "once",
        200,
        r#"{"type": "vnc", "address": "h:2", "single_use": true}"#,
    );
    resolver.answer("bad", 200, r#"{"type": "vnc", "adress": "h:3"}"#);
    resolver.answer("junk", 200, "<html>");
    resolver.answer("broken", 500, "oops");
    let src = open(&format!("rest:{}", resolver.url()), &conf(pki, ""));

    let c = src.lookup("t1").unwrap();
    assert_eq!(
        (c.kind, c.address().as_str(), c.password.as_deref()),
        (Kind::Spice, "10.1.2.3:5930", Some("ticket"))
    );
    assert_eq!(src.lookup("nope"), Err(TokenError::Unknown));
    assert_eq!(src.lookup("old"), Err(TokenError::Expired));
    assert!(src.lookup("once").unwrap().single_use);
    assert!(
        admit(&*src, "once").is_ok(),
        "a lookup alone does not consume"
    );
    assert_eq!(src.lookup("once"), Err(TokenError::AlreadyUsed));
    let location = format!(
        "reply of resolver {} for token hash {}",
        resolver.url(),
        token_hash("bad")
    );
    assert_eq!(
        src.lookup("bad"),
        Err(TokenError::Malformed {
            location,
            detail: "unknown key 'adress' (did you mean 'address'?)".into()
        })
    );
    let err = src.lookup("junk").unwrap_err().to_string();
    assert!(err.contains("not valid JSON"), "{err}");
    assert_eq!(
        src.lookup("broken"),
        Err(TokenError::Unavailable(format!(
            "resolver {} answered HTTP 500",
            resolver.url()
        )))
    );
}

#[test]
fn a_malformed_token_never_reaches_the_resolver() {
    let pki = &pki().trusted;
    let resolver = Resolver::start_tls();
    let long = "a".repeat(257);
    let malformed = [
        "..",
        ".",
        "a/b?c=d&e#f g%",
        "../admin",
        "%2e%2e",
        "",
        long.as_str(),
    ];
    for token in malformed {
        resolver.answer(token, 200, r#"{"type": "vnc", "address": "h:5900"}"#);
    }
    let src = open(&format!("rest:{}/", resolver.url()), &conf(pki, ""));
    for token in malformed {
        assert!(
            matches!(src.lookup(token), Err(TokenError::BadFormat(_))),
            "{token:?}"
        );
    }
    assert_eq!(
        resolver.paths(),
        Vec::<String>::new(),
        "no request was sent"
    );

    // The whole token alphabet reaches the resolver as one path segment.
    let token = "Ab9-._~x";
    resolver.answer(token, 200, r#"{"type": "vnc", "address": "h:5900"}"#);
    assert_eq!(src.lookup(token).unwrap().port, 5900);
    assert_eq!(resolver.paths(), ["/api/token/Ab9-._~x"]);
}

#[test]
fn without_the_client_certificate_the_resolver_refuses_clearly() {
    let pki = &pki().trusted;
    let resolver = Resolver::start_tls();
    resolver.answer("t", 200, r#"{"address": "h:1"}"#);
    let ca_only = format!(
        "[token_rest]\nca_certificate = {}\n",
        pki.ca_cert().display()
    );
    let src = open(&format!("rest:{}", resolver.url()), &ca_only);
    match src.lookup("t") {
        Err(TokenError::Unavailable(why)) => {
            assert!(
                why.starts_with(&format!("resolver {}: ", resolver.url())),
                "{why}"
            );
            assert!(why.contains("CertificateRequired"), "{why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }

    let rogue = format!(
        "[token_rest]\nca_certificate = {}\nclient_certificate = {}\nclient_key = {}\n",
        consolegate_tests::pki::pki().rogue.ca_cert().display(),
        pki.client_cert().display(),
        pki.client_key().display(),
    );
    let src = open(&format!("rest:{}", resolver.url()), &rogue);
    let err = src.lookup("t").unwrap_err().to_string();
    assert!(
        err.contains("UnknownIssuer"),
        "a server from another CA is refused: {err}"
    );
}

#[test]
fn a_resolver_that_is_down_is_unavailable_at_once() {
    let unused = ports::port();
    let url = format!("http://127.0.0.1:{}/api", unused.port());
    let src = open(&format!("rest:{url}"), "[token_rest]\ninsecure = true\n");
    let (result, took) = timed(|| src.lookup("t"));
    match result {
        Err(TokenError::Unavailable(why)) => {
            assert!(why.starts_with(&format!("resolver {url}: ")), "{why}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn a_hanging_resolver_times_out_while_other_lookups_go_on() {
    let pki = &pki().trusted;
    let resolver = Resolver::start_tls();
    resolver.set("slow", Answer::Hang(Duration::from_secs(5)));
    resolver.answer("fast", 200, r#"{"address": "h:7"}"#);
    let src = open(
        &format!("rest:{}", resolver.url()),
        &conf(pki, "timeout = 0.8\n"),
    );
    std::thread::scope(|s| {
        let slow = s.spawn(|| timed(|| src.lookup("slow")));
        std::thread::sleep(Duration::from_millis(200));
        let (fast, took) = timed(|| src.lookup("fast"));
        assert_eq!(fast.unwrap().port, 7);
        assert!(
            took < Duration::from_millis(500),
            "the second lookup waited {took:?}"
        );
        let (result, took) = slow.join().unwrap();
        assert_eq!(result, Err(TokenError::Timeout(Duration::from_millis(800))));
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_millis(1500),
            "{took:?}"
        );
    });
}

#[test]
fn positive_answers_are_cached_when_asked_but_never_single_use_ones() {
    let pki = &pki().trusted;
    let resolver = Resolver::start_tls();
    resolver.answer("t", 200, r#"{"address": "h:1"}"#);
    resolver.answer("once", 200, r#"{"address": "h:2", "single_use": true}"#);
    let src = open(
        &format!("rest:{}", resolver.url()),
        &conf(pki, "cache_seconds = 0.5\n"),
    );
    for _ in 0..3 {
        assert_eq!(src.lookup("t").unwrap().port, 1);
    }
    assert_eq!(resolver.paths().len(), 1, "answered from the cache");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(src.lookup("t").unwrap().port, 1);
    assert_eq!(
        resolver.paths().len(),
        2,
        "asked again once the answer went stale"
    );

    // A second proxy (its own source) still reaches the resolver for the single-use token.
    let other = open(
        &format!("rest:{}", resolver.url()),
        &conf(pki, "cache_seconds = 60\n"),
    );
    assert!(admit(&*src, "once").is_ok());
    assert!(
        admit(&*other, "once").is_ok(),
        "the resolver itself did not consume it"
    );
    assert_eq!(resolver.paths().len(), 4);
}

#[test]
fn configuration_mistakes_stop_start_up() {
    let pki = &pki().trusted;
    let url = "rest:https://localhost:1/api";
    let cases = [
        (
            format!(
                "[token_rest]\nclient_certificate = {}\n",
                pki.client_cert().display()
            ),
            "[token_rest] client_key: needed with client_certificate",
        ),
        (
            format!(
                "[token_rest]\nclient_certificate = {}\nclient_key = {}\n",
                pki.client_cert().display(),
                pki.server_key().display()
            ),
            "[token_rest] client_key: ",
        ),
        (
            "[token_rest]\ntimeout = 10\n".into(),
            "[token_rest] timeout: 10s is longer than connect_timeout (5s)",
        ),
        (
            "[token_rest]\ncache = 5\n".into(),
            "unknown key 'cache' in [token_rest]",
        ),
    ];
    for (conf, expected) in cases {
        let err = consolegate::token::open(url, &token_support::ini(&conf))
            .err()
            .unwrap();
        assert!(matches!(err, TokenError::Config(_)), "{err}");
        assert!(err.to_string().contains(expected), "{conf}: {err}");
    }
}
