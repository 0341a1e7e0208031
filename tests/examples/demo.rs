//! The demo: a QEMU VM whose VNC console is served only over VeNCrypt x509 (mutual TLS), and
//! consolegate in front of it with its embedded default configuration: the `vencrypt` driver,
//! a throw-away PKI, one token, wss with the test certificate, and the console pages (`web/`,
//! built by `web/build.sh`) served from the proxy's own `web` directory.
//!
//! It checks the console end to end through the proxy (RFB over the websocket, ServerInit from
//! QEMU), prints how to open it in a browser, and keeps running until Enter (or end of input).
//! `--check` exits after the check. Run it with `./demo.sh` (which installs QEMU if needed).

use std::io::BufRead;

use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::qemu::{Mode, Options, Qemu};
use consolegate_tests::rfb::{self, Version};
use consolegate_tests::web::web_dir;
use consolegate_tests::ws;

const TOKEN: &str = "demo";

fn main() {
    let check_only = std::env::args().any(|a| a == "--check");
    let set = &pki().trusted;
    println!(
        "1. test PKI (CA, QEMU server certificate, proxy client certificate) in {}",
        set.dir().display()
    );

    let qemu = Qemu::start_with(
        Mode::VencryptX509None,
        Options {
            name: Some("consolegate-demo".into()),
            ..Options::default()
        },
    );
    println!(
        "2. QEMU (pid {}) serves its VNC console on 127.0.0.1:{} with VeNCrypt X509None only \
         (tls-creds-x509, verify-peer=on)",
        qemu.pid(),
        qemu.port()
    );

    let web = web_dir();
    let config = Config::new()
        .tls()
        .set("web", &web.path().display().to_string())
        .trusted_tls_drivers("vencrypt")
        .token(TOKEN, &format!("vnc://127.0.0.1:{}", qemu.port()));
    let proxy = Proxy::start(config);
    println!(
        "3. consolegate (pid {}) listens on {}; its configuration:",
        proxy.pid(),
        proxy.addr()
    );
    for line in proxy
        .config()
        .text()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        println!("     {line}");
    }

    let mut client = ws::open(&proxy.url(TOKEN));
    match rfb::handshake(&mut client, Version::V3_8) {
        Ok(init) => println!(
            "4. through the proxy: RFB None to the browser, VeNCrypt x509 to QEMU -> ServerInit \
             {}x{} \"{}\"",
            init.width, init.height, init.name
        ),
        Err(e) => {
            eprintln!(
                "demo: the console did not answer through the proxy: {e}\n{}",
                proxy.log()
            );
            std::process::exit(1);
        }
    }
    client.close();
    if check_only {
        println!("demo: OK");
        return;
    }
    println!(
        "\nOpen https://127.0.0.1:{}/vnc.html?token={TOKEN} in a browser on this machine.\n\
         The certificate is the test PKI's: trust {} in the browser, or accept its warning.\n\
         Press Enter to stop.",
        proxy.addr().port(),
        set.ca_cert().display()
    );
    let _ = std::io::stdin().lock().lines().next();
    println!(
        "{}",
        proxy
            .log()
            .lines()
            .filter(|l| l.contains("audit"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
