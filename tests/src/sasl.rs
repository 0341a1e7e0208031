//! SASL-protected VNC consoles for the `sasl_gssapi` driver's tests:
//!
//! - [`Realm`]: a [`Kdc`] with the proxy's principal ([`PROXY_PRINCIPAL`]) and QEMU's service
//!   principal ([`SERVICE_PRINCIPAL`]), each in its own keytab.
//! - [`SaslQemu`]: a real QEMU with `-vnc …,sasl=on` (and `tls-creds` for VeNCrypt
//!   X509SASL), whose cyrus-sasl reads a `qemu.conf` from `SASL_CONF_PATH` (the `mech_list`,
//!   the keytab, and a `sasldb` made with `saslpasswd2` holding [`SCRAM_USER`]).
//! - [`Tap`]: a TCP relay in front of a console that keeps what the hypervisor sent, to check
//!   that no plaintext RFB crosses the hypervisor leg.
//! - [`proxy_config`]: the proxy with the `sasl_gssapi` driver, the realm's `KRB5_CONFIG`,
//!   the proxy's keytab and the test PKI for X509SASL.
//!
//! A missing `saslpasswd2` fails the test with what to install (`sasl2-bin`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::kdc::{Kdc, REALM};
use crate::pki::pki;
use crate::ports::{self, PortLease};
use crate::proxy::Config;
use crate::qemu::Qemu;
use crate::scratch::TempDir;

/// The proxy's own principal.
pub const PROXY_PRINCIPAL: &str = "consolegate/proxy";
/// QEMU's service principal for consoles reached at 127.0.0.1.
pub const SERVICE_PRINCIPAL: &str = "vnc/127.0.0.1";
/// The SCRAM user in QEMU's sasldb.
pub const SCRAM_USER: &str = "console-user";
/// Its password.
pub const SCRAM_PASSWORD: &str = "scram-pw-7d31c0";

/// A test realm with the proxy's and QEMU's keytabs.
#[derive(Debug)]
pub struct Realm {
    /// The KDC.
    pub kdc: Kdc,
    /// The proxy's client keytab.
    pub proxy_keytab: PathBuf,
    /// QEMU's service keytab.
    pub qemu_keytab: PathBuf,
}

impl Realm {
    /// Starts a KDC and makes both principals and keytabs.
    pub fn start() -> Self {
        let kdc = Kdc::start();
        kdc.add_principal(PROXY_PRINCIPAL);
        kdc.add_principal(SERVICE_PRINCIPAL);
        let proxy_keytab = kdc.keytab("proxy.keytab", &[PROXY_PRINCIPAL]);
        let qemu_keytab = kdc.keytab("qemu.keytab", &[SERVICE_PRINCIPAL]);
        Self {
            kdc,
            proxy_keytab,
            qemu_keytab,
        }
    }

    /// `PRINCIPAL@REALM`.
    pub fn full(name: &str) -> String {
        format!("{name}@{REALM}")
    }
}

/// How QEMU offers SASL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// RFB security type 20 on plain TCP.
    Plain,
    /// VeNCrypt X509SASL (263): x509 TLS with client certificates, then SASL.
    X509,
}

/// A QEMU with SASL on its VNC port, killed when dropped.
#[derive(Debug)]
pub struct SaslQemu {
    /// The QEMU.
    pub qemu: Qemu,
    _conf: TempDir,
}

impl SaslQemu {
    /// Starts QEMU offering SASL with cyrus-sasl's `mech_list` (`gssapi`,
    /// `gssapi scram-sha-256`, `plain`) over `wire`.
    pub fn start(realm: &Realm, mech_list: &str, wire: Wire) -> Self {
        let conf = TempDir::new("qemu-sasl");
        let sasldb = conf.join("passwd.db");
        make_sasldb(&sasldb, SCRAM_USER, SCRAM_PASSWORD);
        conf.write(
            "qemu.conf",
            format!(
                "mech_list: {mech_list}\nkeytab: {}\nsasldb_path: {}\n",
                realm.qemu_keytab.display(),
                sasldb.display()
            ),
        );
        let port = ports::vnc_port();
        let mut vnc = format!("127.0.0.1:{},sasl=on", port.port() - 5900);
        let mut args = Vec::new();
        if wire == Wire::X509 {
            args.push("-object".to_string());
            args.push(format!(
                "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=on",
                pki().trusted.dir().display()
            ));
            vnc.push_str(",tls-creds=tls0");
        }
        args.extend(["-vnc".to_string(), vnc]);
        let mut env = realm.kdc.env();
        env.push(("SASL_CONF_PATH".into(), conf.path().display().to_string()));
        env.push((
            "KRB5_KTNAME".into(),
            format!("FILE:{}", realm.qemu_keytab.display()),
        ));
        let qemu = Qemu::start_custom_env(port, &args, &env);
        Self { qemu, _conf: conf }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.qemu.addr()
    }
}

/// Writes a sasldb at `path` with `user`'s password (for QEMU's app name `qemu`).
fn make_sasldb(path: &std::path::Path, user: &str, password: &str) {
    let mut child = Command::new(crate::kdc::sbin("saslpasswd2"))
        .args(["-p", "-c", "-a", "qemu", "-f"])
        .arg(path)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run saslpasswd2 ({e}): install it with `apt-get install sasl2-bin`")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("saslpasswd2");
    assert!(
        out.status.success(),
        "saslpasswd2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The proxy with the `sasl_gssapi` driver: the realm's `KRB5_CONFIG`, the proxy's keytab, and
/// `[console_proxy_tls]` with the test PKI (for X509SASL).
pub fn proxy_config(realm: &Realm) -> Config {
    let set = &pki().trusted;
    Config::new()
        .tls_drivers("sasl_gssapi", set, Some(set))
        .section(
            "console_proxy_sasl",
            "keytab",
            &realm.proxy_keytab.display().to_string(),
        )
        .env("KRB5_CONFIG", &realm.kdc.krb5_conf().display().to_string())
}

/// A TCP relay to a console that records what the console sent.
#[derive(Debug)]
pub struct Tap {
    port: PortLease,
    from_console: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    /// Relays the next connection to `127.0.0.1:console_port`.
    pub fn start(console_port: u16) -> Self {
        let port = ports::port();
        let listener = TcpListener::bind(("127.0.0.1", port.port())).expect("bind the tap");
        let from_console = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&from_console);
        thread::spawn(move || {
            let Ok((browser_side, _)) = listener.accept() else {
                return;
            };
            let console = TcpStream::connect(("127.0.0.1", console_port)).expect("console");
            let (b2, c2) = (
                browser_side.try_clone().expect("clone"),
                console.try_clone().expect("clone"),
            );
            thread::spawn(move || pump(b2, c2, None));
            pump(console, browser_side, Some(record));
        });
        Self { port, from_console }
    }

    /// `127.0.0.1:PORT` to give the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port.port())
    }

    /// Everything the console sent so far.
    pub fn from_console(&self) -> Vec<u8> {
        self.from_console.lock().expect("tap").clone()
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, record: Option<Arc<Mutex<Vec<u8>>>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(r) = &record {
                    r.lock().expect("tap").extend_from_slice(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
