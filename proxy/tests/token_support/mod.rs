//! Support for the token-source integration tests: real servers on loopback (a `redis-server`
//! process, an HTTP(S) resolver on a thread), stopped on drop. A missing `redis-server` fails the
//! test with what to install; nothing is skipped.

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use consolegate::token::{self, Console, TokenError, TokenSource};
use consolegate_tls_client::test_pki::TestPki;

/// Opens `spec` the way the daemon does, with `conf` as the INI file.
pub fn open(spec: &str, conf: &str) -> Box<dyn TokenSource> {
    token::open(spec, &ini(conf)).unwrap_or_else(|e| panic!("open {spec}: {e}"))
}

/// What a session does with a token once its console is connected: looks it up and, if it is
/// single-use, consumes it.
pub fn admit(src: &dyn TokenSource, token: &str) -> Result<Console, TokenError> {
    let console = src.lookup(token)?;
    if console.single_use {
        src.consume(token, &console)?;
    }
    Ok(console)
}

/// Parses INI text.
pub fn ini(conf: &str) -> ini::Ini {
    ini::Ini::load_from_str(conf).expect("test INI")
}

/// Runs `f` and measures it.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// A loopback port nothing listens on (just now).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// A fresh scratch directory for this process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cg-token-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// A test PKI (CA, server and client certificates, and an unrelated `rogue/` set).
pub fn pki(name: &str) -> TestPki {
    TestPki::generate(&format!("token-{name}"))
}

/// A `redis-server` on loopback without persistence, killed on drop. It can be stopped and
/// started again on the same ports ([`Redis::kill`], [`Redis::restart`]) or frozen
/// ([`Redis::freeze`], [`Redis::thaw`]), for outage tests.
pub struct Redis {
    child: Child,
    /// The plain port.
    pub port: u16,
    /// The TLS port, when started with TLS.
    pub tls_port: Option<u16>,
    dir: PathBuf,
    /// The command line, to start it again.
    args: Vec<OsString>,
}

impl Redis {
    /// Starts a plain `redis-server`.
    pub fn start() -> Self {
        Self::spawn(None, free_port())
    }

    /// Starts a plain `redis-server` on `port` (a port leased by the caller, so that nothing
    /// else takes it while the server is down).
    pub fn start_on(port: u16) -> Self {
        Self::spawn(None, port)
    }

    /// Starts a `redis-server` with a plain port (for setting keys up) and a TLS port whose
    /// clients must present a certificate from `pki`'s CA.
    pub fn start_tls(pki: &TestPki) -> Self {
        Self::spawn(Some(pki), free_port())
    }

    fn spawn(pki: Option<&TestPki>, port: u16) -> Self {
        let dir = scratch(&format!("redis-{port}"));
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let tls_port = pki.map(|pki| {
            let tls_port = free_port();
            cmd.args([
                "--tls-port",
                &tls_port.to_string(),
                "--tls-auth-clients",
                "yes",
            ])
            .arg("--tls-cert-file")
            .arg(pki.path("server-cert.pem"))
            .arg("--tls-key-file")
            .arg(pki.path("server-key.pem"))
            .arg("--tls-ca-cert-file")
            .arg(pki.path("ca-cert.pem"));
            tls_port
        });
        let args = cmd.get_args().map(OsString::from).collect();
        let redis = Self {
            child: run_redis(&mut cmd),
            port,
            tls_port,
            dir,
            args,
        };
        redis.wait_until_up();
        redis
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not come up: see {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL): its port refuses connections and its keys are gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again, empty, on the same ports, after [`Redis::kill`].
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        self.child = run_redis(&mut cmd);
        self.wait_until_up();
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but never answered.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child, which has not been reaped (Drop or kill reap it).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut reply = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn log(&self) -> String {
        self.dir.join("redis.log").display().to_string()
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `rediss://localhost:TLS_PORT/0`.
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://localhost:{}/0",
            self.tls_port.expect("started with TLS")
        )
    }

    /// A connection on the plain port, for setting keys up.
    pub fn cli(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis-server")
    }

    /// `SET key value`.
    pub fn set(&self, key: &str, value: &str) {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .exec(&mut self.cli())
            .expect("SET");
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query::<i64>(&mut self.cli())
            .expect("EXISTS")
            == 1
    }
}

/// Runs `redis-server`; a missing binary fails the test with what to install.
fn run_redis(cmd: &mut Command) -> Child {
    cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run redis-server ({e}): install it (apt-get install redis-server)")
    })
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.thaw_quietly();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Redis {
    /// SIGCONT without checking, so that a frozen server can be killed on drop.
    fn thaw_quietly(&self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child; an error (already reaped) is harmless here.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

/// What the resolver answers for one token.
#[derive(Clone)]
pub enum Answer {
    /// This status and body.
    Reply(u16, String),
    /// Nothing for this long, then close.
    Hang(Duration),
}

/// A libvirt-console-proxy-style resolver: `GET /api/token/<escaped token>`, answered from a
/// table by the decoded token (404 when absent). Over TLS it requires a client certificate from
/// the PKI's CA. Records every request path as received. It can stop listening and start again
/// on the same port with the same answers ([`Resolver::stop`], [`Resolver::restart`]).
pub struct Resolver {
    port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Resolver {
    /// Starts a plain HTTP resolver.
    pub fn start() -> Self {
        Self::spawn(None, 0)
    }

    /// Starts an HTTPS resolver with `pki`'s server certificate, requiring a client certificate.
    pub fn start_tls(pki: &TestPki) -> Self {
        Self::spawn(Some(server_config(pki)), 0)
    }

    /// [`Resolver::start_tls`] on `port` (a port leased by the caller, so that nothing else
    /// takes it while the resolver is stopped).
    pub fn start_tls_on(pki: &TestPki, port: u16) -> Self {
        Self::spawn(Some(server_config(pki)), port)
    }

    fn spawn(tls: Option<Arc<rustls::ServerConfig>>, port: u16) -> Self {
        let mut resolver = Self {
            port,
            tls,
            answers: Arc::default(),
            paths: Arc::default(),
            stop: Arc::default(),
            acceptor: None,
        };
        resolver.listen();
        resolver
    }

    /// Binds the port (a new one when it is 0) and accepts on a thread until stopped.
    fn listen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the resolver");
        self.port = listener.local_addr().expect("resolver address").port();
        self.stop.store(false, Ordering::SeqCst);
        let (answers, paths, stop, tls) = (
            self.answers.clone(),
            self.paths.clone(),
            self.stop.clone(),
            self.tls.clone(),
        );
        self.acceptor = Some(std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (answers, paths, tls) = (answers.clone(), paths.clone(), tls.clone());
                std::thread::spawn(move || serve(stream, tls, &answers, &paths));
            }
        }));
    }

    /// Stops listening: the port refuses connections until [`Resolver::restart`].
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().expect("the resolver's accept thread");
        }
    }

    /// Listens again on the same port, with the same answers.
    pub fn restart(&mut self) {
        self.stop();
        self.listen();
    }

    /// The base URL (`http(s)://localhost:PORT/api`).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://localhost:{}/api", self.port)
    }

    /// Answers `token` with `status` and `body`.
    pub fn answer(&self, token: &str, status: u16, body: &str) {
        self.set(token, Answer::Reply(status, body.into()));
    }

    /// Sets what `token` gets.
    pub fn set(&self, token: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(token.into(), answer);
    }

    /// Every request path received so far.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn server_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.path("ca-cert.pem")).expect("CA file") {
        roots.add(ca.expect("CA certificate")).expect("add CA");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let chain = CertificateDer::pem_file_iter(pki.path("server-cert.pem"))
        .expect("server certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_file(pki.path("server-key.pem")).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
        })
        .expect("server config");
    Arc::new(config)
}

/// Serves one connection: one request, one answer, close.
fn serve(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    answers: &Mutex<HashMap<String, Answer>>,
    paths: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    match tls {
        None => respond(stream, answers, paths),
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            respond(rustls::StreamOwned::new(conn, stream), answers, paths)
        }
    }
}

fn respond(
    mut stream: impl Read + Write,
    answers: &Mutex<HashMap<String, Answer>>,
    paths: &Mutex<Vec<String>>,
) {
    let mut head = BufReader::new(&mut stream);
    let mut request_line = String::new();
    if head.read_line(&mut request_line).is_err() {
        return; // a TLS handshake refused, or a client gone
    }
    loop {
        let mut line = String::new();
        match head.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    drop(head);
    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
    paths.lock().unwrap().push(path.clone());
    let token = path
        .strip_prefix("/api/token/")
        .filter(|t| !t.contains('/'))
        .map(|t| {
            percent_encoding::percent_decode_str(t)
                .decode_utf8_lossy()
                .into_owned()
        });
    let answer = token.and_then(|t| answers.lock().unwrap().get(&t).cloned());
    let (status, body) = match answer {
        Some(Answer::Reply(status, body)) => (status, body),
        Some(Answer::Hang(time)) => {
            std::thread::sleep(time);
            return;
        }
        None => (404, "no such token".to_string()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}
