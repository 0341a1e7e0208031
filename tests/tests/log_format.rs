//! Logs and audit lines as operators read them (issue 14): under systemd's journal every line
//! carries its syslog priority (`<4>` for a refusal, `<6>` for an audit line), `log_format =
//! json` writes one JSON object per line, and the audit start and end lines of a session through
//! HAProxy carry the real client, the token's hash, the console, the driver and the control
//! plane's caller fields, in text and in JSON, checked field by field. (Static files get no
//! audit line: `static_files.rs`.)

use std::time::Duration;

use consolegate_tests::audit;
use consolegate_tests::haproxy::{Haproxy, Mode, HAPROXY_SOURCE};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{self, Qemu};
use consolegate_tests::setup::{assert_qemu_console, token_hash, VncSetup};
use consolegate_tests::wait;
use consolegate_tests::ws::{self, Client};

const CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// One session, then a refusal for an unknown token; returns the proxy's log once both are
/// audited.
fn session_and_refusal(setup: &VncSetup) -> String {
    let mut ws = ws::open(&setup.url());
    assert_qemu_console(&mut ws);
    ws.close();
    assert_eq!(ws::refusal(&setup.proxy.url("no-such-token")).status, 404);
    // Session 1's end line may come after session 2's.
    wait::until(Duration::from_secs(5), || {
        let log = setup.proxy.log();
        (log.matches("audit session=").count() == 2).then_some(log)
    })
    .unwrap_or_else(|| panic!("two audit lines expected:\n{}", setup.proxy.log()))
}

#[test]
fn under_the_journal_every_line_carries_its_priority() {
    for (setup, how) in [
        (
            VncSetup::start_with(|c| c.journal_stream()),
            "JOURNAL_STREAM",
        ),
        (
            VncSetup::start_with(|c| c.set("log_format", "journal")),
            "log_format = journal",
        ),
    ] {
        let log = session_and_refusal(&setup);
        for line in log.lines() {
            let priority = line
                .strip_prefix('<')
                .and_then(|l| l.split_once('>'))
                .and_then(|(n, _)| n.parse::<u8>().ok());
            assert!(
                priority.is_some_and(|p| (3..=7).contains(&p)),
                "{how}: no <N> prefix: {line:?}\n{log}"
            );
        }
        let line = |needle: &str| {
            log.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{how}: no {needle:?} in\n{log}"))
        };
        assert!(line("audit start session=1 ").starts_with("<6>[consolegate::audit] "));
        assert!(line("audit session=1 ").starts_with("<6>[consolegate::audit] "));
        assert!(line("session 2: token refused: unknown token").starts_with("<4>"));
    }
    // Without the journal (stderr is a file the variable does not name): plain text lines.
    let setup = VncSetup::start();
    let log = session_and_refusal(&setup);
    assert!(log.lines().all(|l| !l.starts_with('<')), "{log}");
}

/// A proxy behind HAProxy (send-proxy-v2) whose JSON token source gives `tk-audit` the caller
/// fields `user` and `instance`, in `format`.
fn behind_haproxy_with_caller_fields(qemu: &Qemu, format: &str, user: &str) -> Proxy {
    let config = Config::new();
    let tokens = serde_json::json!({
        "tk-audit": {"address": qemu.addr(), "audit": {"user": user, "instance": "i-42"}}
    });
    let path = config.dir().join("tokens.json");
    std::fs::write(&path, tokens.to_string()).unwrap();
    Proxy::start(
        config
            .set("token_source", &format!("json:{}", path.display()))
            .set("trusted_proxies", &HAPROXY_SOURCE.to_string())
            .set("proxy_protocol", "true")
            .set("log_format", format),
    )
}

#[test]
fn text_audit_lines_through_haproxy_field_by_field() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    let proxy = behind_haproxy_with_caller_fields(&qemu, "text", "alice");
    let lb = Haproxy::start(Mode::TcpProxyV2, &[proxy.addr()]);
    let mut ws = Client::default().source(CLIENT).open(&lb.url("tk-audit"));
    let client = ws.tcp().local_addr().unwrap().to_string();
    assert_qemu_console(&mut ws);
    ws.close();
    let log = proxy
        .wait_for_log("audit session=1 ", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no audit line:\n{}", proxy.log()));
    let start = audit::find_line(&log, "audit start ", 1).expect("start line");
    let start = audit::fields(start, "audit start ");
    let end = audit::fields(
        audit::find_line(&log, "audit ", 1).expect("end line"),
        "audit ",
    );
    let common = [
        ("session", "1".to_string()),
        ("client", client.clone()),
        ("token", token_hash("tk-audit")),
        ("kind", "vnc".into()),
        ("target", qemu.addr()),
        ("driver", "noop".into()),
        ("caller_user", "alice".into()),
        ("caller_instance", "i-42".into()),
    ];
    for (key, want) in &common {
        assert_eq!(start.get(*key), Some(want), "start {key}: {start:?}");
        assert_eq!(end.get(*key), Some(want), "end {key}: {end:?}");
    }
    assert_eq!(start.len(), common.len(), "{start:?}");
    assert_eq!(end["close"], "client closed");
    for key in ["up", "down", "duration_ms"] {
        end[key]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{key}: {end:?}"));
    }
    assert!(
        !log.contains("tk-audit"),
        "the token itself is never logged:\n{log}"
    );
}

#[test]
fn json_audit_lines_through_haproxy_field_by_field() {
    let qemu = Qemu::start(qemu::Mode::VncNone);
    // A caller field that tries to break the line and forge a field.
    let nasty = "alice\" , \"client\": \"1.2.3.4\nforged=1";
    let proxy = behind_haproxy_with_caller_fields(&qemu, "json", nasty);
    let lb = Haproxy::start(Mode::TcpProxyV2, &[proxy.addr()]);
    let mut ws = Client::default().source(CLIENT).open(&lb.url("tk-audit"));
    let client = ws.tcp().local_addr().unwrap().to_string();
    assert_qemu_console(&mut ws);
    ws.close();
    proxy
        .wait_for_log("audit session=1 ", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no audit line:\n{}", proxy.log()));
    let log = proxy.log();
    // Every line is one JSON object with its priority.
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(
            v["priority"].as_u64().is_some_and(|p| (3..=7).contains(&p)),
            "{line}"
        );
        assert!(v["time"].is_string() && v["message"].is_string(), "{line}");
    }
    let records = audit::json_records(&log);
    assert_eq!(records.len(), 2, "{log}");
    let (start, end) = (&records[0], &records[1]);
    assert_eq!(
        (start["event"].as_str(), end["event"].as_str()),
        (Some("start"), Some("end"))
    );
    for record in [start, end] {
        assert_eq!(record["level"], "INFO");
        assert_eq!(record["priority"], 6);
        assert_eq!(record["session"], 1);
        assert_eq!(record["client"], client.as_str());
        assert_eq!(record["token"], token_hash("tk-audit"));
        assert_eq!(record["kind"], "vnc");
        assert_eq!(record["target"], qemu.addr());
        assert_eq!(record["driver"], "noop");
        assert_eq!(record["caller_user"], nasty);
        assert_eq!(record["caller_instance"], "i-42");
    }
    assert_eq!(end["close"], "client closed");
    assert!(
        end["up"].as_u64().is_some() && end["down"].as_u64().unwrap() > 0,
        "{end}"
    );
    assert!(end["duration_ms"].as_u64().is_some(), "{end}");
    assert!(start.get("up").is_none(), "{start}");
}
