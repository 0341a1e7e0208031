//! The `rest:` resolver's answer body (`token::json::console_from_json_text`, which
//! `RestResolver` applies to a `200` reply, as the Redis source does to JSON values).
//!
//! Input: the reply body. Properties: an accepted console round-trips (written back as a
//! console object, it reads as the same console, its expiry to within float rounding); an
//! error does not depend on the reply's password (so cannot repeat it) and never quotes a syntax error's text.
#![no_main]

use std::time::UNIX_EPOCH;

use consolegate::token::json::console_from_json_text;
use consolegate::token::{Console, Kind};
use consolegate_fuzz::with_other_password;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn object(c: &Console) -> Value {
    let kind = match c.kind {
        Kind::Vnc => "vnc",
        Kind::Spice => "spice",
        Kind::Serial => "serial",
    };
    json!({
        "type": kind,
        // Brackets always: `address()` leaves them out when the host has no `:`, and a host
        // may start with `[` (hosts are not checked; see README.md).
        "address": format!("[{}]:{}", c.hypervisor, c.port),
        "username": c.username,
        "password": c.password,
        "single_use": c.single_use,
        "driver": c.driver,
        "expires": c.expires.map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()),
    })
}

fuzz_target!(|data: &[u8]| {
    match console_from_json_text(data) {
        Ok(console) => {
            assert_ne!(console.port, 0);
            assert!(!console.hypervisor.is_empty());
            let written = object(&console).to_string();
            let mut again = console_from_json_text(written.as_bytes())
                .unwrap_or_else(|e| panic!("{console:?} -> {written}: {e}"));
            let (a, b) = (console.expires, again.expires);
            if let (Some(a), Some(b)) = (a, b) {
                let (a, b) = (
                    a.duration_since(UNIX_EPOCH).unwrap().as_secs_f64(),
                    b.duration_since(UNIX_EPOCH).unwrap().as_secs_f64(),
                );
                assert!(
                    (a - b).abs() <= a.abs() * 1e-12 + 1e-6,
                    "expires {a} -> {b}"
                );
                again.expires = console.expires;
            }
            assert_eq!(again, console, "{written}");
        }
        Err(e) => {
            let value: Option<Value> = serde_json::from_slice(data).ok();
            match value {
                None => assert!(e.starts_with("not valid JSON ("), "{e}"),
                Some(v) => {
                    if let Some(other) = with_other_password(&v) {
                        let again = console_from_json_text(other.to_string().as_bytes());
                        assert_eq!(
                            again.err().as_ref(),
                            Some(&e),
                            "the error depends on the password"
                        );
                    }
                }
            }
        }
    }
});
