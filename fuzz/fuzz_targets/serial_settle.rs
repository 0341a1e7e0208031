//! The `spice_tls` driver's serial settle window (`drivers/spice_tls/src/serial.rs`): after
//! TLS, a serial console's first bytes are the guest's (or a monitor's greeting), and a close
//! with nothing before it means QEMU refused the proxy's certificate. Played against an
//! in-process TLS server on a socket pair.
//!
//! Input (see `Input::read`): the TLS version, whether the proxy presents a client certificate, what
//! the console sends after the handshake (in up to 7 writes of up to 255 bytes), and how it ends: close_notify, a
//! bare close, or bytes that are not TLS records followed by a close.
//! Properties: a console that sends data makes a session whose channel yields exactly that data
//! (the part read during the settle window first), then the end of the stream (or, after
//! non-TLS bytes, an error); a console that closes without sending is a refused certificate,
//! worded by whether one was presented (unless the settle window ran out first, as under a
//! heavily loaded machine, when the channel then ends at once); errors have no control
//! characters. Never a hang: a console that stays silent is not generated (it costs the
//! whole 300 ms window; the integration tests cover it against QEMU).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use consolegate_driver_api::{ConsoleRequest, Driver, Kind};
use consolegate_fuzz::{
    read_to_end, server_socket, socket_pair, tls_accept, tls_options, tls_send, unused_client,
    unused_client_io,
};
use consolegate_spice_tls::{SpiceTls, SERIAL_SETTLE};
use libfuzzer_sys::fuzz_target;

enum End {
    CloseNotify,
    Close,
    /// Bytes that are not TLS records (rustls fails on them), then a close.
    Garbage(Vec<u8>),
}

struct Input {
    tls13: bool,
    client_certificate: bool,
    writes: Vec<Vec<u8>>,
    end: End,
}

impl Input {
    /// Byte 0: bit 0 TLS 1.3, bit 1 a client certificate, bits 2-3 the end (0 close_notify,
    /// 1 a bare close, 2-3 garbage), bits 4-6 the number of writes. Then each write as a
    /// one-byte length and its bytes; what follows is the garbage.
    fn read(data: &[u8]) -> Option<Self> {
        let (&flags, mut rest) = data.split_first()?;
        let mut writes = Vec::new();
        for _ in 0..(flags >> 4 & 7) {
            let (&len, tail) = rest.split_first()?;
            let (w, tail) = tail.split_at(usize::from(len).min(tail.len()));
            writes.push(w.to_vec());
            rest = tail;
        }
        let end = match flags >> 2 & 3 {
            0 => End::CloseNotify,
            1 => End::Close,
            _ => End::Garbage(rest.to_vec()),
        };
        Some(Input {
            tls13: flags & 1 == 1,
            client_certificate: flags & 2 == 2,
            writes,
            end,
        })
    }
}

fn driver(client_certificate: bool) -> &'static SpiceTls {
    static DRIVERS: OnceLock<[SpiceTls; 2]> = OnceLock::new();
    &DRIVERS.get_or_init(|| {
        [false, true].map(|cert| SpiceTls::init(&tls_options(cert)).expect("driver"))
    })[usize::from(client_certificate)]
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let writes = input.writes;
    let sent: Vec<u8> = writes.concat();
    let (fd, mut hv) = socket_pair();
    let io = unused_client_io();
    let session = ConsoleRequest {
        kind: Kind::Serial,
        hypervisor: "localhost",
        port: 7000,
        username: None,
        password: None,
        session_id: 9,
        handshake_timeout: Duration::from_secs(10),
    };
    let garbage = matches!(&input.end, End::Garbage(g) if !g.is_empty());
    std::thread::scope(|scope| {
        let tls13 = input.tls13;
        let end = input.end;
        scope.spawn(move || {
            let Some(mut conn) = tls_accept(&mut hv, tls13) else {
                return;
            };
            for w in &writes {
                tls_send(&mut conn, &mut hv, w);
            }
            match end {
                End::CloseNotify => {
                    conn.send_close_notify();
                    tls_send(&mut conn, &mut hv, &[]);
                }
                End::Close => {}
                End::Garbage(bytes) => {
                    use std::io::Write;
                    let _ = hv.write_all(&bytes);
                }
            }
            let _ = hv.shutdown(std::net::Shutdown::Both);
        });
        let started = Instant::now();
        let result = driver(input.client_certificate).connect(
            &session,
            &mut unused_client(&io),
            server_socket(&fd),
        );
        let window_ran_out = started.elapsed() >= SERIAL_SETTLE;
        match result {
            Err(e) => {
                assert!(!e.message.chars().any(char::is_control), "{:?}", e.message);
                if sent.is_empty() && !garbage {
                    let wording = if input.client_certificate {
                        "rejected the proxy's client certificate"
                    } else {
                        "requires a client certificate"
                    };
                    assert!(e.message.contains(wording), "{}", e.message);
                } else {
                    // Data first is a session; only non-TLS bytes can fail it. (They may
                    // arrive in the same read as the data, and the settle read then fails
                    // rather than handing over the data before the error.)
                    assert!(garbage, "{}", e.message);
                }
            }
            Ok(mut channel) => {
                assert!(
                    !sent.is_empty() || garbage || window_ran_out,
                    "a console that closed at once was taken for a session"
                );
                let (got, error) = read_to_end(|buf| channel.read(buf), &fd);
                if let Some(e) = error {
                    assert!(garbage, "read: {e}");
                }
                if garbage {
                    assert!(sent.starts_with(&got));
                } else {
                    assert_eq!(got, sent);
                }
            }
        }
    });
});
