//! SIGHUP under load drops no session: 200 wss sessions relay through the proxy (each echoing
//! through its console in turn, without pause) while the token file changes (the sessions' own
//! token is removed, another added) and the proxy reloads three times, tokens and certificate.
//! Every session still echoes afterwards, none got a Close frame, no session ended (no audit
//! line), and the reloads took effect (the new token opens, the removed one is refused).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use consolegate_tests::backend::{assert_echoes, Backend, Behaviour};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::ws::{self, Ws};

/// Concurrent sessions.
const SESSIONS: usize = 200;
/// SIGHUPs sent while they relay.
const RELOADS: usize = 3;
/// The whole test's budget (opening the sessions, the reloads, the checks).
const BUDGET: Duration = Duration::from_secs(30);

const TOKEN: &str = "load-tok-2f7c9a";
const ADDED: &str = "load-tok-added-81d3";

/// How many reloads the proxy has started (its log line per SIGHUP).
fn reloads(proxy: &Proxy) -> usize {
    proxy
        .log()
        .matches("SIGHUP: reloading the token source and the certificate")
        .count()
}

/// Echoes through every session in turn until `stop`; the sessions and the rounds done.
fn relay_until(mut sessions: Vec<Ws>, stop: Arc<AtomicBool>) -> (Vec<Ws>, usize) {
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        for (i, ws) in sessions.iter_mut().enumerate() {
            assert_echoes(ws, format!("session {i} round {rounds}").as_bytes());
        }
        rounds += 1;
    }
    (sessions, rounds)
}

#[test]
fn sighup_with_200_sessions_relaying_drops_none() {
    let t0 = Instant::now();
    let echo = Backend::start(Behaviour::Echo);
    let proxy = Proxy::start(
        Config::new()
            .tls()
            .set("max_connections", &(2 * SESSIONS).to_string())
            // Every session comes from 127.0.0.1.
            .set("max_connections_per_client", "0")
            .token(TOKEN, &echo.addr()),
    );
    let sessions: Vec<Ws> = (0..SESSIONS).map(|_| ws::open(&proxy.url(TOKEN))).collect();
    eprintln!("{SESSIONS} wss sessions open after {:?}", t0.elapsed());

    let stop = Arc::new(AtomicBool::new(false));
    let relaying = {
        let stop = stop.clone();
        thread::spawn(move || relay_until(sessions, stop))
    };
    for reload in 1..=RELOADS {
        thread::sleep(Duration::from_millis(300));
        let tokens = match reload {
            // The sessions' own token goes away; another comes.
            1 => format!("{ADDED}: {}\n", echo.addr()),
            _ => format!("# reload {reload}\n{ADDED}: {}\n", echo.addr()),
        };
        proxy.write_tokens(&tokens);
        proxy.sighup();
        let seen = consolegate_tests::wait::until_true(Duration::from_secs(5), || {
            reloads(&proxy) >= reload
        });
        assert!(seen, "SIGHUP {reload} was not acted on:\n{}", proxy.log());
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (mut sessions, rounds) = relaying.join().expect("a session stopped relaying");
    assert!(
        rounds > RELOADS,
        "only {rounds} rounds of echoes ran across the reloads"
    );

    // Every session still relays; none was closed.
    let mut alive = 0;
    for (i, ws) in sessions.iter_mut().enumerate() {
        assert_echoes(ws, format!("session {i} after the reloads").as_bytes());
        alive += 1;
    }
    assert_eq!(alive, SESSIONS);
    let log = proxy.log();
    let ended = log.matches("audit session=").count();
    assert_eq!(
        ended, 0,
        "{ended} sessions ended during the reloads:\n{log}"
    );
    assert!(!log.contains("reload failed"), "{log}");
    assert_eq!(
        log.matches("certificate reloaded").count(),
        RELOADS,
        "the certificate was not reloaded on every SIGHUP:\n{log}"
    );

    // The reloads took effect.
    assert_echoes(&mut ws::open(&proxy.url(ADDED)), b"added");
    assert_eq!(ws::refusal(&proxy.url(TOKEN)).status, 404);

    for ws in sessions {
        ws.close();
    }
    eprintln!(
        "{rounds} rounds of {SESSIONS} echoes; whole test {:?}",
        t0.elapsed()
    );
    assert!(t0.elapsed() < BUDGET, "took {:?}", t0.elapsed());
}
