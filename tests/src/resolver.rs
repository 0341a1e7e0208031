//! A libvirt-console-proxy-style token resolver on loopback, for `token_source = rest:URL`:
//! plain HTTP or HTTPS with the trusted test PKI's server certificate, requiring a client
//! certificate from its CA. It serves on a leased port on a thread, answers from a table, and
//! can stop and listen again on the same port ([`Resolver::stop`], [`Resolver::restart`]), for
//! outage tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::pki::{pki, server_config};
use crate::ports::{self, PortLease};

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
    port: PortLease,
    tls: Option<Arc<rustls::ServerConfig>>,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Resolver {
    /// Starts a plain HTTP resolver.
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// Starts an HTTPS resolver with the trusted server certificate, requiring a client
    /// certificate from the trusted CA.
    pub fn start_tls() -> Self {
        let trusted = &pki().trusted;
        Self::spawn(Some(server_config(
            &pki().trusted_server(),
            Some(&trusted.ca_cert()),
        )))
    }

    fn spawn(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let mut resolver = Self {
            port: ports::port(),
            tls,
            answers: Arc::default(),
            paths: Arc::default(),
            stop: Arc::default(),
            acceptor: None,
        };
        resolver.listen();
        resolver
    }

    /// Binds the leased port and accepts on a thread until stopped.
    fn listen(&mut self) {
        let listener =
            TcpListener::bind(("127.0.0.1", self.port.port())).expect("bind the resolver");
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
        let _ = TcpStream::connect(("127.0.0.1", self.port.port()));
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
        format!("{scheme}://localhost:{}/api", self.port.port())
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
