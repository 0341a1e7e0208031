//! The demo: a QEMU VM whose VNC console is served only over VeNCrypt x509 (mutual TLS), and
//! consolegate in front of it with its embedded default configuration: the `vencrypt` driver,
//! a throw-away PKI, one token, wss with the test certificate, and the console pages (`web/`,
//! built by `web/build.sh`) served from the proxy's own `web` directory.
//!
//! It checks the console end to end through the proxy (RFB over the websocket, ServerInit from
//! QEMU), prints how to open it in a browser, and keeps running until Ctrl-C, SIGTERM, or Enter
//! when stdin is a terminal (without one, only a signal stops it); then stops QEMU and the proxy.
//! `--check` exits after the check. Run it with `./demo.sh` (which installs QEMU if needed).

use std::io::{BufRead, IsTerminal};

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
         {}",
        proxy.addr().port(),
        set.ca_cert().display(),
        if std::io::stdin().is_terminal() {
            "Press Enter or Ctrl-C to stop."
        } else {
            "Send SIGINT or SIGTERM to stop."
        }
    );
    wait_for_stop();
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

/// Returns on SIGINT or SIGTERM, or on Enter when stdin is a terminal (without one, only a
/// signal stops the demo), so that the proxy and QEMU are stopped by their `Drop`.
fn wait_for_stop() {
    let (stop, stopped) = std::sync::mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .expect("signal handlers");
    let on_signal = stop.clone();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = on_signal.send(());
        }
    });
    if std::io::stdin().is_terminal() {
        std::thread::spawn(move || {
            let _ = std::io::stdin().lock().lines().next();
            let _ = stop.send(());
        });
    }
    let _ = stopped.recv();
}
