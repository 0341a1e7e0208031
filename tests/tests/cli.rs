//! The command line: `--check-config`, `--version`, `--help`.

use std::process::Command;

use consolegate_tests::proxy::{binary, check_config, Config};

#[test]
fn check_config_accepts_a_good_configuration() {
    let (code, out) = check_config(&Config::new().token("t", "127.0.0.1:5999"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration OK"), "{out}");
}

#[test]
fn keys_under_an_explicit_default_header_are_read() {
    let config = Config::new().token("t", "127.0.0.1:5999");
    let text = config.text_with_default_header(true);
    assert!(text.starts_with("[DEFAULT]\nlisten = "), "{text}");
    let (code, out) = check_config(&config.with_text(text));
    assert_eq!(
        code, 0,
        "a configuration with its keys under [DEFAULT] was refused: {out}"
    );
    assert!(out.contains("configuration OK"), "{out}");
}

#[test]
fn check_config_rejects_a_bad_key_value() {
    let (code, out) = check_config(&Config::new().set("max_connections", "many"));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("max_connections"),
        "the error names the key: {out}"
    );
}

#[test]
fn check_config_rejects_a_missing_configuration_file() {
    let out = Command::new(binary())
        .args([
            "--check-config",
            "--config",
            "/nonexistent/consolegate.conf",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/consolegate.conf"), "{stderr}");
}

#[test]
fn version_prints_the_package_version() {
    let out = Command::new(binary()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn help_names_the_options() {
    let out = Command::new(binary()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for option in ["--config", "--check-config", "--version", "--help"] {
        assert!(text.contains(option), "--help lacks {option}: {text}");
    }
}
