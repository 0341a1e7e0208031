//! Test peers on a local TcpListener: a real rustls server (echo) in a thread, with the
//! harness's certificates and server configuration, or a plain, closing or stalling peer.
//! Used by this crate's unit tests only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use consolegate_tests::pki::server_config;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::test_pki::{TestPki, Validity};
use crate::{BlockingTls, ClientIdentity, Deadline, TlsChannel, TlsClient, TlsError, TlsOptions};

/// What the peer does with each connection.
pub(crate) enum Peer {
    /// TLS server echoing what it reads; closes after echoing `bye`.
    Tls { require_client_cert: bool },
    /// TLS server that never reads application data after the handshake.
    TlsNoRead,
    /// Sends these bytes, then waits for the client to leave.
    Plain(&'static [u8]),
    /// Reads a little, then closes.
    Close,
    /// Accepts and never answers.
    Stall,
}

pub(crate) struct TestServer {
    pub(crate) pki: TestPki,
    addr: SocketAddr,
}

impl TestServer {
    pub(crate) fn start(name: &str, peer: Peer) -> Self {
        Self::start_with_cert(name, peer, Validity::Current)
    }

    /// Starts `peer` (its accepting thread named after `name`) presenting a server
    /// certificate of `validity`.
    pub(crate) fn start_with_cert(name: &str, peer: Peer, validity: Validity) -> Self {
        let pki = TestPki::trusted();
        let require_client_cert = matches!(
            peer,
            Peer::Tls {
                require_client_cert: true
            }
        );
        let config = server_config(
            &validity.server(),
            require_client_cert
                .then(|| pki.path("ca-cert.pem"))
                .as_deref(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::Builder::new().name(format!("test-server-{name}"));
        let _ = thread.spawn(move || {
            let mut parked = Vec::new();
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { return };
                match &peer {
                    Peer::Tls { .. } | Peer::TlsNoRead => {
                        let config = config.clone();
                        let read = matches!(peer, Peer::Tls { .. });
                        std::thread::spawn(move || serve_tls(config, sock, read));
                    }
                    Peer::Plain(bytes) => {
                        let _ = sock.write_all(bytes);
                        let _ = sock.read(&mut [0u8; 1024]);
                        parked.push(sock);
                    }
                    Peer::Close => {
                        let _ = sock.read(&mut [0u8; 16]);
                    }
                    Peer::Stall => parked.push(sock),
                }
            }
        });
        Self { pki, addr }
    }

    pub(crate) fn options(&self, identity: bool) -> TlsOptions {
        TlsOptions {
            section: "tls".into(),
            ca_certificate: self.pki.path("ca-cert.pem"),
            client_identity: identity.then(|| ClientIdentity {
                certificate: self.pki.path("client-cert.pem"),
                key: self.pki.path("client-key.pem"),
            }),
            server_name: None,
        }
    }

    pub(crate) fn connect_with(
        &self,
        client: &TlsClient,
        host: &str,
    ) -> Result<TlsChannel<TcpStream>, TlsError> {
        self.connect_within(client, host, Duration::from_secs(5))
    }

    pub(crate) fn connect_within(
        &self,
        client: &TlsClient,
        host: &str,
        timeout: Duration,
    ) -> Result<TlsChannel<TcpStream>, TlsError> {
        let sock = TcpStream::connect(self.addr).unwrap();
        client.connect(host, sock, Deadline::after(timeout))
    }

    /// Writes `data` and reads as many bytes back (blocking).
    pub(crate) fn echo(&self, ch: &mut TlsChannel<TcpStream>, data: &[u8]) -> Vec<u8> {
        let mut io = BlockingTls::new(ch, Deadline::after(Duration::from_secs(5)));
        io.write_all(data).unwrap();
        io.flush().unwrap();
        let mut got = vec![0u8; data.len()];
        io.read_exact(&mut got).unwrap();
        got
    }
}

/// A TLS echo server (requiring a client certificate if `require`), and a channel to it from
/// a client presenting its certificate if `identity`.
pub(crate) fn tls_pair(
    name: &str,
    require: bool,
    identity: bool,
) -> (TestServer, TlsChannel<TcpStream>) {
    let server = TestServer::start(
        name,
        Peer::Tls {
            require_client_cert: require,
        },
    );
    let ch = server
        .connect_with(&client(&server.pki, identity, None), "127.0.0.1")
        .unwrap();
    (server, ch)
}

/// A client for `pki`'s CA, with its client identity if `identity`.
pub(crate) fn client(pki: &TestPki, identity: bool, server_name: Option<&str>) -> TlsClient {
    TlsClient::new(&TlsOptions {
        section: "tls".into(),
        ca_certificate: pki.path("ca-cert.pem"),
        client_identity: identity.then(|| ClientIdentity {
            certificate: pki.path("client-cert.pem"),
            key: pki.path("client-key.pem"),
        }),
        server_name: server_name.map(|n| n.to_owned().try_into().unwrap()),
    })
    .unwrap()
}

fn serve_tls(config: Arc<ServerConfig>, sock: TcpStream, read: bool) {
    let conn = ServerConnection::new(config).unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    if !read {
        // Finish the handshake, then hold the connection without reading.
        let _ = tls.conn.complete_io(&mut tls.sock);
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tls.write_all(&buf[..n]).is_err() {
                    return;
                }
                if &buf[..n] == b"bye" {
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    return;
                }
            }
        }
    }
}
