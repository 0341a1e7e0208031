//! A real QEMU per test, started like `/work/shared/peers/start-qemu.sh` does: headless,
//! TCG, daemonized with a pidfile in its own state directory, booting the 182-byte console-echo
//! guest (it prints a banner and echoes COM1 byte for byte). [`Qemu::start`] returns once QEMU
//! is ready: every port listens, a VNC port greets `RFB 003.008`, and the guest has booted
//! (the screen is then in 720x400 text mode). Dropping a [`Qemu`] kills it.
//!
//! [`Qemu::start_custom`] runs QEMU without a guest on the caller's command line, for
//! consoles no [`Mode`] has (an HMP monitor on a TLS chardev, VNC with SASL).
//!
//! A missing `qemu-system-x86_64` fails the test with a message saying what to install.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::pki::pki;
use crate::ports::{self, PortLease};
use crate::scratch::{run_dir, TempDir};
use crate::{rfb, wait};

/// The QEMU binary (`$QEMU` overrides it, as in start-qemu.sh).
pub fn qemu_binary() -> String {
    std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

/// How long QEMU may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The console-echo guest's boot sector (source: `/work/shared/peers/echo-guest.asm`).
const BOOT_HEX: &str = "fa31c08ed88ec08ed0bc007cc70630007e7cc70632000000bafb03b080eebaf803b001eeb\
    af90330c0eebafb03b003eebafa03b0c7eebaf903b001eebafc03b00beee42124efe621be9c7cac08c0740eb40eb\
    b0700cd10e80800e6e9ebedfbf4ebfc50515288c4b9ffffbafd03eca8207502e2f988e0baf803ee5a5958c35052b\
    afd03eca8017409baf803ece8d3ffebefbafa03ecb020e6205a58cf636f6e736f6c652d6563686f20677565737\
    42072656164790d0a";

/// What the hypervisor leg sees: the modes of start-qemu.sh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// RFB 3.8, security types `[1 None]`.
    VncNone,
    /// RFB 3.8, `[2 VncAuth]` with this password (only 8 characters count).
    VncPassword(String),
    /// `[19 VeNCrypt]` with subtype `[260 X509None]`; a client certificate is required.
    VencryptX509None,
    /// Subtype 260 without asking for a client certificate.
    VencryptX509NoneNoverify,
    /// `[19]` with subtype `[261 X509Vnc]` (mutual TLS, then VNC DES with this password).
    VencryptX509Vnc(String),
    /// SPICE on a plain port ([`Qemu::port`]) and a TLS port ([`Qemu::tls_port`]); no ticket
    /// unless a password is given.
    Spice(Option<String>),
    /// SPICE on the TLS port only.
    SpiceTlsOnly(Option<String>),
    /// COM1 on a TLS socket chardev; a client certificate is required.
    SerialTls,
    /// COM1 on a plain TCP socket chardev.
    SerialPlain,
    /// No guest (`-machine none`), these arguments: see [`Qemu::start_custom`], the only way
    /// to start it.
    Custom(Vec<String>),
}

/// Optional extras for [`Qemu::start_with`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// VM name: the VNC desktop name becomes `QEMU (NAME)`.
    pub name: Option<String>,
    /// Only admit a client certificate with this subject DN, as QEMU prints it
    /// (`O=Console Proxy Test,CN=console-proxy`); VeNCrypt and serial-tls modes.
    pub authz: Option<String>,
    /// Log QEMU's `vnc_auth_*` and `qcrypto_tls*` trace events to [`Qemu::log`].
    pub trace: bool,
}

/// A running QEMU, killed when dropped.
#[derive(Debug)]
pub struct Qemu {
    pid: i32,
    mode: Mode,
    port: PortLease,
    tls_port: Option<PortLease>,
    state: TempDir,
}

impl Qemu {
    /// Starts QEMU in `mode` and waits until it is ready.
    pub fn start(mode: Mode) -> Self {
        Self::start_with(mode, Options::default())
    }

    /// Starts QEMU in `mode` with `options`; retries with other ports if one was taken
    /// between the probe and QEMU's bind.
    pub fn start_with(mode: Mode, options: Options) -> Self {
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&mode, &options) {
                Ok(qemu) => return qemu,
                Err(e) if e.contains("in use") => last_error = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last_error}")
    }

    /// Starts QEMU without a guest (`-machine none`) and with `args`, which use `port` (held
    /// for the VM's lifetime). Its sockets listen once this returns: QEMU daemonizes after
    /// creating them. Panics with QEMU's stderr if it fails.
    pub fn start_custom(port: PortLease, args: &[String]) -> Self {
        Self::start_custom_env(port, args, &[])
    }

    /// [`Qemu::start_custom`] with extra environment variables (SASL's `SASL_CONF_PATH`,
    /// Kerberos's `KRB5_CONFIG`).
    pub fn start_custom_env(port: PortLease, args: &[String], env: &[(String, String)]) -> Self {
        let state = TempDir::new("qemu");
        let mode = Mode::Custom(args.to_vec());
        let args = arguments(&mode, &Options::default(), &state, port.port(), None);
        let pid = launch(&mode, &args, &state, env).unwrap_or_else(|e| panic!("{e}"));
        Qemu {
            pid,
            mode,
            port,
            tls_port: None,
            state,
        }
    }

    /// The main port: VNC, serial, or SPICE's plain port (for `SpiceTlsOnly`, the TLS port).
    pub fn port(&self) -> u16 {
        self.port.port()
    }

    /// SPICE's TLS port.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port.as_ref().map(PortLease::port)
    }

    /// `127.0.0.1:PORT` of the main port, as a token file target.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// QEMU's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The mode it was started in.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// QEMU's log (its error messages and, with `trace`, trace events).
    pub fn log(&self) -> String {
        fs::read_to_string(self.state.join("qemu.log")).unwrap_or_default()
    }

    /// The QMP socket, for `/work/shared/peers/qmp.py` style commands.
    pub fn qmp_socket(&self) -> PathBuf {
        self.state.join("qmp.sock")
    }

    /// Sends `signal` to QEMU (a fault test's SIGKILL, SIGSTOP or SIGCONT), if it still runs.
    pub fn signal(&self, signal: i32) {
        if is_qemu(self.pid) {
            // SAFETY: kill(2) on the pid QEMU wrote to its pidfile, checked to be a QEMU.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Whether the process still runs (a zombie counts as dead: a daemonized QEMU's new
    /// parent may reap it late).
    pub fn is_alive(&self) -> bool {
        is_alive(self.pid)
    }

    fn try_start(mode: &Mode, options: &Options) -> Result<Self, String> {
        assert!(
            !matches!(mode, Mode::Custom(_)),
            "Mode::Custom starts with Qemu::start_custom"
        );
        let state = TempDir::new("qemu");
        let vnc = matches!(
            mode,
            Mode::VncNone
                | Mode::VncPassword(_)
                | Mode::VencryptX509None
                | Mode::VencryptX509NoneNoverify
                | Mode::VencryptX509Vnc(_)
        );
        let port = if vnc {
            ports::vnc_port()
        } else {
            ports::port()
        };
        let tls_port = matches!(mode, Mode::Spice(_)).then(ports::port);
        let args = arguments(
            mode,
            options,
            &state,
            port.port(),
            tls_port.as_ref().map(PortLease::port),
        );

        let pid = launch(mode, &args, &state, &[])?;
        let qemu = Qemu {
            pid,
            mode: mode.clone(),
            port,
            tls_port,
            state,
        };
        qemu.wait_ready()
            .map_err(|e| format!("QEMU ({mode:?}) not ready: {e}\n--- log: {}", qemu.log()))?;
        Ok(qemu)
    }

    fn wait_ready(&self) -> Result<(), String> {
        let ports: Vec<u16> = [Some(self.port()), self.tls_port()]
            .into_iter()
            .flatten()
            .collect();
        for port in ports {
            let ok = wait::until_true(READY_TIMEOUT, || ports::listening(port) || !self.is_alive());
            if !ok || !self.is_alive() {
                return Err(format!(
                    "port {port} not listening (alive: {})",
                    self.is_alive()
                ));
            }
        }
        if let Mode::VncNone
        | Mode::VncPassword(_)
        | Mode::VencryptX509None
        | Mode::VencryptX509NoneNoverify
        | Mode::VencryptX509Vnc(_) = self.mode
        {
            let greeting = rfb::server_greeting(self.port());
            if !greeting.starts_with("RFB 003.008") {
                return Err(format!(
                    "VNC port did not greet with RFB 003.008 (got {greeting:?})"
                ));
            }
        }
        // Until the guest has booted, the screen is 640x480 rather than the text mode's
        // 720x400, and a serial chardev has nobody reading the UART.
        {
            let banner = self.state.join("guest.log");
            let booted = wait::until_true(READY_TIMEOUT, || {
                fs::read_to_string(&banner).is_ok_and(|s| s.contains("console-echo guest ready"))
                    || !self.is_alive()
            });
            if !booted || !self.is_alive() {
                return Err("the echo guest did not boot".into());
            }
        }
        Ok(())
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if !is_qemu(self.pid) {
            return;
        }
        // SAFETY: kill(2) on the pid QEMU wrote to its pidfile, checked to be a QEMU. SIGCONT
        // lets a QEMU that a test stopped (SIGSTOP) act on the SIGTERM.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
            libc::kill(self.pid, libc::SIGCONT);
        }
        if !wait::until_true(Duration::from_secs(5), || !is_alive(self.pid)) {
            // SAFETY: as above.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}

/// Runs QEMU with `args` (it daemonizes) and returns the pid from its pidfile in `state`; an
/// error has QEMU's stderr and log.
fn launch(
    mode: &Mode,
    args: &[String],
    state: &TempDir,
    env: &[(String, String)],
) -> Result<i32, String> {
    let binary = qemu_binary();
    let out = Command::new(&binary)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {binary} ({e}): the integration tests need a real QEMU; install it \
                 with `apt-get install qemu-system-x86` (or run .ci/run)"
            )
        });
    let log = || fs::read_to_string(state.join("qemu.log")).unwrap_or_default();
    if !out.status.success() {
        return Err(format!(
            "QEMU ({mode:?}) exited with {} at start-up\n--- command: {binary} {}\n\
             --- stderr: {}\n--- log: {}",
            out.status,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            log()
        ));
    }
    fs::read_to_string(state.join("qemu.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| format!("QEMU daemonized but wrote no pidfile; log: {}", log()))
}

/// The command line: start-qemu.sh's common prefix, the guest, and the mode's extras.
fn arguments(
    mode: &Mode,
    options: &Options,
    state: &TempDir,
    port: u16,
    tls_port: Option<u16>,
) -> Vec<String> {
    let st = |name: &str| state.join(name).display().to_string();
    let daemon = [
        "-daemonize".into(),
        "-pidfile".into(),
        st("qemu.pid"),
        "-D".into(),
        st("qemu.log"),
    ];
    if let Mode::Custom(extra) = mode {
        let mut a: Vec<String> = [
            "-no-user-config",
            "-nodefaults",
            "-machine",
            "none",
            "-display",
            "none",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(daemon);
        a.extend(extra.iter().cloned());
        return a;
    }
    let mut a: Vec<String> = [
        "-no-user-config",
        "-nodefaults",
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-m",
        "64",
        "-display",
        "none",
        "-vga",
        "std",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(daemon);
    a.extend([
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", st("qmp.sock")),
    ]);
    a.extend([
        "-drive".into(),
        format!(
            "file={},format=raw,if=ide,snapshot=on",
            guest_image().display()
        ),
    ]);
    a.extend(["-debugcon".into(), format!("file:{}", st("guest.log"))]);
    if let Some(name) = &options.name {
        a.extend(["-name".into(), name.clone()]);
    }
    if options.trace {
        a.extend([
            "-trace".into(),
            "vnc_auth_*".into(),
            "-trace".into(),
            "qcrypto_tls*".into(),
        ]);
    }
    let authz = match &options.authz {
        Some(dn) => {
            a.extend([
                "-object".into(),
                format!("authz-simple,id=authz0,identity={}", dn.replace(',', ",,")),
            ]);
            ",tls-authz=authz0"
        }
        None => "",
    };
    let pki_dir = || pki().trusted.dir().display().to_string();
    let tls = |a: &mut Vec<String>, verify: &str| {
        a.extend([
            "-object".into(),
            format!(
                "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer={verify}",
                pki_dir()
            ),
        ]);
    };
    let secret = |a: &mut Vec<String>, id: &str, value: &str| {
        let file = state.write(&format!("{id}.secret"), value);
        a.extend([
            "-object".into(),
            format!("secret,id={id},file={},format=raw", file.display()),
        ]);
    };
    let display = |p: u16| format!("127.0.0.1:{}", p - 5900);
    match mode {
        Mode::VncNone => a.extend(["-vnc".into(), display(port)]),
        Mode::VncPassword(pw) => {
            secret(&mut a, "vncpw", pw);
            a.extend([
                "-vnc".into(),
                format!("{},password-secret=vncpw", display(port)),
            ]);
        }
        Mode::VencryptX509None | Mode::VencryptX509NoneNoverify => {
            tls(
                &mut a,
                if *mode == Mode::VencryptX509None {
                    "on"
                } else {
                    "off"
                },
            );
            a.extend([
                "-vnc".into(),
                format!("{},tls-creds=tls0{authz}", display(port)),
            ]);
        }
        Mode::VencryptX509Vnc(pw) => {
            tls(&mut a, "on");
            secret(&mut a, "vncpw", pw);
            a.extend([
                "-vnc".into(),
                format!(
                    "{},tls-creds=tls0{authz},password-secret=vncpw",
                    display(port)
                ),
            ]);
        }
        Mode::Spice(pw) | Mode::SpiceTlsOnly(pw) => {
            let mut sp = match tls_port {
                Some(tls_port) => format!("port={port},tls-port={tls_port}"),
                None => format!("tls-port={port}"),
            };
            sp.push_str(&format!(",addr=127.0.0.1,x509-dir={}", pki_dir()));
            match pw {
                Some(pw) => {
                    secret(&mut a, "spicepw", pw);
                    sp.push_str(",password-secret=spicepw");
                }
                None => sp.push_str(",disable-ticketing=on"),
            }
            a.extend(["-spice".into(), sp]);
        }
        Mode::Custom(_) => unreachable!("handled above"),
        Mode::SerialTls | Mode::SerialPlain => {
            let mut chardev =
                format!("socket,id=s0,host=127.0.0.1,port={port},server=on,wait=off,nodelay=on");
            if *mode == Mode::SerialTls {
                tls(&mut a, "on");
                chardev.push_str(&format!(",tls-creds=tls0{authz}"));
            }
            a.extend([
                "-chardev".into(),
                chardev,
                "-serial".into(),
                "chardev:s0".into(),
            ]);
        }
    }
    a
}

/// The guest's 1 MiB disk image (boot sector + padding), written once per test process;
/// QEMU opens it with `snapshot=on`, so every VM can share it.
fn guest_image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let hex: String = BOOT_HEX.split_whitespace().collect();
        let mut image: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("boot sector hex"))
            .collect();
        assert_eq!(
            image.len(),
            182,
            "the echo guest's boot sector is 182 bytes"
        );
        image.resize(510, 0);
        image.extend([0x55, 0xaa]);
        image.resize(1 << 20, 0);
        let path = run_dir().join("echo-guest.img");
        fs::write(&path, image).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    })
}

/// Alive and not a zombie.
fn is_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Whether `pid` is a QEMU (so Drop never signals a recycled pid).
fn is_qemu(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("qemu"))
}
