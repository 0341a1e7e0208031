//! `token_source = json:PATH`: libvirt-console-proxy's built-in resolver format, a JSON object
//! mapping each token to its console:
//!
//! ```json
//! {"TOKEN": {"type": "vnc", "address": "10.0.0.5:5901", "password": "…",
//!            "username": "…", "single_use": true, "expires": 1767225600}}
//! ```
//!
//! An optional `"audit"` object carries the control plane's opaque fields for the audit lines
//! (`"audit": {"user": "alice", "instance": "i-42"}`, see [`AuditFields`]).
//!
//! The same console object is what the [`rest`](super::rest) resolver answers and what a
//! [`redis`](super::redis) key may hold, so [`console_from_json`] reads it for all three.
//!
//! The file is re-read when it changes (checked at most once a second) and on SIGHUP. A file
//! that is not valid JSON keeps the previous tokens (and fails start-up); an entry that cannot
//! be understood is logged at load, named by the file and the hash of its token, and answers
//! [`TokenError::Malformed`] when used.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::audit::AuditFields;

use super::change_watch::{log_loaded, stamp_of_file, ChangeWatch, Stamp};
use super::format::usable_entry_token;
use super::target::{host_port, kind_from_name};
use super::{parse_target, token_hash, Console, Kind, TokenError, TokenSource};

/// The keys a console object may have. `insecure` and `tlsTunnel` come from
/// libvirt-console-proxy and are accepted but not used: in consolegate the security drivers in
/// the configuration decide how the hypervisor leg is protected, not the token. `host` is
/// websockify's TokenRedis spelling of `address`.
pub const CONSOLE_KEYS: &[&str] = &[
    "type",
    "address",
    "host",
    "password",
    "username",
    "single_use",
    "expires",
    "insecure",
    "tlsTunnel",
    "driver",
    "audit",
];

/// Reads one console description: an object with the keys in [`CONSOLE_KEYS`] (`address` or
/// `host` required, `type` defaulting to `vnc`), or a string target as in a token file
/// (`host:port`, `vnc://…`). Unknown keys are refused, so that a misspelt `single_use` cannot
/// leave a token reusable. The error says what is wrong without repeating a password or a key
/// that might be a token.
pub fn console_from_json(value: &Value) -> Result<Console, String> {
    match value {
        Value::String(target) => parse_target(target),
        Value::Object(map) => console_from_object(map),
        other => Err(format!(
            "expected a console object or a \"host:port\" string, found {}",
            type_name(other)
        )),
    }
}

/// Reads one console from JSON text (a resolver's reply, a Redis value): valid JSON, then
/// [`console_from_json`].
pub fn console_from_json_text(text: &[u8]) -> Result<Console, String> {
    console_from_json(&parse_json(text)?)
}

/// A `json:PATH` token source.
pub struct JsonFile {
    path: PathBuf,
    state: RwLock<Loaded>,
    watch: ChangeWatch,
}

/// What one read of the file produced.
struct Loaded {
    /// Token → its console, or what is wrong with its entry.
    entries: HashMap<String, Result<Console, String>>,
    /// Modification time and size when read.
    stamp: Stamp,
}

impl JsonFile {
    /// Reads the file. Fails when it cannot be read or is not a JSON object; entries that cannot
    /// be understood are logged and listed by [`JsonFile::problems`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, TokenError> {
        let source = Self {
            path: path.into(),
            state: RwLock::new(Loaded {
                entries: HashMap::new(),
                stamp: Stamp::new(),
            }),
            watch: ChangeWatch::new(),
        };
        source.reload()?;
        Ok(source)
    }

    /// Every entry that cannot be understood, as `FILE: entry for token hash H: what is wrong`.
    pub fn problems(&self) -> Vec<String> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = state
            .entries
            .iter()
            .filter_map(|(token, entry)| {
                let detail = entry.as_ref().err()?;
                Some(format!("{}: {detail}", self.location(token)))
            })
            .collect();
        out.sort();
        out
    }

    /// Where a token's entry is, for errors and logs: the file and the token's hash.
    fn location(&self, token: &str) -> String {
        format!(
            "{} entry for token hash {}",
            self.path.display(),
            token_hash(token)
        )
    }

    fn reload_if_changed(&self) {
        let seen = || {
            self.state
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .stamp
                .clone()
        };
        self.watch
            .reload_if_changed(seen, || Some(stamp_of_file(&self.path)), || self.reload());
    }
}

impl TokenSource for JsonFile {
    fn lookup(&self, token: &str) -> Result<Console, TokenError> {
        self.reload_if_changed();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        match state.entries.get(token) {
            None => Err(TokenError::Unknown),
            Some(Ok(console)) => Ok(console.clone()),
            Some(Err(detail)) => Err(TokenError::Malformed {
                location: self.location(token),
                detail: detail.clone(),
            }),
        }
    }

    fn reload(&self) -> Result<(), TokenError> {
        let stamp = stamp_of_file(&self.path);
        let text = fs::read_to_string(&self.path).map_err(|e| {
            TokenError::Unavailable(format!("cannot read {}: {e}", self.path.display()))
        })?;
        let entries = parse_file(&text).map_err(|detail| TokenError::Malformed {
            location: self.path.display().to_string(),
            detail,
        })?;
        let count = entries.len();
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Loaded { entries, stamp };
        log_loaded(&self.path, count, &self.problems());
        Ok(())
    }

    fn describe(&self) -> String {
        format!("json:{}", self.path.display())
    }
}

/// Parses the whole file: a JSON object of token → console.
fn parse_file(text: &str) -> Result<HashMap<String, Result<Console, String>>, String> {
    let value = parse_json(text.as_bytes())?;
    let Value::Object(map) = value else {
        return Err(format!(
            "expected a JSON object mapping tokens to consoles, found {}",
            type_name(&value)
        ));
    };
    Ok(map
        .into_iter()
        .map(|(token, value)| {
            let entry = usable_entry_token(&token).and_then(|()| console_from_json(&value));
            (token, entry)
        })
        .collect())
}

/// Parses JSON text. A syntax error is reported by line and column only: serde_json's syntax
/// errors do not quote the text, so no token or password leaks into the message.
fn parse_json(text: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(text).map_err(|e| {
        format!(
            "not valid JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })
}

fn console_from_object(map: &Map<String, Value>) -> Result<Console, String> {
    if let Some(key) = map.keys().find(|k| !CONSOLE_KEYS.contains(&k.as_str())) {
        return Err(unknown_key(key));
    }
    let kind = match string(map, "type")? {
        None => Kind::Vnc,
        Some(name) => kind_from_name(name)
            .ok_or_else(|| format!("unknown type '{name}' (use vnc, spice or serial)"))?,
    };
    let address = match (string(map, "address")?, string(map, "host")?) {
        (Some(_), Some(_)) => return Err("has both 'address' and 'host'; use 'address'".into()),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Err("missing 'address' (\"host:port\")".into()),
    };
    let (host, port) = host_port(address).map_err(|e| format!("address: {e}"))?;
    for key in ["insecure", "tlsTunnel"] {
        boolean(map, key)?;
    }
    let mut console = Console::new(kind, host, port);
    console.username = string(map, "username")?.map(str::to_string);
    console.password = string(map, "password")?.map(str::to_string);
    console.single_use = boolean(map, "single_use")?.unwrap_or(false);
    console.driver = match string(map, "driver")? {
        Some(name) if is_driver_name(name) => Some(name.to_string()),
        Some(_) => return Err("'driver' must be a driver name (a-z, 0-9, '_', '-')".into()),
        None => None,
    };
    console.audit = AuditFields::from_json(map.get("audit"))?;
    console.expires = match map.get("expires") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(unix_time(n)?),
        Some(other) => {
            return Err(format!(
                "'expires' must be Unix time in seconds, found {}",
                type_name(other)
            ))
        }
    };
    Ok(console)
}

/// Whether `name` can be a driver's name (as in `console_proxy_security_driver`).
fn is_driver_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Names an unknown key only when it looks like a misspelt field (it might be a token nested
/// one level too deep, which must not reach a log).
fn unknown_key(key: &str) -> String {
    let squash = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let near = |known: &str| {
        let (a, b) = (squash(known), squash(key));
        edit_distance(&a, &b) <= if a.len() >= 6 { 2 } else { 1 }
    };
    match CONSOLE_KEYS.iter().find(|k| near(k)) {
        Some(known) => format!("unknown key '{key}' (did you mean '{known}'?)"),
        None => format!(
            "unknown key of {} characters (a console has: {})",
            key.chars().count(),
            CONSOLE_KEYS.join(", ")
        ),
    }
}

/// Levenshtein distance, for the short field names above.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "'{key}' must be a string, found {}",
            type_name(other)
        )),
    }
}

fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!(
            "'{key}' must be true or false, found {}",
            type_name(other)
        )),
    }
}

fn unix_time(n: &serde_json::Number) -> Result<SystemTime, String> {
    let seconds = n
        .as_f64()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or("'expires' must be Unix time in seconds, 0 or more")?;
    UNIX_EPOCH
        .checked_add(seconds)
        .ok_or_else(|| "'expires' is too far in the future".into())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_callers_audit_fields() {
        let c = console_from_json(&json!({
            "address": "h:1", "audit": {"user": "alice", "instance": "i-42"}
        }))
        .unwrap();
        assert_eq!(
            c.audit.iter().collect::<Vec<_>>(),
            vec![("instance", "i-42"), ("user", "alice")]
        );
        let e = console_from_json(&json!({"address": "h:1", "audit": {"a b": "x"}})).unwrap_err();
        assert!(e.contains("\"audit\" key"), "{e}");
    }

    #[test]
    fn a_console_may_name_its_driver() {
        let c = console_from_json(&json!({"address": "h:1", "driver": "sasl_gssapi"})).unwrap();
        assert_eq!(c.driver.as_deref(), Some("sasl_gssapi"));
        assert_eq!(
            console_from_json(&json!({"address": "h:1"}))
                .unwrap()
                .driver,
            None
        );
        let e = console_from_json(&json!({"address": "h:1", "driver": "../evil"})).unwrap_err();
        assert_eq!(e, "'driver' must be a driver name (a-z, 0-9, '_', '-')");
    }

    #[test]
    fn reads_libvirt_console_proxy_entries() {
        let c = console_from_json(&json!({
            "type": "spice", "address": "[::1]:5931", "insecure": false, "tlsTunnel": true,
            "password": "pw", "username": "u", "single_use": true, "expires": 2000000000
        }))
        .unwrap();
        assert_eq!(
            (c.kind, c.hypervisor.as_str(), c.port),
            (Kind::Spice, "::1", 5931)
        );
        assert_eq!(
            (c.password.as_deref(), c.username.as_deref()),
            (Some("pw"), Some("u"))
        );
        assert!(c.single_use);
        assert_eq!(
            c.expires,
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
    }

    #[test]
    fn reads_websockify_layouts() {
        let c = console_from_json(&json!({"host": "10.0.0.5:5901"})).unwrap();
        assert_eq!((c.kind, c.port), (Kind::Vnc, 5901));
        let c = console_from_json(&json!("serial://h:7000")).unwrap();
        assert_eq!(c.kind, Kind::Serial);
    }

    #[test]
    fn bad_entries_say_why_without_echoing_secrets() {
        let cases = [
            (
                json!({"type": "rdp", "address": "h:1"}),
                "unknown type 'rdp'",
            ),
            (json!({"type": "vnc"}), "missing 'address'"),
            (
                json!({"address": "h:1", "host": "h:1"}),
                "both 'address' and 'host'",
            ),
            (json!({"address": "h"}), "address: target must be host:port"),
            (
                json!({"address": "h:1", "singleUse": true}),
                "did you mean 'single_use'",
            ),
            (
                json!({"adress": "h:1"}),
                "unknown key 'adress' (did you mean 'address'?)",
            ),
            (
                json!({"address": "h:1", "singel_use": true}),
                "did you mean 'single_use'",
            ),
            (
                json!({"address": "h:1", "single_use": "yes"}),
                "'single_use' must be true or false",
            ),
            (
                json!({"address": "h:1", "expires": -1}),
                "'expires' must be Unix time",
            ),
            (
                json!({"address": "h:1", "password": 5}),
                "'password' must be a string",
            ),
            (json!([1]), "found an array"),
        ];
        for (value, expected) in cases {
            let err = console_from_json(&value).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
        let err =
            console_from_json(&json!({"address": "h:1", "s3cr3t-token-value": {}})).unwrap_err();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(err.contains("unknown key of 18 characters"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_json_is_named_by_line_and_column() {
        let err = parse_file("{\n  \"tok\": {\"address\": \"h:1\"},,\n}").unwrap_err();
        assert!(
            err.starts_with("not valid JSON (Syntax error at line 2"),
            "{err}"
        );
        assert!(!err.contains("tok"), "{err}");
        let err = parse_file("[\"tok\"]").unwrap_err();
        assert_eq!(
            err,
            "expected a JSON object mapping tokens to consoles, found an array"
        );
    }
}
