//! `token_source = redis://…` and `rediss://…` against a real `redis-server` on loopback:
//! websockify's layouts and the JSON console object, lifetime rules, lookups that never consume
//! and the atomic single-use consume raced by two "proxies", and a Redis that is down or hangs.

mod token_support;

use std::net::TcpListener;
use std::sync::Barrier;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consolegate::token::{token_hash, Kind, TokenError};
use consolegate_tests::pki::pki;
use consolegate_tests::ports;
use consolegate_tests::redis::Redis;
use token_support::{admit, open, timed};

const PREFIX: &str = "[token_redis]\nprefix = consolegate:\n";

/// websockify's bare keys, knowingly.
const UNPREFIXED: &str = "[token_redis]\nallow_unprefixed_keys_unsafe = true\n";

/// `[token_redis]` with the prefix and a lookup timeout of half a second.
const PREFIX_SHORT_TIMEOUT: &str = "[token_redis]\nprefix = consolegate:\ntimeout = 0.5\n";

#[test]
fn websockify_layouts_and_the_console_object() {
    let redis = Redis::start();
    redis.set("ws-json", r#"{"host": "10.0.0.5:5901"}"#);
    redis.set("ws-plain", "10.0.0.6:5902");
    redis.set("url", "spice://:ticket@10.0.0.7:5930");
    redis.set(
        "full",
        r#"{"type": "serial", "address": "[fd00::1]:7000", "username": "u", "password": "p"}"#,
    );
    let err = consolegate::token::open(&redis.url(), &token_support::ini(""))
        .err()
        .expect("an empty prefix needs the unsafe option");
    assert!(
        err.to_string()
            .contains("[token_redis] prefix: must be set"),
        "{err}"
    );
    let src = open(&redis.url(), UNPREFIXED);
    assert_eq!(src.describe(), redis.url());

    assert_eq!(src.lookup("ws-json").unwrap().address(), "10.0.0.5:5901");
    assert_eq!(src.lookup("ws-plain").unwrap().port, 5902);
    let c = src.lookup("url").unwrap();
    assert_eq!(
        (c.kind, c.password.as_deref()),
        (Kind::Spice, Some("ticket"))
    );
    let c = src.lookup("full").unwrap();
    assert_eq!(
        (c.kind, c.address().as_str(), c.username.as_deref()),
        (Kind::Serial, "[fd00::1]:7000", Some("u"))
    );
    assert_eq!(src.lookup("absent"), Err(TokenError::Unknown));
}

#[test]
fn prefix_expiry_single_use_and_malformed() {
    let redis = Redis::start();
    let past = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    redis.set("consolegate:t", r#"{"type": "vnc", "address": "h:1"}"#);
    redis.set("t2", r#"{"type": "vnc", "address": "h:2"}"#);
    redis.set(
        "consolegate:old",
        &format!(r#"{{"address": "h:3", "expires": {past}}}"#),
    );
    redis.set(
        "consolegate:once",
        r#"{"type": "vnc", "address": "h:4", "single_use": true}"#,
    );
    redis.set(
        "consolegate:bad",
        r#"{"type": "vnc", "address": "h:99999"}"#,
    );
    redis.set("consolegate:worse", r#"{"type": "vnc", "#);
    redis::cmd("SET")
        .arg("consolegate:ttl")
        .arg("h:5")
        .arg("PX")
        .arg(300)
        .exec(&mut cli(&redis))
        .unwrap();
    let src = open(&redis.url(), PREFIX);

    assert_eq!(src.lookup("t").unwrap().port, 1);
    assert_eq!(
        src.lookup("t2"),
        Err(TokenError::Unknown),
        "keys without the prefix are not tokens"
    );
    assert_eq!(src.lookup("old"), Err(TokenError::Expired));

    let once = src.lookup("once").unwrap();
    assert!(once.single_use);
    let other_proxy = open(&redis.url(), PREFIX);
    assert_eq!(other_proxy.lookup("once"), Ok(once.clone()));
    assert!(
        redis.exists("consolegate:once"),
        "a lookup alone consumes nothing"
    );
    assert_eq!(src.consume("once", &once), Ok(()));
    assert!(
        !redis.exists("consolegate:once"),
        "consumed in Redis, for every proxy"
    );
    assert_eq!(src.lookup("once"), Err(TokenError::AlreadyUsed));
    assert_eq!(other_proxy.lookup("once"), Err(TokenError::Unknown));
    assert_eq!(
        other_proxy.consume("once", &once),
        Err(TokenError::AlreadyUsed),
        "the other proxy looked it up before, but the key is gone"
    );

    let location = format!(
        "{} key 'consolegate:' + token hash {}",
        redis.url(),
        token_hash("bad")
    );
    assert_eq!(
        src.lookup("bad"),
        Err(TokenError::Malformed {
            location,
            detail: "address: bad port '99999'".into()
        })
    );
    let err = src.lookup("worse").unwrap_err().to_string();
    assert!(err.contains("not valid JSON (Eof error"), "{err}");

    assert_eq!(src.lookup("ttl").unwrap().port, 5);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        src.lookup("ttl"),
        Err(TokenError::Unknown),
        "Redis's own expiry makes it unknown"
    );
}

#[test]
fn two_proxies_racing_on_a_single_use_token_admit_exactly_one() {
    let redis = Redis::start();
    let proxies = [open(&redis.url(), PREFIX), open(&redis.url(), PREFIX)];
    for round in 0..3 {
        let token = format!("race-{round}");
        redis.set(
            &format!("consolegate:{token}"),
            r#"{"type": "vnc", "address": "h:1", "single_use": true}"#,
        );
        let start = Barrier::new(100);
        let results: Vec<Result<_, TokenError>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..100)
                .map(|i| {
                    let (proxy, start, token) = (&proxies[i % 2], &start, &token);
                    s.spawn(move || {
                        start.wait();
                        admit(&**proxy, token)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        assert!(
            results.iter().all(|r| matches!(
                r,
                Ok(_) | Err(TokenError::Unknown | TokenError::AlreadyUsed)
            )),
            "round {round}: {results:?}"
        );
    }
}

#[test]
fn of_many_callers_that_looked_a_token_up_exactly_one_consumes_it() {
    let redis = Redis::start();
    let proxies = [open(&redis.url(), PREFIX), open(&redis.url(), PREFIX)];
    redis.set(
        "consolegate:late",
        r#"{"type": "vnc", "address": "h:1", "single_use": true}"#,
    );
    // Every caller has looked the token up before any consumes it.
    let looked_up = Barrier::new(20);
    let results: Vec<Result<(), TokenError>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let (proxy, looked_up) = (&proxies[i % 2], &looked_up);
                s.spawn(move || {
                    let console = proxy.lookup("late").expect("nobody consumed it yet");
                    looked_up.wait();
                    proxy.consume("late", &console)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(TokenError::AlreadyUsed))),
        "{results:?}"
    );
    assert!(!redis.exists("consolegate:late"));
}

#[test]
fn a_redis_that_is_down_is_unavailable_at_once() {
    let unused = ports::port();
    let url = format!("redis://127.0.0.1:{}/0", unused.port());
    let src = open(&url, PREFIX);
    let (result, took) = timed(|| src.lookup("t"));
    match result {
        Err(TokenError::Unavailable(why)) => assert!(why.starts_with(&format!("{url}: ")), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn a_hanging_redis_times_out_and_later_answers_stay_in_step() {
    let redis = Redis::start();
    redis.set("consolegate:a", "h:1");
    redis.set("consolegate:b", "h:2");
    let src = open(&redis.url(), PREFIX_SHORT_TIMEOUT);
    assert_eq!(
        src.lookup("a").unwrap().port,
        1,
        "a pooled connection exists"
    );

    // DEBUG SLEEP blocks the whole server, as a stuck Redis would.
    let sleeper = std::thread::spawn({
        let mut cli = cli(&redis);
        move || redis::cmd("DEBUG").arg("SLEEP").arg(1.5).exec(&mut cli)
    });
    std::thread::sleep(Duration::from_millis(100));
    let (result, took) = timed(|| src.lookup("a"));
    assert_eq!(result, Err(TokenError::Timeout(Duration::from_millis(500))));
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    sleeper.join().unwrap().unwrap();

    // The connection that timed out is gone: its late reply cannot answer this lookup.
    assert_eq!(src.lookup("b").unwrap().port, 2);
    assert_eq!(src.lookup("a").unwrap().port, 1);
}

#[test]
fn a_server_that_accepts_but_never_answers_times_out_without_blocking_others() {
    let black_hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!(
        "redis://127.0.0.1:{}/0",
        black_hole.local_addr().unwrap().port()
    );
    let redis = Redis::start();
    redis.set("consolegate:t", "h:9");
    let stuck = open(&silent, PREFIX_SHORT_TIMEOUT);
    let healthy = open(&redis.url(), PREFIX_SHORT_TIMEOUT);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| timed(|| stuck.lookup("t")));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(healthy.lookup("t").unwrap().port, 9);
        let (result, took) = waiting.join().unwrap();
        assert_eq!(result, Err(TokenError::Timeout(Duration::from_millis(500))));
        assert!(took < Duration::from_millis(1000), "{took:?}");
    });
}

#[test]
fn rediss_with_a_client_certificate() {
    let pki = &pki().trusted;
    let redis = Redis::start_tls();
    redis.set("consolegate:t", r#"{"type": "vnc", "address": "h:5901"}"#);
    let conf = format!(
        "{PREFIX}ca_certificate = {}\nclient_certificate = {}\nclient_key = {}\n",
        pki.ca_cert().display(),
        pki.client_cert().display(),
        pki.client_key().display(),
    );
    let src = open(&redis.tls_url(), &conf);
    assert_eq!(src.lookup("t").unwrap().port, 5901);

    let ca_only = format!("{PREFIX}ca_certificate = {}\n", pki.ca_cert().display());
    let src = open(&redis.tls_url(), &ca_only);
    match src.lookup("t") {
        Err(TokenError::Unavailable(why)) => assert!(why.starts_with(&redis.tls_url()), "{why}"),
        other => panic!("without a client certificate: expected Unavailable, got {other:?}"),
    }
}

#[test]
fn tls_files_with_plain_redis_are_a_configuration_error() {
    let pki = &pki().trusted;
    let conf = format!("{PREFIX}ca_certificate = {}\n", pki.ca_cert().display());
    let err = consolegate::token::open("redis://127.0.0.1:1/0", &token_support::ini(&conf))
        .err()
        .unwrap();
    assert!(err.to_string().contains("use rediss:// for TLS"), "{err}");
}

#[test]
fn the_url_s_user_password_and_database_are_used_and_never_shown() {
    let redis = Redis::start();
    let mut cli = cli(&redis);
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "proxy",
            "on",
            ">s3cret",
            "~consolegate:*",
            "+@all",
        ])
        .exec(&mut cli)
        .unwrap();
    redis::cmd("SELECT").arg(2).exec(&mut cli).unwrap();
    redis::cmd("SET")
        .arg("consolegate:t")
        .arg("h:22")
        .exec(&mut cli)
        .unwrap();
    let url = format!("redis://proxy:s3cret@127.0.0.1:{}/2", redis.port());
    let src = open(&url, PREFIX);
    assert_eq!(
        src.describe(),
        format!("redis://127.0.0.1:{}/2", redis.port())
    );
    assert_eq!(src.lookup("t").unwrap().port, 22);

    let wrong = open(
        &format!("redis://proxy:wrong@127.0.0.1:{}/2", redis.port()),
        PREFIX,
    );
    match wrong.lookup("t") {
        Err(TokenError::Unavailable(why)) => {
            assert!(why.contains("WRONGPASS"), "{why}");
            assert!(!why.contains("wrong@") && !why.contains("s3cret"), "{why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A client connection on `redis`'s plain port, for commands the harness does not send.
fn cli(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("connect to the test redis-server")
}

/// How many lookups (`GET`) Redis ran since it started.
fn lookups(redis: &Redis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut cli(redis))
        .expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a call count"))
}

#[test]
fn a_malformed_token_never_reaches_redis() {
    let redis = Redis::start();
    redis.set("consolegate:..", "h:1");
    redis.set("consolegate:a b", "h:2");
    let src = open(&redis.url(), PREFIX);
    assert_eq!(src.lookup("absent"), Err(TokenError::Unknown));
    let before = lookups(&redis);
    assert_eq!(before, 1, "a well-formed token is looked up");
    let long = "a".repeat(257);
    for token in ["..", ".", "a b", "a/b", "*", "", long.as_str()] {
        assert!(
            matches!(src.lookup(token), Err(TokenError::BadFormat(_))),
            "{token:?}"
        );
    }
    assert_eq!(lookups(&redis), before, "no malformed token reached Redis");
}
