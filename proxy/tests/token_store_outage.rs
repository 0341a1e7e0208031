//! Token-store outages with the real daemon: the REST resolver (HTTPS with a client
//! certificate) or a real `redis-server` goes away — stopped, killed, frozen — while sessions
//! relay, and comes back on the same port. Live sessions keep relaying (their token was looked
//! up once, at open); new sessions are refused at once with 502 `token source unavailable`, or
//! with 504 when the store hangs; once the store is back, new sessions open again.

use std::time::{Duration, Instant};

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::redis::Redis;
use consolegate_tests::resolver::Resolver;
use consolegate_tests::ws::{self, Client, Refusal, Ws};
use tungstenite::Message;

/// Bytes a live session must still deliver to count as relaying.
const RELAYED: usize = 256 * 1024;

/// How long a live session may take to deliver [`RELAYED`] bytes.
const RELAY_WAIT: Duration = Duration::from_secs(5);

/// Reads console bytes from `ws` until `bytes` arrived; panics if they do not within
/// [`RELAY_WAIT`] or if the session ends.
fn relays(ws: &mut Ws, bytes: usize, when: &str) {
    let deadline = Instant::now() + RELAY_WAIT;
    let mut seen = 0;
    ws.set_read_timeout(Duration::from_millis(500));
    while seen < bytes {
        assert!(
            Instant::now() < deadline,
            "{when}: only {seen} bytes relayed in {RELAY_WAIT:?}"
        );
        match ws.socket.read() {
            Ok(Message::Binary(data)) => {
                assert!(data.iter().all(|b| *b == 0x5a), "{when}: console bytes");
                seen += data.len();
            }
            Ok(Message::Close(frame)) => panic!("{when}: the session closed: {frame:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{when}: the session failed: {e}"),
        }
    }
}

/// The refusal for a new session, and how long it took.
fn refusal_of(proxy: &Proxy, token: &str) -> (Refusal, Duration) {
    let start = Instant::now();
    let refusal = ws::refusal(&proxy.url(token));
    (refusal, start.elapsed())
}

/// With the store down: a new session gets 502 at once, and `live` still relays.
fn unavailable_but_live_relays(proxy: &Proxy, live: &mut Ws, when: &str) {
    let (refusal, took) = refusal_of(proxy, "vm-1");
    assert_eq!(refusal, refused(502, "token source unavailable"), "{when}");
    assert!(
        took < Duration::from_secs(1),
        "{when}: refused at once, took {took:?}"
    );
    relays(live, RELAYED, when);
}

fn refused(status: u16, reason: &str) -> Refusal {
    Refusal {
        status,
        body: format!("consolegate: {reason}\n"),
    }
}

/// A console object for `backend`, as the stores hold it.
fn console(backend: &Backend) -> String {
    format!(r#"{{"type": "vnc", "address": "{}"}}"#, backend.addr())
}

#[test]
fn a_resolver_outage_spares_live_sessions_and_refuses_new_ones_until_it_is_back() {
    let pki = &pki().trusted;
    let mut resolver = Resolver::start_tls();
    let backend = Backend::start(Behaviour::Flood);
    resolver.answer("vm-1", 200, &console(&backend));
    let path = |file: std::path::PathBuf| file.display().to_string();
    let proxy = Proxy::start(
        Config::new()
            .set("token_source", &format!("rest:{}", resolver.url()))
            .section("token_rest", "ca_certificate", &path(pki.ca_cert()))
            .section("token_rest", "client_certificate", &path(pki.client_cert()))
            .section("token_rest", "client_key", &path(pki.client_key()))
            .section("token_rest", "timeout", "1"),
    );
    let mut live = Client::default().open(&proxy.url("vm-1"));
    relays(&mut live, RELAYED, "before the outage");

    resolver.stop();
    unavailable_but_live_relays(&proxy, &mut live, "during the outage");
    let line = proxy.wait_for_log(
        "token refused: token source unavailable: resolver https://localhost:",
        Duration::from_secs(2),
    );
    assert!(line.is_some(), "the log says why:\n{}", proxy.log());

    resolver.restart();
    let mut again = Client::default().open(&proxy.url("vm-1"));
    relays(&mut again, RELAYED, "a new session after the outage");
    relays(&mut live, RELAYED, "the first session after the outage");
}

#[test]
fn a_redis_outage_spares_live_sessions_and_refuses_new_ones_until_it_is_back() {
    let mut redis = Redis::start();
    let backend = Backend::start(Behaviour::Flood);
    redis.set("consolegate:vm-1", &console(&backend));
    let proxy = Proxy::start(
        Config::new()
            .set("token_source", &redis.url())
            .section("token_redis", "prefix", "consolegate:")
            .section("token_redis", "timeout", "1"),
    );
    let mut live = Client::default().open(&proxy.url("vm-1"));
    relays(&mut live, RELAYED, "before the outage");

    // Killed: the port refuses connections.
    redis.kill();
    unavailable_but_live_relays(&proxy, &mut live, "while Redis is down");

    // Back, empty (no persistence): the token is written again, as its issuer would.
    redis.restart();
    redis.set("consolegate:vm-1", &console(&backend));
    let mut second = Client::default().open(&proxy.url("vm-1"));
    relays(&mut second, RELAYED, "a new session after the restart");

    // Frozen: connections hang, so the lookup runs out of its timeout.
    redis.freeze();
    let (refusal, took) = refusal_of(&proxy, "vm-1");
    assert_eq!(refusal, refused(504, "token source did not answer in time"));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "refused after the 1 s lookup timeout, took {took:?}"
    );
    relays(&mut live, RELAYED, "while Redis is frozen");
    relays(
        &mut second,
        RELAYED,
        "the second session while Redis is frozen",
    );

    redis.thaw();
    let mut third = Client::default().open(&proxy.url("vm-1"));
    relays(&mut third, RELAYED, "a new session after the thaw");
    relays(&mut live, RELAYED, "the first session at the end");
}
