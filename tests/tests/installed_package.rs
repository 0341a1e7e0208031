//! The installed `.deb`, run as an operator would (steps 2 and 3 of the install test): the
//! installed `consolegate --check-config` refuses the packaged configuration while its PKI is
//! missing and accepts it once a test PKI is in `/etc/consolegate/pki` (checked as the
//! `consolegate` user, so the modes of `/etc/consolegate` are checked too); then the installed
//! binary, with the installed drivers and the packaged configuration changed only in its listen
//! port and token source, serves a QEMU VeNCrypt console over wss and the installed console
//! pages.
//!
//! `packaging/install-test.sh` installs the package and runs this test (it is ignored by a
//! plain `cargo test`, which installs nothing).

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;
use std::process::Command;

use consolegate_tests::http;
use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::setup::assert_qemu_console;
use consolegate_tests::ws;

const BINARY: &str = "/usr/bin/consolegate";
const CONFIG: &str = "/etc/consolegate/consolegate.conf";
const PKI: &str = "/etc/consolegate/pki";
const TOKEN: &str = "installed-package-7c1d9e";

/// `consolegate --check-config` on the packaged configuration, as the `consolegate` user:
/// the exit code and everything printed.
fn check_config_as_service_user() -> (i32, String) {
    let out = Command::new("setpriv")
        .args([
            "--reuid=consolegate",
            "--regid=consolegate",
            "--init-groups",
            BINARY,
            "--check-config",
            "--config",
            CONFIG,
        ])
        .output()
        .expect("run setpriv (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Puts the test PKI's CA, wss certificate and client certificate where the packaged
/// configuration expects them, readable by the consolegate group only.
fn install_test_pki() {
    let set = &pki().trusted;
    let group = group_id("consolegate");
    for source in [
        set.ca_cert(),
        set.server_cert(),
        set.server_key(),
        set.client_cert(),
        set.client_key(),
    ] {
        let target = Path::new(PKI).join(source.file_name().unwrap());
        fs::copy(&source, &target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        chown(&target, Some(0), Some(group)).unwrap();
    }
}

fn group_id(name: &str) -> u32 {
    let out = Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    line.split(':')
        .nth(2)
        .and_then(|gid| gid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no group {name}: is the package installed? ({line:?})"))
}

/// The packaged configuration with `listen` and `token_source` replaced.
fn adjusted(packaged: &str, listen: &str, tokens: &Path) -> String {
    let mut replaced = 0;
    let text: Vec<String> = packaged
        .lines()
        .map(|line| {
            if line.starts_with("listen = ") {
                replaced += 1;
                format!("listen = {listen}")
            } else if line.starts_with("token_source = ") {
                replaced += 1;
                format!("token_source = file:{}", tokens.display())
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(replaced, 2, "listen and token_source in {CONFIG}");
    text.join("\n") + "\n"
}

#[test]
#[ignore = "needs the .deb installed: packaging/install-test.sh runs it"]
fn the_installed_package_serves_a_vencrypt_console_and_its_pages() {
    assert!(
        Path::new(BINARY).is_file(),
        "{BINARY} is missing: install the .deb first (packaging/install-test.sh does)"
    );
    let packaged = fs::read_to_string(CONFIG).expect("the packaged configuration");

    // Step 2: refused while the PKI is missing, with the path and the reason.
    let (code, out) = check_config_as_service_user();
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("cannot use /etc/consolegate/pki/server-cert.pem")
            && out.contains("No such file or directory"),
        "the refusal names the missing certificate: {out}"
    );
    install_test_pki();
    let (code, out) = check_config_as_service_user();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("driver 'vencrypt'")
            && out.contains("/usr/lib/consolegate/drivers/libconsolegate_vencrypt.so")
            && out.contains("configuration OK"),
        "{out}"
    );

    // Step 3: the installed binary and drivers serve a VeNCrypt console over wss.
    let qemu = Qemu::start(Mode::VencryptX509None);
    let config = Config::new()
        .set("ssl_certificate", &format!("{PKI}/server-cert.pem"))
        .token(TOKEN, &qemu.addr())
        .daemon_binary(Path::new(BINARY));
    let listen = format!("127.0.0.1:{}", config.port());
    let text = adjusted(&packaged, &listen, &config.dir().join("tokens"));
    let proxy = Proxy::start(config.with_text(text));
    let mut session = ws::open(&proxy.url(TOKEN));
    assert_qemu_console(&mut session);
    session.close();

    let page = http::exchange_tls(
        proxy.addr(),
        b"GET /vnc.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(page.status, 200, "{}", proxy.log());
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.header("content-type")
    );
    assert!(page.body.contains("<html"), "{}", page.body);
}
