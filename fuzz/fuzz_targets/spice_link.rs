//! The `spice_tls` driver against a SPICE server played in-process: what it parses of the
//! server's bytes before the relay (the TLS handshake, and the cleartext SPICE link reply a
//! plain SPICE port sends instead, `REDQ…`, which it names as such), then the link messages
//! relayed both ways. The driver parses no SPICE message itself: after TLS it relays bytes
//! unchanged (see `drivers/spice_tls/src/channel.rs`), and that is the property checked.
//!
//! Input (see `Input::read`): either the raw bytes a server that is not TLS sends (a plain SPICE
//! port's link reply, garbage), or a TLS session (1.2 or 1.3) carrying the client's link
//! message (`SpiceLinkHeader` + `SpiceLinkMess`) one way and the server's link reply the other,
//! ended by close_notify or a bare close.
//! Properties: raw bytes never make a session; a reply starting with `REDQ` is reported as a
//! plain SPICE port; an error has no control characters; through TLS, both directions arrive
//! byte for byte, and the end of the stream is seen after them.
#![no_main]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::Duration;

use consolegate_driver_api::{Channel, ConsoleRequest, Driver, Kind};
use consolegate_fuzz::{
    read_to_end, server_socket, socket_pair, tls_accept, tls_options, tls_pull, tls_send,
    unused_client, unused_client_io, wait,
};
use consolegate_spice_tls::SpiceTls;
use libfuzzer_sys::fuzz_target;

/// The most bytes sent each way (the socket buffers hold both directions at once).
const MAX_MESSAGE: usize = 32 * 1024;

enum Input {
    /// A server that is not TLS: these bytes, then it closes.
    Raw(Vec<u8>),
    /// A TLS server.
    Tls {
        tls13: bool,
        /// The browser's link message, towards the server.
        link: Vec<u8>,
        /// The server's link reply, towards the browser.
        reply: Vec<u8>,
        /// End with close_notify (else a bare close).
        close_notify: bool,
    },
}

impl Input {
    /// Byte 0: bit 0 clear for `Raw` (the rest is the server's bytes); else bit 1 is TLS 1.3 and
    /// bit 2 close_notify, bytes 1-2 the link message's length (big-endian), then the link
    /// message, then the reply.
    fn read(data: &[u8]) -> Option<Self> {
        let (&flags, rest) = data.split_first()?;
        if flags & 1 == 0 {
            return Some(Input::Raw(rest.to_vec()));
        }
        let [a, b, rest @ ..] = rest else {
            return None;
        };
        let (link, reply) =
            rest.split_at(usize::from(u16::from_be_bytes([*a, *b])).min(rest.len()));
        Some(Input::Tls {
            tls13: flags & 2 == 2,
            link: link.to_vec(),
            reply: reply.to_vec(),
            close_notify: flags & 4 == 4,
        })
    }
}

fn driver() -> &'static SpiceTls {
    static DRIVER: OnceLock<SpiceTls> = OnceLock::new();
    DRIVER.get_or_init(|| SpiceTls::init(&tls_options(false)).expect("driver"))
}

fn session() -> ConsoleRequest<'static> {
    ConsoleRequest {
        kind: Kind::Spice,
        hypervisor: "localhost",
        port: 5931,
        username: None,
        password: Some("ticket"),
        session_id: 7,
        handshake_timeout: Duration::from_secs(10),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let (fd, mut hv) = socket_pair();
    let io = unused_client_io();
    match input {
        Input::Raw(bytes) => {
            hv.write_all(&bytes).expect("send");
            hv.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let result = driver().connect(&session(), &mut unused_client(&io), server_socket(&fd));
            let e = result
                .err()
                .expect("a server that is not TLS made a session");
            assert!(!e.message.chars().any(char::is_control), "{:?}", e.message);
            if bytes.starts_with(b"REDQ") {
                assert!(e.message.contains("plain SPICE port"), "{}", e.message);
            }
        }
        Input::Tls {
            tls13,
            mut link,
            mut reply,
            close_notify,
        } => std::thread::scope(|scope| {
            // Each side writes before it reads: stay within the socket buffers.
            link.truncate(MAX_MESSAGE);
            reply.truncate(MAX_MESSAGE);
            let expected = link.clone();
            let server = scope.spawn(move || {
                let mut conn = tls_accept(&mut hv, tls13).expect("handshake");
                tls_send(&mut conn, &mut hv, &reply);
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    // Records may have come with the handshake's last flight: drain first.
                    while let Ok(n) = conn.reader().read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    if got.len() >= expected.len()
                        || tls_pull(&mut conn, &mut hv).expect("link") == 0
                    {
                        break;
                    }
                }
                assert_eq!(got, expected, "the link message changed on the way");
                if close_notify {
                    conn.send_close_notify();
                    tls_send(&mut conn, &mut hv, &[]);
                }
                drop(hv);
                reply
            });
            let mut channel = driver()
                .connect(&session(), &mut unused_client(&io), server_socket(&fd))
                .unwrap_or_else(|e| panic!("{}", e.message));
            set_nonblocking(&fd);
            let mut sent = 0;
            while sent < link.len() {
                match channel.write(&link[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait(&fd, libc::POLLOUT)
                    }
                    Err(e) => panic!("write: {e}"),
                }
                flush(&mut *channel, &fd);
            }
            flush(&mut *channel, &fd);
            let (got, error) = read_to_end(|buf| channel.read(buf), &fd);
            if let Some(e) = error {
                panic!("read: {e}");
            }
            let reply = server.join().expect("server");
            assert_eq!(got, reply, "the link reply changed on the way");
            drop(channel);
        }),
    }
});

fn flush(channel: &mut dyn Channel, fd: &impl AsRawFd) {
    while channel.wants_write() {
        match channel.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait(fd, libc::POLLOUT),
            Err(e) => panic!("flush: {e}"),
        }
    }
}

fn set_nonblocking(fd: &impl AsRawFd) {
    // SAFETY: fcntl on a descriptor the caller keeps open.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        assert!(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) == 0);
    }
}
