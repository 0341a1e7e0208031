//! The audit trail: for every session that reaches a console, a start line once the driver's
//! handshake is done and an end line when it closes, both at info level under the target
//! `consolegate::audit`, naming the token only by its hash and the client by its real address
//! (after a PROXY or forwarded header, see [`crate::client_address`]).
//!
//! Text: `audit start session=N client=… token=HASH12 kind=… target=… driver=… caller_K="V"…`
//! and `audit session=N client=… token=… kind=… target=… driver=… up=… down=… duration_ms=…
//! close="REASON" caller_K="V"…`. Every field is also a structured field of the record
//! (`event` = `start` or `end`), which `log_format = json` writes as members.
//!
//! Caller fields ([`AuditFields`]) are opaque values the control plane put in the token's
//! console object (`"audit": {"user": "alice"}`): bounded in number and length, keys limited
//! to `[A-Za-z0-9_]`, values escaped. Requests for static files get no audit line.

use std::time::Instant;

use consolegate_driver_api::text::truncate_utf8;
use log::kv::Value;

use crate::client_address::ClientAddr;

/// The most caller fields kept from a token.
pub const MAX_AUDIT_FIELDS: usize = 8;
/// The longest caller field key, in bytes.
pub const MAX_AUDIT_KEY: usize = 32;
/// The longest caller field value kept, in bytes (longer ones are cut at a UTF-8 boundary).
pub const MAX_AUDIT_VALUE: usize = 256;

/// Opaque `key = value` pairs from the control plane, logged on both audit lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFields(Vec<(String, String)>);

impl AuditFields {
    /// The fields of a token's `"audit"` JSON object: string, number and boolean members whose
    /// key is 1–32 bytes of `[A-Za-z0-9_]`, at most [`MAX_AUDIT_FIELDS`], values cut to
    /// [`MAX_AUDIT_VALUE`] bytes, sorted by key. Anything else is left out, with a reason in `Err` for the
    /// token source to report; `None` (no `"audit"` member) gives no fields.
    pub fn from_json(value: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(Self::default());
        };
        let Some(object) = value.as_object() else {
            return Err("\"audit\" must be an object of strings".into());
        };
        let mut fields = Vec::new();
        for (key, value) in object {
            if fields.len() == MAX_AUDIT_FIELDS {
                return Err(format!("\"audit\" has more than {MAX_AUDIT_FIELDS} fields"));
            }
            if key.is_empty()
                || key.len() > MAX_AUDIT_KEY
                || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(format!(
                    "\"audit\" key {key:?} is not 1-{MAX_AUDIT_KEY} letters, digits or _"
                ));
            }
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(format!("\"audit\" field {key:?} is not a string or number")),
            };
            let text = truncate_utf8(&text, MAX_AUDIT_VALUE).to_string();
            fields.push((key.clone(), text));
        }
        Ok(Self(fields))
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// What the audit lines record about a session.
#[derive(Debug)]
pub struct AuditRecord {
    /// Session number.
    pub session_id: u64,
    /// The client's address: the socket's, or the one a trusted proxy named.
    pub client: ClientAddr,
    /// [`token_hash`](crate::token::token_hash) of the token, `-` if none.
    pub token_hash: String,
    /// Console kind, `-` if not known.
    pub kind: String,
    /// `host:port`, `-` if not known.
    pub target: String,
    /// Driver name, `-` if none.
    pub driver: String,
    /// The token's caller fields.
    pub fields: AuditFields,
    /// Bytes from browser to console.
    pub up: u64,
    /// Bytes from console to browser.
    pub down: u64,
    /// When the connection was accepted.
    pub started: Instant,
    /// Whether a request other than a static file's arrived (a websocket upgrade, or anything
    /// refused). A connection that never sent one (a load balancer's TCP health check, a port
    /// scan, a browser fetching pages and their files) gets a debug line, not an audit line.
    pub request_seen: bool,
    /// Static files answered on this connection (`web`), before any upgrade.
    pub assets: usize,
}

impl AuditRecord {
    /// A record for a connection just accepted from `client`.
    pub fn new(session_id: u64, client: ClientAddr) -> Self {
        Self {
            session_id,
            client,
            token_hash: "-".into(),
            kind: "-".into(),
            target: "-".into(),
            driver: "-".into(),
            fields: AuditFields::default(),
            up: 0,
            down: 0,
            started: Instant::now(),
            request_seen: false,
            assets: 0,
        }
    }

    /// Writes the start line: the session is relaying.
    pub fn log_start(&self) {
        let mut text = format!(
            "audit start session={} client={} token={} kind={} target={} driver={}",
            self.session_id, self.client, self.token_hash, self.kind, self.target, self.driver
        );
        self.push_caller_fields(&mut text);
        self.emit("start", &text, Vec::new());
    }

    /// Writes the end line (at debug level instead for a connection that sent no request or
    /// asked for a static file).
    pub fn log(&self, close_reason: &str) {
        if !self.request_seen && self.assets > 0 {
            log::debug!(
                "connection {} from {} closed after {} static requests: {close_reason}",
                self.session_id,
                self.client,
                self.assets
            );
            return;
        }
        if !self.request_seen {
            log::debug!(
                "connection {} from {} closed before a request: {close_reason}",
                self.session_id,
                self.client
            );
            return;
        }
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let mut text = format!(
            "audit session={} client={} token={} kind={} target={} driver={} up={} down={} duration_ms={} close={:?}",
            self.session_id,
            self.client,
            self.token_hash,
            self.kind,
            self.target,
            self.driver,
            self.up,
            self.down,
            duration_ms,
            close_reason
        );
        self.push_caller_fields(&mut text);
        self.emit(
            "end",
            &text,
            vec![
                ("up", Value::from(self.up)),
                ("down", Value::from(self.down)),
                ("duration_ms", Value::from(duration_ms)),
                ("close", Value::from(close_reason)),
            ],
        );
    }

    fn push_caller_fields(&self, text: &mut String) {
        for (k, v) in self.fields.iter() {
            text.push_str(&format!(" caller_{k}={v:?}"));
        }
    }

    /// Logs `text` with the common structured fields, `extra`, and the caller fields.
    fn emit(&self, event: &'static str, text: &str, extra: Vec<(&str, Value<'_>)>) {
        let target = "consolegate::audit";
        if !log::log_enabled!(target: "consolegate::audit", log::Level::Info) {
            return;
        }
        let client = self.client.to_string();
        let caller: Vec<(String, &str)> = self
            .fields
            .iter()
            .map(|(k, v)| (format!("caller_{k}"), v))
            .collect();
        let mut kvs: Vec<(&str, Value<'_>)> = vec![
            ("event", Value::from(event)),
            ("session", Value::from(self.session_id)),
            ("client", Value::from(client.as_str())),
            ("token", Value::from(self.token_hash.as_str())),
            ("kind", Value::from(self.kind.as_str())),
            ("target", Value::from(self.target.as_str())),
            ("driver", Value::from(self.driver.as_str())),
        ];
        kvs.extend(extra);
        kvs.extend(caller.iter().map(|(k, v)| (k.as_str(), Value::from(*v))));
        log::logger().log(
            &log::Record::builder()
                .level(log::Level::Info)
                .target(target)
                .module_path_static(Some(module_path!()))
                .file_static(Some(file!()))
                .line(Some(line!()))
                .args(format_args!("{text}"))
                .key_values(&kvs)
                .build(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_fields_are_bounded_and_checked() {
        let json = serde_json::json!({"user": "alice", "instance_id": 42, "ok": true});
        let fields = AuditFields::from_json(Some(&json)).unwrap();
        assert_eq!(
            fields.iter().collect::<Vec<_>>(),
            vec![("instance_id", "42"), ("ok", "true"), ("user", "alice")]
        );
        let long = serde_json::json!({"user": "é".repeat(200)});
        let fields = AuditFields::from_json(Some(&long)).unwrap();
        assert_eq!(fields.iter().next().unwrap().1.len(), MAX_AUDIT_VALUE);
        for bad in [
            serde_json::json!("alice"),
            serde_json::json!({"us er": "x"}),
            serde_json::json!({"user": {"nested": 1}}),
            serde_json::json!({"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1}),
        ] {
            assert!(AuditFields::from_json(Some(&bad)).is_err(), "{bad}");
        }
        assert_eq!(AuditFields::from_json(None), Ok(AuditFields::default()));
    }
}
