//! Real peers and a real browser side for the VeNCrypt driver's tests: QEMU and TigerVNC
//! Xvnc started by the test, an RFB 3.3/3.7/3.8 browser on a socketpair, a recording TCP
//! relay, and RFB client steps after the handshake. A missing QEMU or Xvnc fails the test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use consolegate_driver_api::{Channel, Kind, Options, Session};
use consolegate_tls_client::test_pki::TestPki;
use consolegate_tls_client::TlsChannel;
use consolegate_vencrypt::{Vencrypt, VencryptError};

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cg-vencrypt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How QEMU's VNC server is configured (see /work/shared/peers/README.md).
pub enum QemuVnc<'a> {
    /// `-vnc 127.0.0.1:N`: security type None.
    Plain,
    /// `password-secret=`: VNC authentication, cleartext.
    Password(&'a str),
    /// `tls-creds=` (verify-peer=on): VeNCrypt X509None.
    X509None(&'a TestPki),
    /// `tls-creds=` + `password-secret=`: VeNCrypt X509Vnc.
    X509Vnc(&'a TestPki, &'a str),
}

/// The console-echo guest of start-qemu.sh (182-byte boot sector): it puts VGA into its
/// 720x400 text mode and writes "console-echo guest ready" to the debugcon.
const BOOT_HEX: &str = "fa31c08ed88ec08ed0bc007cc70630007e7cc70632000000bafb03b080eebaf803b001eebaf90330c0eebafb03b003eebafa03b0c7eebaf903b001eebafc03b00beee42124efe621be9c7cac08c0740eb40ebb0700cd10e80800e6e9ebedfbf4ebfc50515288c4b9ffffbafd03eca8207502e2f988e0baf803ee5a5958c35052bafd03eca8017409baf803ece8d3ffebefbafa03ecb020e6205a58cf636f6e736f6c652d6563686f2067756573742072656164790d0a";

/// A QEMU with a VNC server on 127.0.0.1:(5900 + display), killed on drop.
pub struct Qemu {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

impl Qemu {
    /// Starts QEMU (TCG, 64 MiB, the echo guest) and waits until the guest has booted, so
    /// the screen is in its 720x400 text mode.
    pub fn start(display: u16, vnc: QemuVnc<'_>) -> Self {
        let dir = TempDir::new(&format!("qemu-{display}"));
        let mut image: Vec<u8> = (0..BOOT_HEX.len() / 2)
            .map(|i| u8::from_str_radix(&BOOT_HEX[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        image.resize(510, 0);
        image.extend_from_slice(&[0x55, 0xaa]);
        image.resize(1 << 20, 0);
        std::fs::write(dir.0.join("guest.img"), &image).unwrap();

        let mut vnc_opt = format!("127.0.0.1:{display}");
        let mut args: Vec<String> = Vec::new();
        let secret = |args: &mut Vec<String>, password: &str| {
            let file = dir.0.join("vncpw.secret");
            std::fs::write(&file, password).unwrap();
            args.push("-object".into());
            args.push(format!(
                "secret,id=vncpw,file={},format=raw",
                file.display()
            ));
        };
        let tls = |args: &mut Vec<String>, pki: &TestPki| {
            args.push("-object".into());
            args.push(format!(
                "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=on",
                pki.dir().display()
            ));
        };
        match vnc {
            QemuVnc::Plain => {}
            QemuVnc::Password(pw) => {
                secret(&mut args, pw);
                vnc_opt += ",password-secret=vncpw";
            }
            QemuVnc::X509None(pki) => {
                tls(&mut args, pki);
                vnc_opt += ",tls-creds=tls0";
            }
            QemuVnc::X509Vnc(pki, pw) => {
                tls(&mut args, pki);
                secret(&mut args, pw);
                vnc_opt += ",tls-creds=tls0,password-secret=vncpw";
            }
        }
        let log = std::fs::File::create(dir.0.join("qemu.log")).unwrap();
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-no-user-config",
                "-nodefaults",
                "-machine",
                "q35",
                "-accel",
                "tcg",
            ])
            .args(["-m", "64", "-display", "none", "-vga", "std"])
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=ide,snapshot=on",
                dir.0.join("guest.img").display()
            ))
            .arg("-debugcon")
            .arg(format!("file:{}", dir.0.join("guest.log").display()))
            .args(&args)
            .args(["-vnc", &vnc_opt])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run qemu-system-x86_64 ({e}): apt-get install qemu-system-x86")
            });
        let mut qemu = Qemu {
            child,
            port: 5900 + display,
            dir,
        };
        qemu.wait_ready();
        qemu
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.0.join("qemu.log")).unwrap_or_default();
                panic!(
                    "QEMU for port {} exited ({status}) at startup:\n{log}",
                    self.port
                );
            }
            let booted = std::fs::read_to_string(self.dir.0.join("guest.log"))
                .is_ok_and(|l| l.contains("console-echo guest ready"));
            if booted && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "QEMU on port {} not ready after 20 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// TigerVNC Xvnc on 127.0.0.1:(5900 + display) offering X509Plain (PAM: user `proxy` with
/// `password`), X509Vnc (`password`), X509None, TLSVnc and VncAuth; stopped on drop.
pub struct Xvnc {
    child: Child,
    pub port: u16,
    pam_service: String,
    _dir: TempDir,
}

impl Xvnc {
    pub fn start(display: u16, pki: &TestPki, password: &str) -> Self {
        let dir = TempDir::new(&format!("xvnc-{display}"));
        // PAM: a check script gets $PAM_USER and the NUL-terminated password on stdin.
        let script = dir.0.join("check.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\npw=$(tr -d '\\000')\n[ \"$PAM_USER\" = proxy ] && [ \"$pw\" = '{password}' ]\n"
            ),
        )
        .unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&script)
            .status()
            .unwrap();
        let pam_service = format!("consolegate-vencrypt-test-{display}");
        std::fs::write(
            Path::new("/etc/pam.d").join(&pam_service),
            format!(
                "auth required pam_exec.so expose_authtok quiet {}\naccount required pam_permit.so\n",
                script.display()
            ),
        )
        .unwrap_or_else(|e| panic!("cannot write /etc/pam.d/{pam_service} (run as root): {e}"));
        let passwd = dir.0.join("passwd");
        let out = Command::new("vncpasswd")
            .arg("-f")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{password}\n").as_bytes())?;
                c.wait_with_output()
            })
            .unwrap_or_else(|e| {
                panic!("cannot run vncpasswd ({e}): apt-get install tigervnc-tools")
            });
        std::fs::write(&passwd, out.stdout).unwrap();
        let _ = std::fs::remove_file(format!("/tmp/.X{display}-lock"));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{display}"));
        let log = std::fs::File::create(dir.0.join("xvnc.log")).unwrap();
        let port = 5900 + display;
        let child = Command::new("Xvnc")
            .arg(format!(":{display}"))
            .args([
                "-rfbport",
                &port.to_string(),
                "-localhost",
                "-nolisten",
                "tcp",
            ])
            .args(["-desktop", "xvnc-peer"])
            .args([
                "-SecurityTypes",
                "X509Plain,X509Vnc,X509None,TLSVnc,VncAuth",
            ])
            .arg("-X509Cert")
            .arg(pki.path("server-cert.pem"))
            .arg("-X509Key")
            .arg(pki.path("server-key.pem"))
            .arg("-PasswordFile")
            .arg(&passwd)
            .args(["-PlainUsers", "proxy", "-PAMService", &pam_service])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run Xvnc ({e}): apt-get install tigervnc-standalone-server")
            });
        let mut xvnc = Xvnc {
            child,
            port,
            pam_service,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = xvnc.child.try_wait() {
                let log = std::fs::read_to_string(xvnc._dir.0.join("xvnc.log")).unwrap_or_default();
                panic!("Xvnc :{display} exited ({status}) at startup:\n{log}");
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut greeting = [0u8; 12];
                if s.read_exact(&mut greeting).is_ok() && &greeting == b"RFB 003.008\n" {
                    return xvnc;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Xvnc :{display} not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Xvnc {
    fn drop(&mut self) {
        // SIGTERM lets Xvnc remove its lock files.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(&self.pam_service));
    }
}

/// `[console_proxy_tls]` options: the CA, the client identity (files relative to the PKI
/// directory, `None` for none), and `vencrypt_subtypes` if given.
pub fn options(
    pki: &TestPki,
    ca: &str,
    identity: Option<(&str, &str)>,
    subtypes: Option<&str>,
) -> Options {
    let mut entries = vec![("ca_certificate", pki.path(ca).display().to_string())];
    if let Some((cert, key)) = identity {
        entries.push(("client_certificate", pki.path(cert).display().to_string()));
        entries.push(("client_key", pki.path(key).display().to_string()));
    }
    if let Some(s) = subtypes {
        entries.push(("vencrypt_subtypes", s.to_owned()));
    }
    Options::new(
        entries
            .into_iter()
            .map(|(k, v)| ("console_proxy_tls".into(), k.into(), v))
            .collect(),
    )
}

/// The driver with the good CA and client certificate.
pub fn driver(pki: &TestPki) -> Vencrypt {
    Vencrypt::from_options(&options(
        pki,
        "ca-cert.pem",
        Some(("client-cert.pem", "client-key.pem")),
        None,
    ))
    .unwrap()
}

/// What the browser saw of the security handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum BrowserSaw {
    /// Security type None completed.
    Accepted,
    /// The proxy reported a failure with this reason.
    Refused(String),
    /// The proxy broke the protocol or went away.
    Broken(String),
}

/// A noVNC-like browser speaking RFB `version` (`"003.008"`, `"003.007"`, `"003.003"`) up to
/// the end of its security handshake.
pub fn browser(version: &'static str, mut s: UnixStream) -> BrowserSaw {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    browser_steps(version, &mut s).unwrap_or_else(|e| BrowserSaw::Broken(e.to_string()))
}

fn browser_steps(version: &str, s: &mut UnixStream) -> std::io::Result<BrowserSaw> {
    let mut greeting = [0u8; 12];
    s.read_exact(&mut greeting)?;
    assert_eq!(&greeting, b"RFB 003.008\n");
    s.write_all(format!("RFB {version}\n").as_bytes())?;
    if version == "003.003" {
        return Ok(match read_u32(s)? {
            1 => BrowserSaw::Accepted,
            0 => BrowserSaw::Refused(read_reason(s)?),
            t => BrowserSaw::Broken(format!("security type {t}")),
        });
    }
    let mut count = [0u8; 1];
    s.read_exact(&mut count)?;
    if count[0] == 0 {
        return Ok(BrowserSaw::Refused(read_reason(s)?));
    }
    let mut types = vec![0u8; usize::from(count[0])];
    s.read_exact(&mut types)?;
    assert_eq!(types, [1], "the proxy offers None only");
    s.write_all(&[1])?;
    if version == "003.007" {
        return Ok(BrowserSaw::Accepted);
    }
    Ok(match read_u32(s)? {
        0 => BrowserSaw::Accepted,
        _ => BrowserSaw::Refused(read_reason(s)?),
    })
}

pub fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_reason(r: &mut impl Read) -> std::io::Result<String> {
    let len = read_u32(r)?;
    let mut b = vec![0u8; len as usize];
    r.read_exact(&mut b)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// A session to `port` as the host would run it: the driver's handshake with a browser of
/// RFB `version` on a socketpair. Returns the driver's result and what the browser saw.
pub fn session(
    driver: &Vencrypt,
    port: u16,
    username: Option<&str>,
    password: Option<&str>,
    version: &'static str,
    timeout: Duration,
) -> (Result<TlsChannel<TcpStream>, VencryptError>, BrowserSaw) {
    let back = TcpStream::connect(("127.0.0.1", port)).unwrap();
    back.set_nodelay(true).unwrap();
    let (mut front, browser_end) = UnixStream::pair().unwrap();
    let browser_thread = std::thread::spawn(move || browser(version, browser_end));
    let session = Session {
        kind: Kind::Vnc,
        host: "127.0.0.1",
        port,
        username,
        password,
        session_id: u64::from(port),
        handshake_timeout: timeout,
    };
    let result = driver.handshake(&session, &mut front, back);
    drop(front);
    (result, browser_thread.join().unwrap())
}

/// Blocking RFB client steps through an established channel (its socket is still blocking).
pub struct Rfb<'a>(pub &'a mut TlsChannel<TcpStream>);

impl Read for Rfb<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Channel::read(self.0, buf)
    }
}

impl Write for Rfb<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = Channel::write(self.0, buf)?;
        Channel::flush(self.0)?;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Channel::flush(self.0)
    }
}

/// ServerInit's size and name.
#[derive(Debug)]
pub struct ServerInit {
    pub width: u16,
    pub height: u16,
    pub bytes_per_pixel: usize,
    pub name: String,
}

impl Rfb<'_> {
    /// Sends ClientInit (shared) and reads ServerInit.
    pub fn init(&mut self) -> ServerInit {
        self.0
            .socket()
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        self.write_all(&[1]).unwrap();
        let mut head = [0u8; 24];
        self.read_exact(&mut head).unwrap();
        let name_len = u32::from_be_bytes([head[20], head[21], head[22], head[23]]);
        let mut name = vec![0u8; name_len as usize];
        self.read_exact(&mut name).unwrap();
        ServerInit {
            width: u16::from_be_bytes([head[0], head[1]]),
            height: u16::from_be_bytes([head[2], head[3]]),
            bytes_per_pixel: usize::from(head[4] / 8),
            name: String::from_utf8_lossy(&name).into_owned(),
        }
    }

    /// Requests a full (non-incremental) update and reads it (Raw encoding, since no
    /// SetEncodings was sent); returns the rectangles' pixels.
    pub fn framebuffer_update(&mut self, init: &ServerInit) -> Vec<u8> {
        let [w0, w1] = init.width.to_be_bytes();
        let [h0, h1] = init.height.to_be_bytes();
        self.write_all(&[3, 0, 0, 0, 0, 0, w0, w1, h0, h1]).unwrap();
        let mut head = [0u8; 4];
        self.read_exact(&mut head).unwrap();
        assert_eq!(
            head[0], 0,
            "FramebufferUpdate expected, got message type {}",
            head[0]
        );
        let rects = u16::from_be_bytes([head[2], head[3]]);
        let mut pixels = Vec::new();
        for _ in 0..rects {
            let mut rect = [0u8; 12];
            self.read_exact(&mut rect).unwrap();
            let w = usize::from(u16::from_be_bytes([rect[4], rect[5]]));
            let h = usize::from(u16::from_be_bytes([rect[6], rect[7]]));
            let encoding = i32::from_be_bytes([rect[8], rect[9], rect[10], rect[11]]);
            assert_eq!(encoding, 0, "Raw encoding expected");
            let start = pixels.len();
            pixels.resize(start + w * h * init.bytes_per_pixel, 0);
            self.read_exact(&mut pixels[start..]).unwrap();
        }
        pixels
    }
}

/// A TCP relay between the driver and a server that records both directions.
pub struct Relay {
    pub port: u16,
    to_server: Arc<Mutex<Vec<u8>>>,
    to_proxy: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Listens on an ephemeral port; relays the first connection to `upstream`.
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let to_server = Arc::new(Mutex::new(Vec::new()));
        let to_proxy = Arc::new(Mutex::new(Vec::new()));
        let (ts, tp) = (to_server.clone(), to_proxy.clone());
        let accept = std::thread::spawn(move || {
            let (proxy, _) = listener.accept().unwrap();
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            let copy = |mut from: TcpStream, mut to: TcpStream, log: Arc<Mutex<Vec<u8>>>| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                log.lock().unwrap().extend_from_slice(&buf[..n]);
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                })
            };
            let a = copy(proxy.try_clone().unwrap(), server.try_clone().unwrap(), ts);
            let b = copy(server, proxy, tp);
            let _ = (a.join(), b.join());
        });
        Relay {
            port,
            to_server,
            to_proxy,
            threads: vec![accept],
        }
    }

    /// Everything the driver sent to the server so far.
    pub fn to_server(&self) -> Vec<u8> {
        self.to_server.lock().unwrap().clone()
    }

    /// Everything the server sent to the driver so far.
    pub fn to_proxy(&self) -> Vec<u8> {
        self.to_proxy.lock().unwrap().clone()
    }
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub const HANDSHAKE: Duration = Duration::from_secs(10);
