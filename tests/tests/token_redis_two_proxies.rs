//! Two consolegate processes sharing one real Redis (`token_source = redis://…`): a single-use
//! token raced by 50 websocket connections through both admits exactly one (101), the others
//! get 404; a Redis that goes away gives 502 at once while the proxy stays up. A missing
//! `redis-server` fails the test (install the `redis-server` package).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::redis::Redis;
use consolegate_tests::ws::{Client, Failure, Refusal};

fn proxy_on(redis: &Redis) -> Proxy {
    Proxy::start(
        Config::new()
            .set("token_source", &redis.url())
            .section("token_redis", "prefix", "consolegate:")
            .section("token_redis", "timeout", "2"),
    )
}

#[test]
fn fifty_connections_through_two_proxies_admit_one_single_use_token_once() {
    let redis = Redis::start();
    let console = Backend::start(Behaviour::Silent);
    let proxies = [proxy_on(&redis), proxy_on(&redis)];
    let target = format!(
        r#"{{"type": "vnc", "address": "{}", "single_use": true}}"#,
        console.addr()
    );
    redis.set("consolegate:once", &target);

    let start = Barrier::new(50);
    let outcomes: Vec<Result<(), Refusal>> = std::thread::scope(|s| {
        let attempts: Vec<_> = (0..50)
            .map(|i| {
                let (url, start) = (proxies[i % 2].url("once"), &start);
                s.spawn(move || {
                    start.wait();
                    match Client::default().connect(&url) {
                        Ok(_ws) => Ok(()),
                        Err(Failure::Refused(refusal)) => Err(refusal),
                        Err(Failure::Transport(e)) => panic!("attempt {i}: {e}"),
                    }
                })
            })
            .collect();
        attempts
            .into_iter()
            .map(|a| a.join().expect("attempt thread"))
            .collect()
    });
    let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(admitted, 1, "{outcomes:?}");
    for refusal in outcomes.into_iter().filter_map(Result::err) {
        assert_eq!(refusal.status, 404, "{refusal:?}");
        assert_eq!(refusal.body, "consolegate: unknown or expired token\n");
    }
    assert!(!redis.exists("consolegate:once"));

    // Both proxies go on serving other tokens.
    redis.set(
        "consolegate:again",
        &format!(r#"{{"address": "{}"}}"#, console.addr()),
    );
    for proxy in &proxies {
        Client::default().open(&proxy.url("again"));
    }
}

#[test]
fn a_redis_that_goes_away_gives_502_at_once_and_the_proxy_stays_up() {
    let redis = Redis::start();
    let console = Backend::start(Behaviour::Silent);
    let proxy = proxy_on(&redis);
    redis.set(
        "consolegate:t",
        &format!(r#"{{"address": "{}"}}"#, console.addr()),
    );
    Client::default().open(&proxy.url("t"));

    drop(redis);
    let started = Instant::now();
    let refusal = match Client::default().connect(&proxy.url("t")) {
        Err(Failure::Refused(r)) => r,
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|_| "an open websocket")
        ),
    };
    assert_eq!(
        refusal,
        Refusal {
            status: 502,
            body: "consolegate: token source unavailable\n".into()
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    let line = proxy.wait_for_log(
        "token source unavailable: redis://127.0.0.1:",
        Duration::from_secs(2),
    );
    assert!(line.is_some(), "the refusal is logged:\n{}", proxy.log());
}
