//! What the token-source tests do with `consolegate::token` (open a source as the daemon does,
//! admit a token as a session does, time a lookup). Their peers (`redis-server`, the HTTPS
//! resolver), PKI, ports and scratch directories come from the harness (`consolegate_tests`).

#![allow(dead_code)] // each test file uses a different part

use std::time::{Duration, Instant};

use consolegate::token::{self, Console, TokenError, TokenSource};

/// Opens `spec` the way the daemon does, with `conf` as the INI file.
pub fn open(spec: &str, conf: &str) -> Box<dyn TokenSource> {
    token::open(spec, &ini(conf)).unwrap_or_else(|e| panic!("open {spec}: {e}"))
}

/// What a session does with a token once its console is connected: looks it up and, if it is
/// single-use, consumes it.
pub fn admit(src: &dyn TokenSource, token: &str) -> Result<Console, TokenError> {
    let console = src.lookup(token)?;
    if console.single_use {
        src.consume(token, &console)?;
    }
    Ok(console)
}

/// Parses INI text.
pub fn ini(conf: &str) -> ini::Ini {
    ini::Ini::load_from_str(conf).expect("test INI")
}

/// Runs `f` and measures it.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}
