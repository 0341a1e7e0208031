//! `token_source = json:PATH` through `token::open`, as the daemon opens it: libvirt-console-proxy's
//! token file, with lifetime rules, malformed entries, reload on change and on SIGHUP.

mod token_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consolegate::token::{token_hash, Kind, TokenError, TokenSource};
use consolegate_tests::scratch::TempDir;
use token_support::{admit, open};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn found_unknown_expired_and_single_use() {
    let dir = TempDir::new("json-basic");
    let path = dir.join("tokens.json");
    let text = format!(
        r#"{{
            "vnc-1": {{"type": "vnc", "address": "10.0.0.5:5901", "insecure": false,
                       "tlsTunnel": false, "password": "pw", "username": "alice"}},
            "old": {{"type": "vnc", "address": "h:1", "expires": {past}}},
            "fresh": {{"type": "serial", "address": "[::1]:7000", "expires": {future}}},
            "once": {{"type": "vnc", "address": "h:2", "single_use": true}}
        }}"#,
        past = unix_now() - 10,
        future = unix_now() + 600
    );
    std::fs::write(&path, text).unwrap();
    let src = open(&format!("json:{}", path.display()), "");
    assert_eq!(src.describe(), format!("json:{}", path.display()));

    let c = src.lookup("vnc-1").unwrap();
    assert_eq!((c.kind, c.address().as_str()), (Kind::Vnc, "10.0.0.5:5901"));
    assert_eq!(
        (c.username.as_deref(), c.password.as_deref()),
        (Some("alice"), Some("pw"))
    );
    assert_eq!(
        src.lookup("vnc-1").unwrap().port,
        5901,
        "not single-use: usable again"
    );

    assert_eq!(src.lookup("nope"), Err(TokenError::Unknown));
    assert_eq!(src.lookup("old"), Err(TokenError::Expired));
    assert_eq!(src.lookup("fresh").unwrap().kind, Kind::Serial);
    assert!(src.lookup("once").unwrap().single_use);
    assert!(
        admit(&*src, "once").is_ok(),
        "a lookup alone does not consume"
    );
    assert_eq!(src.lookup("once"), Err(TokenError::AlreadyUsed));
}

#[test]
fn a_malformed_entry_names_the_file_and_the_token_hash() {
    let dir = TempDir::new("json-malformed");
    let path = dir.join("tokens.json");
    std::fs::write(
        &path,
        r#"{"good": {"address": "h:1"}, "sekrit": {"type": "rdp", "address": "h:1"}}"#,
    )
    .unwrap();
    let src = open(&format!("json:{}", path.display()), "");
    assert!(
        src.lookup("good").is_ok(),
        "one bad entry does not spoil the others"
    );
    let err = src.lookup("sekrit").unwrap_err();
    assert_eq!(
        err,
        TokenError::Malformed {
            location: format!(
                "{} entry for token hash {}",
                path.display(),
                token_hash("sekrit")
            ),
            detail: "unknown type 'rdp' (use vnc, spice or serial)".into(),
        }
    );
    assert!(!err.to_string().contains("sekrit"));
}

#[test]
fn a_file_that_is_not_json_fails_at_open_and_keeps_old_tokens_on_reload() {
    let dir = TempDir::new("json-syntax");
    let path = dir.join("tokens.json");
    std::fs::write(&path, "{\n \"t\": {\"address\": \"h:1\"}\n").unwrap();
    let err = consolegate::token::open(&format!("json:{}", path.display()), &ini::Ini::new())
        .err()
        .expect("a truncated file is refused");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "malformed token entry at {}: not valid JSON (Eof error at line 3",
            path.display()
        )),
        "{text}"
    );

    std::fs::write(&path, r#"{"t": {"address": "h:1"}}"#).unwrap();
    let src = open(&format!("json:{}", path.display()), "");
    std::fs::write(&path, r#"{"t": "#).unwrap();
    assert!(matches!(src.reload(), Err(TokenError::Malformed { .. })));
    assert_eq!(src.lookup("t").unwrap().port, 1, "the previous tokens stay");
}

#[test]
fn changes_are_picked_up_within_a_second_and_on_reload() {
    let dir = TempDir::new("json-reload");
    let path = dir.join("tokens.json");
    std::fs::write(&path, r#"{"a": {"address": "h:1"}}"#).unwrap();
    let src = open(&format!("json:{}", path.display()), "");
    assert_eq!(src.lookup("b"), Err(TokenError::Unknown));

    std::fs::write(
        &path,
        r#"{"a": {"address": "h:1"}, "b": {"address": "h:2"}}"#,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(src.lookup("b").unwrap().port, 2);

    std::fs::write(&path, r#"{"c": {"address": "h:3"}}"#).unwrap();
    src.reload().unwrap();
    assert_eq!(src.lookup("c").unwrap().port, 3);
    assert_eq!(src.lookup("a"), Err(TokenError::Unknown));
}

#[test]
fn a_single_use_spice_token_serves_its_channels_for_the_grace_time() {
    let dir = TempDir::new("json-spice");
    let path = dir.join("tokens.json");
    std::fs::write(
        &path,
        r#"{"s": {"type": "spice", "address": "h:5930", "single_use": true}}"#,
    )
    .unwrap();
    let src = open(
        &format!("json:{}", path.display()),
        "[tokens]\nspice_grace_seconds = 0.5\n",
    );
    for channel in 0..4 {
        assert_eq!(
            admit(&*src, "s").unwrap().kind,
            Kind::Spice,
            "channel {channel}"
        );
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(src.lookup("s"), Err(TokenError::AlreadyUsed));
}

#[test]
fn a_missing_file_is_unavailable_at_open() {
    let err = consolegate::token::open("json:/nonexistent/tokens.json", &ini::Ini::new())
        .err()
        .unwrap();
    assert!(matches!(err, TokenError::Unavailable(_)), "{err}");
}

#[test]
fn the_example_file_loads_without_problems() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/tokens.json.example");
    let src = consolegate::token::json::JsonFile::open(path).unwrap();
    assert_eq!(src.problems(), Vec::<String>::new());
    let spice = src.lookup("c3d2e1f0a9b8c7d6").unwrap();
    assert_eq!((spice.kind, spice.single_use), (Kind::Spice, true));
}

#[test]
fn a_malformed_token_never_reaches_the_json_file() {
    let dir = TempDir::new("json-malformed");
    let path = dir.join("tokens.json");
    std::fs::write(&path, r#"{"..": "h:1", "a b": "h:2", "ok": "h:3"}"#).unwrap();
    let src = open(&format!("json:{}", path.display()), "");
    for token in ["..", "a b"] {
        assert!(
            matches!(src.lookup(token), Err(TokenError::BadFormat(_))),
            "{token:?}: refused before the file is asked"
        );
    }
    assert_eq!(src.lookup("ok").unwrap().port, 3);
}
