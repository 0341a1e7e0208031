//! The INI configuration (`config::Config::parse`).
//!
//! Input: the file's text. Properties: parsing is deterministic; an accepted configuration
//! has at least one listen address and one driver, timeouts above zero, a positive connection
//! cap, a stack of at least 64 KiB, and `ssl_certificate` and `ssl_key` together; allowed
//! origins are lower case without a trailing `/`; an unknown key is refused by name.
//!
//! `listen` items (and `metrics_listen`, and `proxy_protocol`'s addresses) are resolved with
//! `to_socket_addrs`, which asks DNS for a name: inputs whose values there hold anything but IP
//! `addr:port` literals (or, for `proxy_protocol`, a boolean word) are skipped, so the fuzzer
//! never sends a query off the machine.
#![no_main]

use std::net::SocketAddr;

use consolegate::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

/// Whether every `listen` value in `text` (in any section that folds into `[DEFAULT]`) is a
/// list of socket address literals, read with the same INI parser as the proxy.
fn listen_is_literal(text: &str) -> bool {
    let Ok(ini) = ini::Ini::load_from_str(text) else {
        return true; // refused before `listen` is read
    };
    let literal = [None, Some("DEFAULT")]
        .into_iter()
        .filter_map(|s| ini.section(s))
        .flat_map(|props| {
            ["listen", "metrics_listen", "proxy_protocol"]
                .into_iter()
                .flat_map(|key| props.get_all(key))
        })
        .all(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .all(|i| i.parse::<SocketAddr>().is_ok() || !i.contains(':'))
        });
    literal
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !listen_is_literal(text) {
        return;
    }
    let first = Config::parse(text);
    let second = Config::parse(text);
    assert_eq!(
        first
            .as_ref()
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string()),
        second
            .as_ref()
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    );
    match first {
        Ok(c) => {
            assert!(!c.listen.is_empty());
            assert!(!c.drivers.is_empty() && c.drivers.iter().all(|d| !d.is_empty()));
            assert!(!c.connect_timeout.is_zero() && !c.handshake_timeout.is_zero());
            assert!(c.idle_timeout.is_none_or(|t| !t.is_zero()));
            assert!(c.max_connections > 0);
            assert!(c.thread_stack_size >= 64 * 1024);
            assert_eq!(c.ssl_certificate.is_some(), c.ssl_key.is_some());
            for o in &c.allowed_origins {
                assert!(!o.ends_with('/') && *o == o.to_ascii_lowercase(), "{o:?}");
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
            if let ConfigError::UnknownKey(key) = &e {
                assert!(shown.contains(key.as_str()), "{shown}");
            }
        }
    }
});
