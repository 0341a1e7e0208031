//! A single-use token is used up only by a request that gets `101` (issue 10, item 2): a
//! request refused for any reason — a console that refuses the connection (502), a websocket
//! version the proxy does not speak (400), a console kind no driver serves (502), a target
//! outside `allowed_targets` (403) — leaves the token usable, and the next request that gets
//! its websocket uses it up (404 after that). Each case runs with the token in a JSON token
//! file and in a real Redis (`redis-server`; its absence fails the test). Where the refusing
//! proxy can never admit the token (no driver, target not allowed), a second attempt gets the
//! same refusal rather than 404, and with Redis a second proxy sharing the store admits it.

use std::fs;
use std::time::Duration;

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::http::{exchange, upgrade_request};
use consolegate_tests::ports;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::redis::Redis;
use consolegate_tests::wait;
use consolegate_tests::ws::{Client, Refusal};

/// The single-use token every case uses.
const TOKEN: &str = "once-only";

/// The Redis key prefix.
const PREFIX: &str = "consolegate:";

/// Where the proxy under test reads its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// `json:PATH`, a file in the proxy's scratch directory.
    Json,
    /// `redis://…`, a `redis-server` of the test's own.
    Redis,
}

/// A token store holding [`TOKEN`] as a single-use console; proxies reading it are started
/// with [`Store::proxy`].
struct Store {
    source: Source,
    /// The console object under [`TOKEN`].
    console: String,
    redis: Option<Redis>,
}

impl Store {
    /// A store whose [`TOKEN`] opens the single-use console of `kind` at `address`.
    fn new(source: Source, kind: &str, address: &str) -> Self {
        let console =
            format!(r#"{{"type": "{kind}", "address": "{address}", "single_use": true}}"#);
        let redis = match source {
            Source::Json => None,
            Source::Redis => {
                let redis = Redis::start();
                redis.set(&format!("{PREFIX}{TOKEN}"), &console);
                Some(redis)
            }
        };
        Self {
            source,
            console,
            redis,
        }
    }

    /// A proxy reading this store, with `customize` applied to its configuration.
    fn proxy(&self, customize: impl FnOnce(Config) -> Config) -> Proxy {
        let config = customize(Config::new());
        let config = match &self.redis {
            None => {
                let path = config.dir().join("tokens.json");
                fs::write(&path, format!(r#"{{"{TOKEN}": {}}}"#, self.console))
                    .expect("write the JSON token file");
                config.set("token_source", &format!("json:{}", path.display()))
            }
            Some(redis) => {
                config
                    .set("token_source", &redis.url())
                    .section("token_redis", "prefix", PREFIX)
            }
        };
        Proxy::start(config)
    }

    /// Asserts whether the token is still in the store. Only Redis can say: a JSON file keeps
    /// its entries, and the proxy remembers consumed tokens itself.
    fn assert_stored(&self, stored: bool) {
        if let Some(redis) = &self.redis {
            assert_eq!(redis.exists(&format!("{PREFIX}{TOKEN}")), stored);
        }
    }
}

fn refused(status: u16, reason: &str) -> Refusal {
    Refusal {
        status,
        body: format!("consolegate: {reason}\n"),
    }
}

/// The refusal of a websocket request for [`TOKEN`] through `proxy`.
fn refusal(proxy: &Proxy) -> Refusal {
    Client::default().refusal(&proxy.url(TOKEN))
}

fn already_used() -> Refusal {
    refused(404, "unknown or expired token")
}

/// A request through `proxy` gets its websocket; then the token is used up, through `proxy`
/// and through `others`.
fn assert_admitted_once(store: &Store, proxy: &Proxy, others: &[&Proxy]) {
    let ws = Client::default().open(&proxy.url(TOKEN));
    store.assert_stored(false);
    for p in [proxy].iter().chain(others) {
        assert_eq!(
            refusal(p),
            already_used(),
            "{:?}: a used single-use token",
            store.source
        );
    }
    ws.close();
}

/// Two `request`s both get `refusal`, and the token stays.
fn assert_refused_twice(store: &Store, refusal: Refusal, request: impl Fn() -> Refusal) {
    for attempt in 0..2 {
        assert_eq!(request(), refusal, "{:?}: attempt {attempt}", store.source);
    }
    store.assert_stored(true);
}

fn console_refusing_the_connection_leaves_the_token(source: Source) {
    let port = ports::port();
    let store = Store::new(source, "vnc", &format!("127.0.0.1:{}", port.port()));
    let proxy = store.proxy(|c| c);
    let nothing_listens = refused(502, "console unreachable");
    assert_refused_twice(&store, nothing_listens, || refusal(&proxy));

    let console = Backend::start_on(port, Behaviour::Silent);
    assert_admitted_once(&store, &proxy, &[]);
    assert!(
        wait::until_true(Duration::from_secs(2), || console.accepted() == 1),
        "{source:?}: the console saw {} connections",
        console.accepted()
    );
}

fn websocket_version_8_leaves_the_token(source: Source) {
    let console = Backend::start(Behaviour::Silent);
    let store = Store::new(source, "vnc", &console.addr());
    let proxy = store.proxy(|c| c);
    let version_8 = upgrade_request(&format!("/websockify?token={TOKEN}"), "")
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let version = "unsupported websocket version (send Sec-WebSocket-Version: 13)";
    assert_refused_twice(&store, refused(400, version), || {
        let answer = exchange(proxy.addr(), version_8.as_bytes());
        Refusal {
            status: answer.status,
            body: answer.body,
        }
    });
    assert_eq!(
        console.accepted(),
        0,
        "{source:?}: refused before connecting"
    );

    assert_admitted_once(&store, &proxy, &[]);
}

fn kind_without_driver_leaves_the_token(source: Source) {
    let console = Backend::start(Behaviour::Silent);
    let store = Store::new(source, "spice", &console.addr());
    // The fault driver serves VNC only. No grace time for further SPICE channels: a token
    // consumed by the first attempt would answer the second 404.
    let no_grace = |c: Config| c.section("tokens", "spice_grace_seconds", "0");
    let vnc_only = store.proxy(|c| no_grace(c.fault_driver("ok")));
    let no_driver = refused(502, "no security driver serves spice consoles");
    assert_refused_twice(&store, no_driver, || refusal(&vnc_only));

    if source == Source::Redis {
        // A proxy that serves SPICE, sharing the store, admits it once; then it is used up
        // for both.
        let spice = store.proxy(no_grace);
        assert_admitted_once(&store, &spice, &[&vnc_only]);
    }
}

fn target_outside_allowed_targets_leaves_the_token(source: Source) {
    let console = Backend::start(Behaviour::Silent);
    let store = Store::new(source, "vnc", &console.addr());
    let strict = store.proxy(|c| c.set("allowed_targets", "192.0.2.0/24"));
    let not_allowed = refused(403, "console not allowed");
    assert_refused_twice(&store, not_allowed, || refusal(&strict));
    assert_eq!(console.accepted(), 0, "{source:?}");

    if source == Source::Redis {
        let open = store.proxy(|c| c.set("allowed_targets", "127.0.0.0/8"));
        assert_admitted_once(&store, &open, &[&strict]);
    }
}

/// Each scenario as a test for each source: `json::SCENARIO` and `redis::SCENARIO`.
macro_rules! for_each_source {
    ($($scenario:ident),* $(,)?) => {
        mod json {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Source::Json);
            })*
        }
        mod redis {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Source::Redis);
            })*
        }
    };
}

for_each_source!(
    console_refusing_the_connection_leaves_the_token,
    websocket_version_8_leaves_the_token,
    kind_without_driver_leaves_the_token,
    target_outside_allowed_targets_leaves_the_token,
);
