//! How log lines are written to stderr (`log_format`): env_logger's text lines, the same with a
//! syslog priority prefix (`<3>` … `<7>`) that the systemd journal reads (so `journalctl -p
//! warning` finds warnings), or one JSON object per line for a SIEM, with a record's structured
//! fields (the audit lines', see [`crate::audit`]) as members.
//!
//! `auto`, the default, picks `journal` when stderr is the journal (systemd sets
//! `JOURNAL_STREAM` to the device and inode of the stream it connected; they must match
//! stderr's, since a child process inherits the variable but maybe not the stream) and `text`
//! otherwise.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::str::FromStr;

use log::kv::{Key, Value, VisitSource};
use log::Level;

/// `log_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `journal` under systemd's journal, else `text`.
    #[default]
    Auto,
    /// `2026-01-01T00:00:00.000Z INFO  consolegate::audit] audit session=…`: env_logger's lines.
    Text,
    /// `<6>[consolegate::audit] audit session=…`: a syslog priority first, no time stamp (the
    /// journal keeps its own).
    Journal,
    /// `{"time":"…","level":"INFO","priority":6,"logger":"…","message":"…",…}`.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "text" => Ok(Self::Text),
            "journal" => Ok(Self::Journal),
            "json" => Ok(Self::Json),
            other => Err(format!("'{other}' is not auto, text, journal or json")),
        }
    }
}

impl LogFormat {
    /// `Auto` made concrete for this process.
    pub fn resolve(self) -> LogFormat {
        match self {
            LogFormat::Auto if stderr_is_journal() => LogFormat::Journal,
            LogFormat::Auto => LogFormat::Text,
            other => other,
        }
    }
}

/// The syslog priority of a level, as the journal reads it.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Whether `JOURNAL_STREAM` names this process's stderr.
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(stderr)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Installs the logger: `RUST_LOG` sets the level (default `info`) in `format`.
/// tungstenite and ureq are held at `debug` whatever `RUST_LOG` says: their trace lines print
/// websocket payloads and request paths (where a REST token source puts the token).
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder
        .filter_module("tungstenite", log::LevelFilter::Debug)
        .filter_module("ureq", log::LevelFilter::Debug)
        .filter_module("ureq_proto", log::LevelFilter::Debug);
    match format.resolve() {
        LogFormat::Auto | LogFormat::Text => {
            builder
                .format_timestamp_millis()
                .format_key_values(env_logger::fmt::hidden_kv_format);
        }
        LogFormat::Journal => {
            builder.format(|buf, record| {
                writeln!(
                    buf,
                    "<{}>[{}] {}",
                    priority(record.level()),
                    record.target(),
                    record.args()
                )
            });
        }
        LogFormat::Json => {
            builder.format(|buf, record| {
                let line = json_line(&buf.timestamp_millis().to_string(), record);
                writeln!(buf, "{line}")
            });
        }
    }
    builder.init();
}

/// One record as a JSON object: time, level, priority, logger (the record's target, such as
/// `consolegate::audit`), message, then the record's structured fields (which do not replace
/// those five; an audit line's `target` is its console's).
pub fn json_line(time: &str, record: &log::Record<'_>) -> String {
    let mut object = serde_json::Map::new();
    object.insert("time".into(), time.into());
    object.insert("level".into(), record.level().as_str().into());
    object.insert("priority".into(), priority(record.level()).into());
    object.insert("logger".into(), record.target().into());
    object.insert("message".into(), record.args().to_string().into());
    let mut fields = Fields(&mut object);
    let _ = record.key_values().visit(&mut fields);
    serde_json::Value::Object(object).to_string()
}

/// Copies structured fields into a JSON object: numbers stay numbers.
struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(b) = value.to_bool() {
            b.into()
        } else {
            value.to_string().into()
        };
        self.0.entry(key.as_str().to_string()).or_insert(json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_the_fields_and_keep_their_own() {
        let session: u64 = 7;
        let kvs: [(&str, Value); 4] = [
            ("session", Value::from(session)),
            ("client", Value::from("203.0.113.9:5")),
            ("target", Value::from("10.0.0.5:5901")),
            ("message", Value::from("not this one")),
        ];
        let record = log::Record::builder()
            .level(Level::Warn)
            .target("consolegate::audit")
            .args(format_args!("audit \"x\""))
            .key_values(&kvs)
            .build();
        let line = json_line("T", &record);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["priority"], 4);
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["message"], "audit \"x\"");
        assert_eq!(v["session"], 7);
        assert_eq!(v["client"], "203.0.113.9:5");
        assert_eq!(v["logger"], "consolegate::audit");
        assert_eq!(v["target"], "10.0.0.5:5901");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn formats_parse_and_auto_needs_the_journal_stream() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Trace), 7);
    }
}
