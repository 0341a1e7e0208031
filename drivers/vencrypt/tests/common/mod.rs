//! The driver's side of the VeNCrypt tests: the driver configured from the harness's test PKI,
//! an RFB 3.3/3.7/3.8 browser on a socketpair, a session run as the host runs it, a recording
//! TCP relay, and RFB client steps after the handshake. The peers (QEMU, TigerVNC Xvnc), the
//! PKI and the ports come from the harness (`consolegate_tests`); a missing peer fails the test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::{Channel, ConsoleRequest, Kind, Options};
use consolegate_tests::pki::pki;
use consolegate_tls_client::TlsChannel;
use consolegate_vencrypt::{Vencrypt, VencryptError};

/// `[console_proxy_tls]` options: the CA, the client identity (files relative to the trusted
/// PKI's directory, such as `rogue/client-cert.pem`; `None` for none), and `vencrypt_subtypes`
/// if given.
pub fn options(ca: &str, identity: Option<(&str, &str)>, subtypes: Option<&str>) -> Options {
    let path = |file: &str| pki().trusted.dir().join(file).display().to_string();
    let mut entries = vec![("ca_certificate", path(ca))];
    if let Some((cert, key)) = identity {
        entries.push(("client_certificate", path(cert)));
        entries.push(("client_key", path(key)));
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
pub fn driver() -> Vencrypt {
    Vencrypt::from_options(&options(
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
    let session = ConsoleRequest {
        kind: Kind::Vnc,
        hypervisor: "127.0.0.1",
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

/// A session with an RFB 3.8 browser that must succeed: the browser is accepted, and ServerInit
/// arrives through the channel.
pub fn reaches_server_init(
    driver: &Vencrypt,
    port: u16,
    username: Option<&str>,
    password: &str,
) -> ServerInit {
    let (result, saw) = session(driver, port, username, Some(password), "003.008", HANDSHAKE);
    let mut channel = result.unwrap();
    assert_eq!(saw, BrowserSaw::Accepted);
    Rfb(&mut channel).init()
}

/// A session with an RFB 3.8 browser whose credentials the server refuses: the error never
/// shows the password and has status AUTH, and the browser gets only the generic reason.
/// Returns the error (the server's own reason is in it, for the log).
pub fn refused_credentials(
    driver: &Vencrypt,
    port: u16,
    username: Option<&str>,
    password: &str,
) -> VencryptError {
    let (result, saw) = session(driver, port, username, Some(password), "003.008", HANDSHAKE);
    let e = result.unwrap_err();
    let message = e.to_string();
    assert!(
        !message.contains(password),
        "the password leaked: {message}"
    );
    assert_eq!(e.status(), CgStatus::AUTH, "{e}");
    let BrowserSaw::Refused(reason) = saw else {
        panic!("browser saw {saw:?}")
    };
    assert!(
        reason.starts_with("Console unavailable: the console refused the credentials (session "),
        "{reason}"
    );
    e
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
