//! SPICE consoles through the spice_tls driver against QEMU's SPICE tls-port: the SPICE link
//! (`REDQ`) answered by QEMU, a whole multi-channel session (one websocket per channel, one
//! token), and the refusals: wrong CA, wrong server name, a plain port, a silent peer.

use std::process::Command;
use std::time::Duration;

use consolegate_tests::backend::{Backend, Behaviour};
use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{check_config, Config, Proxy};
use consolegate_tests::qemu::{Mode, Qemu};
use consolegate_tests::rfb::read_n;
use consolegate_tests::scratch::TempDir;
use consolegate_tests::spice::link_mess;
use consolegate_tests::ws::{self, Ws};
use std::io::Write;

const TOKEN: &str = "spice-tok-4c1d9e7a2b";

/// SPICE channel types.
const MAIN: u8 = 1;
const DISPLAY: u8 = 2;
const INPUTS: u8 = 3;
const CURSOR: u8 = 4;
/// `SPICE_MSG_MAIN_INIT`.
const MAIN_INIT: u16 = 103;
/// Length of the RSA-1024 public key (DER SubjectPublicKeyInfo) in a SpiceLinkReply.
const PUBKEY_LEN: usize = 162;

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Sends the link message for `channel_type` and reads the SpiceLinkReply: its error code and
/// the server's public key.
fn link(ws: &mut Ws, channel_type: u8, connection_id: u32) -> (u32, Vec<u8>) {
    ws.write_all(&link_mess(channel_type, connection_id))
        .unwrap();
    let head = read_n(ws, 16, "the SpiceLinkReply header").unwrap();
    assert_eq!(&head[..4], b"REDQ", "reply magic: {head:?}");
    assert_eq!(
        (le32(&head[4..]), le32(&head[8..])),
        (2, 2),
        "reply version"
    );
    let size = le32(&head[12..]) as usize;
    assert!((4..4096).contains(&size), "reply size {size}");
    let body = read_n(ws, size, "the SpiceLinkReply").unwrap();
    let error = le32(&body);
    (
        error,
        body.get(4..4 + PUBKEY_LEN)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
    )
}

/// The SPICE ticket for "no password": RSA-OAEP (SHA-1) of a NUL with the server's key,
/// encrypted by the openssl CLI (the harness already needs it for the PKI).
fn empty_ticket(pubkey: &[u8]) -> Vec<u8> {
    let dir = TempDir::new("spice-ticket");
    let key = dir.write("pub.der", pubkey);
    let plain = dir.write("ticket.in", [0u8]);
    let out = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(&key)
        .args([
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha1",
            "-in",
        ])
        .arg(&plain)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 128, "an RSA-1024 ciphertext");
    out.stdout
}

/// Links `channel_type`, sends the ticket and checks the link result is OK (0).
fn authenticated_channel(proxy: &Proxy, channel_type: u8, connection_id: u32) -> Ws {
    let mut ws = ws::open(&proxy.url(TOKEN));
    let (error, pubkey) = link(&mut ws, channel_type, connection_id);
    assert_eq!(error, 0, "link reply of channel {channel_type}");
    ws.write_all(&empty_ticket(&pubkey)).unwrap();
    let result = read_n(&mut ws, 4, "the link result").unwrap();
    assert_eq!(le32(&result), 0, "link result of channel {channel_type}");
    ws
}

fn spice_proxy(qemu: &Qemu) -> Proxy {
    Proxy::start(
        Config::new()
            .trusted_tls_drivers("spice_tls")
            .token(TOKEN, &format!("spice://{}", qemu.addr())),
    )
}

#[test]
fn spice_link_through_spice_tls_gets_qemus_link_reply() {
    let qemu = Qemu::start(Mode::SpiceTlsOnly(None));
    let proxy = spice_proxy(&qemu);
    let mut ws = ws::open(&proxy.url(TOKEN));
    let (error, pubkey) = link(&mut ws, MAIN, 0);
    assert_eq!(error, 0, "SPICE_LINK_ERR_OK");
    assert_eq!(pubkey.len(), PUBKEY_LEN);
    assert_eq!(pubkey[0], 0x30, "a DER SEQUENCE");
    let log = proxy.log();
    assert!(
        log.contains(&format!("spice console {} over TLSv1_3", qemu.addr())),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the token appears in the log:\n{log}");
}

#[test]
fn a_spice_session_links_main_display_inputs_and_cursor_each_on_its_own_websocket() {
    let qemu = Qemu::start(Mode::SpiceTlsOnly(None));
    let proxy = spice_proxy(&qemu);
    let mut main = authenticated_channel(&proxy, MAIN, 0);
    let head = read_n(&mut main, 18, "the first main-channel message header").unwrap();
    assert_eq!(
        u16::from_le_bytes([head[8], head[9]]),
        MAIN_INIT,
        "{head:?}"
    );
    let size = le32(&head[10..]) as usize;
    let body = read_n(&mut main, size, "MAIN_INIT").unwrap();
    let session_id = le32(&body);
    let others: Vec<Ws> = [DISPLAY, INPUTS, CURSOR]
        .into_iter()
        .map(|channel| authenticated_channel(&proxy, channel, session_id))
        .collect();
    assert_eq!(others.len(), 3);
    let log = proxy.log();
    assert_eq!(
        log.matches("spice console").count(),
        4,
        "four TLS sessions:\n{log}"
    );
}

#[test]
fn spice_with_the_wrong_ca_is_refused_with_the_reason() {
    let qemu = Qemu::start(Mode::SpiceTlsOnly(None));
    let config = Config::new().tls_drivers("spice_tls", &pki().rogue, Some(&pki().trusted));
    let proxy = Proxy::start(config.token(TOKEN, &format!("spice://{}", qemu.addr())));
    let (reason, _) = proxy.driver_refusal(TOKEN);
    assert!(
        reason.contains("certificate is not signed by the configured CA"),
        "{reason}"
    );
}

#[test]
fn spice_with_the_wrong_server_name_is_refused_with_the_reason() {
    let qemu = Qemu::start(Mode::SpiceTlsOnly(None));
    let config = Config::new().trusted_tls_drivers("spice_tls").section(
        "console_proxy_tls",
        "server_name",
        "console.example",
    );
    let proxy = Proxy::start(config.token(TOKEN, &format!("spice://{}", qemu.addr())));
    let (reason, _) = proxy.driver_refusal(TOKEN);
    assert!(
        reason.contains("certificate is not valid for \"console.example\""),
        "{reason}"
    );
}

#[test]
fn spice_plain_port_gets_a_clean_not_tls_error_without_waiting() {
    let qemu = Qemu::start(Mode::Spice(None));
    let proxy = spice_proxy(&qemu); // the token names the plain port
    let (reason, took) = proxy.driver_refusal(TOKEN);
    assert!(
        reason.starts_with("not TLS: this is a plain SPICE port"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_silent_peer_is_refused_within_handshake_timeout() {
    let backend = Backend::start(Behaviour::Silent);
    let config = Config::new()
        .trusted_tls_drivers("spice_tls")
        .set("handshake_timeout", "1");
    let proxy = Proxy::start(config.token(TOKEN, &format!("spice://{}", backend.addr())));
    let (reason, took) = proxy.driver_refusal(TOKEN);
    assert_eq!(
        reason,
        "the TLS handshake with the hypervisor did not finish in time"
    );
    assert!(
        took < Duration::from_secs(4),
        "handshake_timeout = 1 took {took:?}"
    );
}

#[test]
fn check_config_loads_spice_tls_and_names_a_missing_ca() {
    let (code, out) = check_config(&Config::new().trusted_tls_drivers("spice_tls"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("driver 'spice_tls'") && out.contains("serves spice, serial"),
        "{out}"
    );
    // Neither a placeholder nor a cleartext driver.
    assert!(
        !out.contains("WARNING: driver") && !out.contains("cleartext"),
        "{out}"
    );
    let (code, out) = check_config(&Config::new().trusted_tls_drivers("spice_tls").section(
        "console_proxy_tls",
        "ca_certificate",
        "",
    ));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("[console_proxy_tls] ca_certificate is required"),
        "{out}"
    );
}
