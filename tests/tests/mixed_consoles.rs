//! One proxy, one configuration (`console_proxy_security_driver = vencrypt, spice_tls` and one
//! `[console_proxy_tls]`), three kinds of console side by side, each behind TLS on the
//! hypervisor leg: VNC (VeNCrypt X509None), SPICE (tls-port) and serial (TLS chardev).

use std::io::Write;
use std::time::Duration;

use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{check_config, workspace_root, Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb::read_n;
use consolegate_tests::setup::assert_qemu_console;
use consolegate_tests::spice::link_mess;
use consolegate_tests::ws::read_until;
use consolegate_tests::{wait, ws};

#[test]
fn vnc_spice_and_serial_consoles_side_by_side_in_one_proxy() {
    let vnc = Qemu::start(Mode::VencryptX509None);
    let spice = Qemu::start(Mode::SpiceTlsOnly(None));
    let serial = Qemu::start(Mode::SerialTls);
    let config = Config::new()
        .trusted_tls_drivers("vencrypt, spice_tls")
        .token("vnc-tok", &format!("vnc://{}", vnc.addr()))
        .token("spice-tok", &format!("spice://{}", spice.addr()))
        .token("serial-tok", &format!("serial://{}", serial.addr()));
    let (code, out) = check_config(&config);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("cleartext"),
        "every driver keeps the hypervisor leg in TLS: {out}"
    );
    let proxy = Proxy::start(config);

    // All three open at once.
    let mut vnc_ws = ws::open(&proxy.url("vnc-tok"));
    let mut spice_ws = ws::open(&proxy.url("spice-tok"));
    let mut serial_ws = ws::open(&proxy.url("serial-tok"));

    assert_qemu_console(&mut vnc_ws);

    spice_ws.write_all(&link_mess(1, 0)).unwrap(); // main channel
    let reply = read_n(&mut spice_ws, 20, "the SpiceLinkReply").unwrap();
    assert_eq!(&reply[..4], b"REDQ");
    assert_eq!(&reply[16..20], &[0, 0, 0, 0], "SPICE_LINK_ERR_OK");

    serial_ws.write_all(b"side-by-side").unwrap();
    read_until(&mut serial_ws, "side-by-side", Duration::from_secs(10));

    for ws in [vnc_ws, spice_ws, serial_ws] {
        ws.close();
    }
    let audited = |log: &String| log.matches("audit session=").count() == 3;
    let log = wait::until(Duration::from_secs(10), || {
        Some(proxy.log()).filter(audited)
    })
    .unwrap_or_else(|| panic!("three audit lines expected:\n{}", proxy.log()));
    for (kind, driver) in [
        ("vnc", "vencrypt"),
        ("spice", "spice_tls"),
        ("serial", "spice_tls"),
    ] {
        let line = format!("kind={kind} ");
        assert!(
            log.lines()
                .any(|l| l.contains(&line) && l.contains(&format!("driver={driver}"))),
            "no audit line for {kind} through {driver}:\n{log}"
        );
    }
}

#[test]
fn the_all_consoles_example_configuration_loads_both_drivers() {
    let path = workspace_root().join("conf/all-consoles.conf.example");
    let text = std::fs::read_to_string(&path).unwrap();
    let set = &pki().trusted;
    let mut config = Config::new().unset("connect_insecure");
    let mut section = "DEFAULT".to_string();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        let (key, value) = (key.trim(), value.trim());
        // The harness's listen address, plain ws, token file and driver_dir stay.
        if ["listen", "ssl_certificate", "ssl_key", "token_source"].contains(&key) {
            continue;
        }
        let pem = |p: std::path::PathBuf| p.display().to_string();
        let value = match value.rsplit('/').next() {
            Some("ca-cert.pem") => pem(set.ca_cert()),
            Some("client-cert.pem") => pem(set.client_cert()),
            Some("client-key.pem") => pem(set.client_key()),
            _ => value.to_string(),
        };
        config = config.section(&section, key, &value);
    }
    let (code, out) = check_config(&config);
    assert_eq!(code, 0, "{}:\n{out}", path.display());
    assert!(
        out.contains("driver 'vencrypt'")
            && out.contains("driver 'spice_tls'")
            && out.contains("driver 'sasl_gssapi'"),
        "{out}"
    );
}
