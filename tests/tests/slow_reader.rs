//! A browser that stops reading while its console floods: the session's memory stays bounded
//! for as long as the stall lasts (the proxy's RSS is sampled for seconds and stops growing),
//! over ws and over wss (where rustls could buffer), the console is held back by TCP
//! back-pressure, another client is served meanwhile, and the stalled session resumes when the
//! browser reads again. With `idle_timeout` set, the stalled session ends on time and releases
//! its thread and descriptors. (`timeouts.rs` covers the short plain-ws case: 1.5 s, 32 MiB.)

use std::io::Read;
use std::time::{Duration, Instant};

use consolegate_tests::backend::{assert_echoes, Backend, Behaviour};
use consolegate_tests::fds;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::ws::{self, Ws};

/// How long the browser stalls while the samples are taken.
const STALL: Duration = Duration::from_secs(6);
/// The most the proxy's RSS may grow over its baseline during the stall.
const RSS_BOUND_KIB: u64 = 8 * 1024;
/// The most it may still grow over the second half of the stall: it has stopped growing.
const LATE_GROWTH_KIB: u64 = 512;

const FLOOD: &str = "flood-tok-6e1a";
const ECHO: &str = "echo-tok-9c4f";

/// Reads `n` bytes of console output from `ws`.
fn read_bytes(ws: &mut Ws, n: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < n {
        let k = ws.read(&mut buf).expect("console bytes");
        assert!(k > 0, "the session closed after {got} bytes");
        got += k;
    }
}

/// The flooding and the echoing backend, and a proxy (`customize`d) with a token for each.
fn start(customize: impl FnOnce(Config) -> Config) -> (Proxy, Backend, Backend) {
    let flood = Backend::start(Behaviour::Flood);
    let echo = Backend::start(Behaviour::Echo);
    let config = Config::new()
        .token(FLOOD, &flood.addr())
        .token(ECHO, &echo.addr());
    (Proxy::start(customize(config)), flood, echo)
}

/// The stall scenario on a proxy configured by `customize` (plain ws or wss).
fn stalled_reader_stays_bounded(customize: impl FnOnce(Config) -> Config) {
    let (proxy, flood, _echo) = start(customize);
    let pid = proxy.pid();
    // One session first, so that lazily created state (the watchdog thread, buffers) is there.
    assert_echoes(&mut ws::open(&proxy.url(ECHO)), b"warm-up");
    let baseline = fds::settled(pid);
    let rss_base = fds::rss_kib(pid);

    let mut stalled = ws::open(&proxy.url(FLOOD));
    read_bytes(&mut stalled, 1 << 20);
    // Now the browser stops reading.
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while t0.elapsed() < STALL {
        samples.push((t0.elapsed(), fds::rss_kib(pid), flood.written()));
        std::thread::sleep(Duration::from_millis(250));
    }
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(rss_base);
    let half = samples.len() / 2;
    let (mid_rss, mid_written) = (samples[half].1, samples[half].2);
    let (end_rss, end_written) = (samples[samples.len() - 1].1, samples[samples.len() - 1].2);
    eprintln!(
        "RSS baseline {rss_base} KiB, peak {peak} KiB, at {:?} {mid_rss} KiB, at the end \
         {end_rss} KiB; console wrote {mid_written} then {end_written} bytes",
        samples[half].0
    );
    assert!(
        peak < rss_base + RSS_BOUND_KIB,
        "proxy RSS grew from {rss_base} KiB to {peak} KiB while the browser did not read"
    );
    assert!(
        end_rss < mid_rss + LATE_GROWTH_KIB,
        "proxy RSS still grows in the second half of the stall: {mid_rss} -> {end_rss} KiB"
    );
    assert!(
        end_written - mid_written < 1 << 20,
        "the console could still write {} bytes in the second half of the stall: no \
         back-pressure",
        end_written - mid_written
    );

    // Meanwhile another browser is served.
    let mut other = ws::open(&proxy.url(ECHO));
    assert_echoes(&mut other, b"still responsive");
    other.close();

    // The stalled browser reads again: its session is alive and flows.
    read_bytes(&mut stalled, 8 << 20);
    stalled.close();
    let back = fds::back_to(pid, baseline, Duration::from_secs(5));
    assert_eq!(
        back,
        Ok(()),
        "threads/fds after the sessions, baseline {baseline:?}"
    );
}

#[test]
fn a_ws_browser_that_stops_reading_keeps_memory_bounded_and_resumes() {
    stalled_reader_stays_bounded(|c| c);
}

#[test]
fn a_wss_browser_that_stops_reading_keeps_memory_bounded_and_resumes() {
    stalled_reader_stays_bounded(Config::tls);
}

#[test]
fn a_stalled_wss_session_ends_at_idle_timeout_and_releases_its_thread_and_fds() {
    let (proxy, _flood, _echo) = start(|c| c.tls().set("idle_timeout", "2"));
    let pid = proxy.pid();
    let mut warm = ws::open(&proxy.url(ECHO));
    assert_echoes(&mut warm, b"warm-up");
    warm.close();
    let baseline = fds::settled(pid);

    let mut stalled = ws::open(&proxy.url(FLOOD));
    read_bytes(&mut stalled, 1 << 20);
    let t0 = Instant::now();
    let ended = proxy.wait_for_log("close=\"idle timeout\"", Duration::from_secs(8));
    assert!(
        ended.is_some(),
        "the stalled session did not end at idle_timeout = 2:\n{}",
        proxy.log()
    );
    let took = t0.elapsed();
    // 2 s idle, then at most 1 s trying to send the Close frame the browser does not read.
    assert!(took < Duration::from_secs(5), "ended after {took:?}");
    let back = fds::back_to(pid, baseline, Duration::from_secs(5));
    assert_eq!(back, Ok(()), "baseline {baseline:?}");
    drop(stalled);
}
