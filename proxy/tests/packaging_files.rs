//! The packaged files agree with the daemon: every configuration key is in
//! `conf/consolegate.conf` and in `consolegate.conf(5)` with the default the file documents;
//! `consolegate(8)` documents every option of the command line; the systemd unit's
//! `TimeoutStopSec` covers `drain_timeout` and its `TasksMax` the connection limits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::CommandFactory;
use consolegate::cli::Cli;
use consolegate::config::{Config, KNOWN_KEYS};
use consolegate::daemon::CLOSE_WAIT;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("proxy/ has a parent")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The keys of `conf/consolegate.conf`, set or commented out (`# key = value`), by section
/// (`DEFAULT` before any header), with the value written. A commented line just above a
/// section header (`# token_source = rest:URL` above `[token_rest]`) says when the section
/// applies; it is not a key of the section before.
fn conf_keys() -> Vec<(String, String, String)> {
    let mut section = "DEFAULT".to_string();
    let mut out = Vec::new();
    let text = read("conf/consolegate.conf");
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let heading = lines.get(i + 1).is_some_and(|next| next.starts_with('['));
        if line.starts_with('#') && heading {
            continue;
        }
        let body = line.strip_prefix("# ").unwrap_or(line);
        let Some((key, value)) = body.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        // "timeout = 3   (seconds; ...)": the value without the remark.
        let value = value.split("  ").next().unwrap_or("").trim();
        out.push((section.clone(), key.to_string(), value.to_string()));
    }
    assert!(
        out.len() > KNOWN_KEYS.len() + 10,
        "conf/consolegate.conf: only {} keys read",
        out.len()
    );
    out
}

/// The man page's entries: `(section, key)` to the entry's text, whitespace collapsed.
fn man_entries() -> BTreeMap<(String, String), String> {
    let man = read("packaging/man/consolegate.conf.5");
    let mut section = String::new();
    let mut entries = BTreeMap::new();
    let mut current: Option<((String, String), String)> = None;
    let mut after_tp = false;
    for line in man.lines() {
        if line.starts_with(".SH") || line.starts_with(".TP") {
            if let Some((key, text)) = current.take() {
                entries.insert(key, text.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        if let Some(name) = line.strip_prefix(".SH ") {
            section = match name.trim_matches('"') {
                "GENERAL KEYS" => "DEFAULT".into(),
                other => other.trim_start_matches('[').trim_end_matches(']').into(),
            };
        } else if line == ".TP" {
            after_tp = true;
            continue;
        } else if after_tp {
            if let Some(key) = line.strip_prefix(".B ") {
                current = Some(((section.clone(), key.to_string()), String::new()));
            }
        } else if let Some((_, text)) = current.as_mut() {
            text.push(' ');
            text.push_str(&line.replace("\\-", "-"));
        }
        after_tp = false;
    }
    if let Some((key, text)) = current {
        entries.insert(key, text.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    assert!(
        entries.len() > KNOWN_KEYS.len() + 10,
        "consolegate.conf(5): only {} entries read",
        entries.len()
    );
    entries
}

#[test]
fn every_key_the_daemon_knows_is_in_the_conf_file_and_the_man_page() {
    let conf: Vec<_> = conf_keys()
        .into_iter()
        .filter(|(s, _, _)| s == "DEFAULT")
        .map(|(_, k, _)| k)
        .collect();
    let man = man_entries();
    for key in KNOWN_KEYS {
        assert!(
            conf.iter().any(|k| k == key),
            "{key} is not in conf/consolegate.conf"
        );
        assert!(
            man.contains_key(&("DEFAULT".into(), key.to_string())),
            "{key} is not in consolegate.conf(5) (packaging/man/consolegate.conf.5)"
        );
    }
    for key in &conf {
        assert!(
            KNOWN_KEYS.contains(&key.as_str()),
            "conf/consolegate.conf names {key}, which the daemon does not know"
        );
    }
}

#[test]
fn every_key_of_the_conf_file_is_in_the_man_page_with_its_default() {
    let man = man_entries();
    for (section, key, value) in conf_keys() {
        let entry = man.get(&(section.clone(), key.clone())).unwrap_or_else(|| {
            panic!("[{section}] {key} is not in consolegate.conf(5) (packaging/man/consolegate.conf.5)")
        });
        assert!(
            entry.contains("Default:")
                || entry.contains("packaged file sets")
                || entry.contains("Required"),
            "[{section}] {key}: the man page does not say its default: {entry}"
        );
        // A number or a boolean written in the file is the default: the page must say the same.
        let plain = !value.is_empty()
            && (value.parse::<f64>().is_ok() || value == "true" || value == "false");
        if plain {
            assert!(
                entry.contains(&format!("Default: {value}.")),
                "[{section}] {key}: the file says {value}, the man page: {entry}"
            );
        }
    }
}

#[test]
fn the_man_page_defaults_are_the_daemons() {
    let defaults = Config::parse("").unwrap();
    let man = man_entries();
    let says = |key: &str, value: String| {
        let entry = &man[&("DEFAULT".to_string(), key.to_string())];
        assert!(
            entry.contains(&format!("Default: {value}.")),
            "{key}: the daemon's default is {value}; the man page: {entry}"
        );
    };
    says("listen", defaults.listen[0].to_string());
    says("console_proxy_security_driver", defaults.drivers.join(", "));
    says("driver_dir", defaults.driver_dir.display().to_string());
    says(
        "connect_timeout",
        defaults.connect_timeout.as_secs().to_string(),
    );
    says(
        "handshake_timeout",
        defaults.handshake_timeout.as_secs().to_string(),
    );
    says(
        "drain_timeout",
        defaults.drain_timeout.as_secs().to_string(),
    );
    says("max_connections", defaults.max_connections.to_string());
    says("max_handshakes", defaults.max_handshakes.to_string());
    says(
        "max_connections_per_client",
        defaults.max_connections_per_client.unwrap_or(0).to_string(),
    );
    says("thread_stack_size", defaults.thread_stack_size.to_string());
}

/// `Key=VALUE` of the packaged service unit.
fn unit_value(key: &str) -> String {
    let unit = read("packaging/systemd/consolegate.service");
    let prefix = format!("{key}=");
    unit.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in consolegate.service"))
        .to_string()
}

fn unit_seconds(key: &str) -> Duration {
    let value = unit_value(key);
    let secs = value.strip_suffix('s').unwrap_or(&value);
    Duration::from_secs(secs.parse().unwrap_or_else(|_| panic!("{key}={value}")))
}

#[test]
fn timeout_stop_sec_covers_the_drain() {
    let packaged = Config::parse(&read("conf/consolegate.conf")).unwrap();
    let stop = unit_seconds("TimeoutStopSec");
    // SIGTERM: sessions drain for drain_timeout, then get CLOSE_WAIT to close; systemd kills
    // the daemon at TimeoutStopSec. Leave a second for the process to exit.
    let needed = packaged.drain_timeout + CLOSE_WAIT + Duration::from_secs(1);
    assert!(
        stop >= needed,
        "TimeoutStopSec={stop:?} in consolegate.service, but drain_timeout = {:?} in \
         conf/consolegate.conf needs at least {needed:?}",
        packaged.drain_timeout
    );
    let watchdog = unit_seconds("WatchdogSec");
    assert!(
        watchdog >= Duration::from_secs(2),
        "WatchdogSec={watchdog:?}"
    );
}

#[test]
fn tasks_max_covers_the_connection_limits() {
    let packaged = Config::parse(&read("conf/consolegate.conf")).unwrap();
    let tasks: usize = unit_value("TasksMax")
        .parse()
        .expect("TasksMax is a number");
    // A thread per connection, a name-resolution helper per handshake, main and watchdog.
    let needed = packaged.max_connections + packaged.max_handshakes + 2;
    assert!(
        tasks >= needed,
        "TasksMax={tasks} but max_connections + max_handshakes + 2 = {needed}"
    );
    assert_eq!(unit_value("Type"), "notify");
}

#[test]
fn the_cli_man_page_documents_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_consolegate-man"))
        .output()
        .expect("run consolegate-man");
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH consolegate 8"),
        "{page}"
    );
    assert!(page.contains(".TH consolegate 8"), "{page}");
    for arg in Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(
                page.contains(&roff),
                "--{long} is not in consolegate(8):\n{page}"
            );
        }
    }
    assert!(page.contains("consolegate.conf\\fR(5)"), "{page}");
}
