//! What the fuzz targets share: in-memory peers that play back the fuzzer's bytes, a Unix
//! socket pair for the drivers' sockets, and a test PKI with an in-process TLS server for the
//! targets that need a real TLS session (`spice_link`, `serial_settle`).
//!
//! Everything here panics on setup failures: it is test support code, and a panic in the
//! harness shows up as a crash to look at, never as a silently skipped input.

#![deny(missing_docs)]

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use consolegate_driver_api::abi::{CgClientIo, CgStatus};
use consolegate_driver_api::{Browser, ConsoleSocket, Options};

/// A peer that sends `input` (then ends its stream) and records what it is sent, like
/// `consolegate_rfb::script` for the drivers' unit tests, but borrowing its input and
/// returning it in reads of a size the fuzzer picks.
#[derive(Debug)]
pub struct Script<'a> {
    input: &'a [u8],
    /// At most this many bytes per `read` (1 or more): the fuzzer also picks how the bytes
    /// arrive.
    chunk: usize,
    /// Everything written to the peer.
    pub output: Vec<u8>,
}

impl<'a> Script<'a> {
    /// A peer sending `input` in reads of at most `chunk` bytes (at least 1).
    pub fn new(input: &'a [u8], chunk: usize) -> Self {
        Self {
            input,
            chunk: chunk.max(1),
            output: Vec::new(),
        }
    }

    /// The bytes not read yet.
    pub fn unread(&self) -> &'a [u8] {
        self.input
    }
}

impl Read for Script<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Script<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connected pair: the driver's end as the host hands it over (a [`ConsoleSocket`], with the
/// descriptor that owns it), and the hypervisor's end.
///
/// The driver's end is a Unix socket, not TCP: loopback TCP would leave a TIME_WAIT port per
/// input and run out of ports within a minute. The drivers only read, write, shut down and set
/// `SO_RCVTIMEO`/`SO_SNDTIMEO` on it, which a Unix stream socket does the same way.
pub fn socket_pair() -> (OwnedFd, UnixStream) {
    let (driver, hypervisor) = UnixStream::pair().expect("socketpair");
    (OwnedFd::from(driver), hypervisor)
}

/// Borrows `fd` as the host's [`ConsoleSocket`].
pub fn server_socket(fd: &OwnedFd) -> ConsoleSocket {
    // SAFETY: `fd` is an open stream socket that the caller keeps open for as long as the
    // ConsoleSocket (which never closes it) is used; see socket_pair for why it is a Unix one.
    unsafe { ConsoleSocket::borrow_raw(fd.as_raw_fd()) }
}

/// The test harness's trusted PKI (openssl-made once a day and shared by every test process;
/// QEMU's file layout: `ca-cert.pem`, `server-cert.pem`, `client-key.pem`, ...).
pub fn pki() -> &'static consolegate_tests::pki::CertSet {
    &consolegate_tests::pki::pki().trusted
}

/// `[console_proxy_tls]` options trusting the test CA (and presenting the client certificate
/// when `client_certificate` is set).
pub fn tls_options(client_certificate: bool) -> Options {
    let path = |f: &str| pki().dir().join(f).display().to_string();
    let mut entries = vec![opt("ca_certificate", path("ca-cert.pem"))];
    if client_certificate {
        entries.push(opt("client_certificate", path("client-cert.pem")));
        entries.push(opt("client_key", path("client-key.pem")));
    }
    Options::new(entries)
}

fn opt(key: &str, value: String) -> (String, String, String) {
    ("console_proxy_tls".into(), key.into(), value)
}

/// A rustls server configuration with the test PKI's `localhost` certificate, limited to
/// one TLS version (`tls13` or 1.2).
pub fn tls_server_config(tls13: bool) -> Arc<rustls::ServerConfig> {
    static CONFIGS: OnceLock<[Arc<rustls::ServerConfig>; 2]> = OnceLock::new();
    let configs = CONFIGS.get_or_init(|| {
        let make = |version: &'static rustls::SupportedProtocolVersion| {
            use rustls_pki_types::pem::PemObject;
            let certs =
                rustls_pki_types::CertificateDer::pem_file_iter(pki_file("server-cert.pem"))
                    .expect("server certificate")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("server certificate");
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(pki_file("server-key.pem"))
                .expect("server key");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(&[version])
                    .expect("TLS version")
                    .with_no_client_auth()
                    .with_single_cert(certs, key)
                    .expect("server certificate and key"),
            )
        };
        [make(&rustls::version::TLS12), make(&rustls::version::TLS13)]
    });
    configs[usize::from(tls13)].clone()
}

fn pki_file(name: &str) -> PathBuf {
    pki().dir().join(name)
}

/// Plays the hypervisor's TLS server on `socket` until the handshake is done; `None` when the
/// client gave up (the target then checks the client's error instead).
pub fn tls_accept(socket: &mut UnixStream, tls13: bool) -> Option<rustls::ServerConnection> {
    let mut conn = rustls::ServerConnection::new(tls_server_config(tls13)).expect("server");
    while conn.is_handshaking() {
        tls_flush(&mut conn, socket).ok()?;
        if tls_pull(&mut conn, socket).ok()? == 0 {
            return None;
        }
    }
    // TLS 1.3 session tickets go out after the handshake.
    tls_flush(&mut conn, socket).ok()?;
    Some(conn)
}

/// Encrypts `plaintext` into records on `socket`.
pub fn tls_send(conn: &mut rustls::ServerConnection, socket: &mut UnixStream, plaintext: &[u8]) {
    conn.writer()
        .write_all(plaintext)
        .expect("buffer plaintext");
    tls_flush(conn, socket).expect("send TLS records");
}

/// Writes all pending TLS output.
pub fn tls_flush(conn: &mut rustls::ServerConnection, socket: &mut UnixStream) -> io::Result<()> {
    while conn.wants_write() {
        retry_interrupted(|| conn.write_tls(socket))?;
    }
    Ok(())
}

/// One read of TLS records from `socket`, then their processing; `Ok(0)` at the end of the
/// stream. No timeout: libFuzzer's `-timeout` catches a hang.
pub fn tls_pull(conn: &mut rustls::ServerConnection, socket: &mut UnixStream) -> io::Result<usize> {
    let n = retry_interrupted(|| conn.read_tls(socket))?;
    if let Err(e) = conn.process_new_packets() {
        let _ = tls_flush(conn, socket); // the alert, best effort
        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    Ok(n)
}

/// Runs `f` again while it fails with `Interrupted`: libFuzzer's timer signal (`-timeout`)
/// interrupts blocking calls.
pub fn retry_interrupted<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Waits for `events` on `fd` (`libc::POLLIN`, `libc::POLLOUT`); panics after 10 s without
/// progress (the peer's side of the target is stuck).
pub fn wait(fd: &impl AsRawFd, events: libc::c_short) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 10_000) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        assert!(n == 1, "no progress within 10 s");
        return;
    }
}

/// Reads with `read` (a non-blocking channel over `fd`) to the end: what it yielded, and the error that
/// ended it early, if any.
pub fn read_to_end(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    fd: &impl AsRawFd,
) -> (Vec<u8>, Option<io::Error>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(fd, libc::POLLIN),
            Err(e) => return (got, Some(e)),
        }
    }
}

/// A scratch file path for a target that must hand its input to code that opens a file
/// (`name` tells the targets apart; the process id, parallel fuzzing jobs).
pub fn scratch_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("consolegate-fuzz-{name}-{}", std::process::id()))
}

/// A browser stream for drivers that never use it (the SPICE and serial drivers): every call
/// fails.
pub fn unused_client_io() -> CgClientIo {
    unsafe extern "C" fn read(
        _: *mut libc::c_void,
        _: *mut u8,
        _: usize,
        _: *mut usize,
    ) -> CgStatus {
        CgStatus::IO
    }
    unsafe extern "C" fn write(_: *mut libc::c_void, _: *const u8, _: usize) -> CgStatus {
        CgStatus::IO
    }
    CgClientIo {
        struct_size: std::mem::size_of::<CgClientIo>() as u32,
        ctx: std::ptr::null_mut(),
        read: Some(read),
        write: Some(write),
    }
}

/// A [`Browser`] over [`unused_client_io`].
pub fn unused_client(io: &CgClientIo) -> Browser<'_> {
    Browser::new(io)
}

/// `value` (a console object) with its string `password` replaced by another of the same
/// length, to check that an error does not depend on the password (so cannot repeat it);
/// `None` without a string password.
pub fn with_other_password(value: &serde_json::Value) -> Option<serde_json::Value> {
    let password = value.get("password")?.as_str()?;
    let other: String = password
        .chars()
        .map(|c| if c == 'x' { 'y' } else { 'x' })
        .collect();
    let mut changed = value.clone();
    changed["password"] = serde_json::Value::String(other);
    Some(changed)
}

/// Asserts what a driver's failure may show, in the log (`log_text`) and to the browser
/// (`browser_reason`): no control character, and a bounded length, a server's reason in them
/// being escaped (at most 10 characters per byte) and cut to `MAX_REASON_LEN`.
pub fn check_error_texts(log_text: String, browser_reason: String) {
    for text in [log_text, browser_reason] {
        assert!(
            !text.chars().any(char::is_control),
            "control character in {text:?}"
        );
        assert!(
            text.len() <= 10 * consolegate_rfb::MAX_REASON_LEN + 1024,
            "{} bytes",
            text.len()
        );
    }
}
