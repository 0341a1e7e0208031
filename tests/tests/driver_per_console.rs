//! Choosing the driver per console: with both VNC drivers loaded (`vencrypt, sasl_gssapi`),
//! a console object without `driver` is served by the first loaded driver for its kind
//! (vencrypt, to a VeNCrypt x509 QEMU), one with `"driver": "sasl_gssapi"` by that driver (to
//! a Kerberos-protected QEMU), and one naming a driver that is not loaded is refused with 502
//! before anything is connected.

use std::time::Duration;

use consolegate_tests::proxy::Proxy;
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb::{self, Version};
use consolegate_tests::sasl::{proxy_config, Realm, SaslQemu, Wire};
use consolegate_tests::ws;

#[test]
fn each_console_gets_the_driver_it_names_or_the_first_for_its_kind() {
    let realm = Realm::start();
    let kerberos = SaslQemu::start(&realm, "gssapi", Wire::Plain);
    let vencrypt = Qemu::start(Mode::VencryptX509None);
    let config = proxy_config(&realm).driver("vencrypt, sasl_gssapi");
    let tokens = config.dir().join("tokens.json");
    std::fs::write(
        &tokens,
        format!(
            r#"{{
  "tok-default-1": {{"address": "{}"}},
  "tok-kerberos-1": {{"address": "{}", "driver": "sasl_gssapi"}},
  "tok-missing-1": {{"address": "{}", "driver": "noop"}}
}}"#,
            vencrypt.addr(),
            kerberos.addr(),
            vencrypt.addr()
        ),
    )
    .unwrap();
    let config = config.set("token_source", &format!("json:{}", tokens.display()));
    let proxy = Proxy::start(config);

    for (token, driver) in [
        ("tok-default-1", "vencrypt"),
        ("tok-kerberos-1", "sasl_gssapi"),
    ] {
        let mut ws = ws::open(&proxy.url(token));
        let init = rfb::handshake(&mut ws, Version::V3_8)
            .unwrap_or_else(|e| panic!("{token}: {e}\n{}", proxy.log()));
        assert!(init.name.starts_with("QEMU"), "{init:?}");
        ws.close();
        let audit = format!("driver={driver} ");
        let log = proxy
            .wait_for_log(&audit, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no audit line with {audit}:\n{}", proxy.log()));
        assert!(log.contains(&audit), "{log}");
    }

    let refusal = ws::refusal(&proxy.url("tok-missing-1"));
    assert_eq!(refusal.status, 502, "{}", refusal.body);
    assert_eq!(
        refusal.body.trim_end(),
        "consolegate: the console's driver is not loaded"
    );
    let needle = "the console names driver 'noop', which is not loaded for vnc consoles (see \
                  console_proxy_security_driver)";
    assert!(
        proxy.wait_for_log(needle, Duration::from_secs(5)).is_some(),
        "{}",
        proxy.log()
    );
}
