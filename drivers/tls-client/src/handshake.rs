//! The blocking TLS handshake on the borrowed hypervisor socket, bounded by the session's
//! deadline, with errors that name the reason (run by [`TlsClient::connect`](crate::TlsClient::connect)),
//! and the classification of rustls's failures into [`TlsError`]s.

use std::io::{self, Read};

use rustls::pki_types::{ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConnection};

use crate::deadline::{is_timeout, Deadline};
use crate::error::TlsError;
use crate::socket::ConsoleTransport;

/// How many of the peer's first bytes are kept to tell "not TLS" apart.
const FIRST_BYTES: usize = 16;

/// The first bytes received, and a reader that records them.
#[derive(Default)]
struct FirstBytes(Vec<u8>);

impl FirstBytes {
    /// Whether what arrived cannot be TLS: a server's first record is a handshake (22) or an
    /// alert (21).
    fn not_tls(&self) -> bool {
        self.0.first().is_some_and(|b| *b != 22 && *b != 21)
    }

    fn escaped(&self) -> String {
        format!("\"{}\"", self.0.escape_ascii())
    }
}

struct Recording<'a, S> {
    socket: &'a mut S,
    first: &'a mut FirstBytes,
}

impl<S: Read> Read for Recording<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        let room = FIRST_BYTES.saturating_sub(self.first.0.len());
        self.first.0.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

pub(crate) fn run<S: ConsoleTransport>(
    conn: &mut ClientConnection,
    socket: &mut S,
    deadline: Deadline,
    name: &ServerName<'static>,
) -> Result<(), TlsError> {
    let mut first = FirstBytes::default();
    loop {
        while conn.wants_write() {
            deadline.arm(socket.tcp()).map_err(TlsError::Io)?;
            conn.write_tls(socket).map_err(|e| io_failure(e, &first))?;
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        deadline.arm(socket.tcp()).map_err(TlsError::Io)?;
        match conn.read_tls(&mut Recording {
            socket,
            first: &mut first,
        }) {
            Ok(0) if first.not_tls() => {
                return Err(TlsError::NotTls {
                    first_bytes: first.escaped(),
                })
            }
            Ok(0) => return Err(TlsError::ClosedDuringHandshake),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_failure(e, &first)),
        }
        if let Err(e) = conn.process_new_packets() {
            // Best effort: tell the peer why (rustls queued an alert).
            let _ = conn.write_tls(socket);
            if first.not_tls() {
                return Err(TlsError::NotTls {
                    first_bytes: first.escaped(),
                });
            }
            return Err(classify(e, Some(name)));
        }
    }
}

fn io_failure(e: io::Error, first: &FirstBytes) -> TlsError {
    match e.kind() {
        _ if is_timeout(&e) => TlsError::Timeout,
        _ if first.not_tls() => TlsError::NotTls {
            first_bytes: first.escaped(),
        },
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            TlsError::ClosedDuringHandshake
        }
        _ => TlsError::Io(e),
    }
}

/// Names a rustls failure precisely. `name` is the name the certificate was checked against.
pub(crate) fn classify(e: rustls::Error, name: Option<&ServerName<'static>>) -> TlsError {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(cert) => classify_certificate(cert, name),
        E::AlertReceived(alert) if rejects_our_certificate(alert) => {
            TlsError::ClientCertificateRejected { alert }
        }
        E::AlertReceived(AlertDescription::ProtocolVersion) => TlsError::LegacyVersion,
        E::AlertReceived(alert) => TlsError::Alert { alert },
        e @ E::PeerIncompatible(_) => TlsError::Incompatible(e),
        e => TlsError::Protocol(e),
    }
}

/// Alerts a server sends about the client's certificate (or its absence).
fn rejects_our_certificate(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
    )
}

fn classify_certificate(e: CertificateError, name: Option<&ServerName<'static>>) -> TlsError {
    let expected = || name.map_or_else(|| "(unknown)".to_owned(), |n| n.to_str().into_owned());
    match e {
        CertificateError::UnknownIssuer => TlsError::UnknownCa,
        CertificateError::NotValidForName => TlsError::NameMismatch {
            expected: expected(),
            presented: "other names".into(),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => TlsError::NameMismatch {
            expected: expected.to_str().into_owned(),
            presented: if presented.is_empty() {
                "no usable names".into()
            } else {
                presented.join(", ")
            },
        },
        CertificateError::Expired => TlsError::Expired {
            when: String::new(),
        },
        CertificateError::ExpiredContext { time, not_after } => TlsError::Expired {
            when: format!(" (on {}; now {})", utc_date(not_after), utc_date(time)),
        },
        CertificateError::NotValidYet => TlsError::NotValidYet {
            when: String::new(),
        },
        CertificateError::NotValidYetContext { time, not_before } => TlsError::NotValidYet {
            when: format!(
                " (valid from {}; now {})",
                utc_date(not_before),
                utc_date(time)
            ),
        },
        other => TlsError::BadCertificate(other),
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time (Howard Hinnant's `civil_from_days`).
fn utc_date(t: UnixTime) -> String {
    let days = (t.as_secs() / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pki::Validity;
    use crate::test_server::{client, Peer, TestServer};
    use crate::{BlockingTls, TlsClient};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    #[test]
    fn utc_dates() {
        assert_eq!(
            utc_date(UnixTime::since_unix_epoch(Duration::ZERO)),
            "1970-01-01"
        );
        assert_eq!(
            utc_date(UnixTime::since_unix_epoch(Duration::from_secs(978_307_200))),
            "2001-01-01"
        );
        assert_eq!(
            utc_date(UnixTime::since_unix_epoch(Duration::from_secs(951_782_400))),
            "2000-02-29"
        );
    }

    #[test]
    fn deadline_in_the_past_refuses_to_arm() {
        let d = Deadline::after(Duration::ZERO);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert_eq!(d.arm(&s).unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(Deadline::after(Duration::from_secs(5)).arm(&s).is_ok());
    }

    #[test]
    fn mutual_tls_succeeds_by_ip_and_by_name() {
        let server = TestServer::start(
            "hs-ok",
            Peer::Tls {
                require_client_cert: true,
            },
        );
        for host in ["127.0.0.1", "localhost"] {
            let mut ch = server
                .connect_with(&client(&server.pki, true, None), host)
                .unwrap();
            assert_eq!(server.echo(&mut ch, b"hello"), b"hello");
        }
    }

    #[test]
    fn unknown_ca() {
        let server = TestServer::start(
            "hs-ca",
            Peer::Tls {
                require_client_cert: false,
            },
        );
        let rogue = crate::TlsOptions {
            ca_certificate: server.pki.path("rogue/ca-cert.pem"),
            ..server.options(false)
        };
        let e = server
            .connect_with(&TlsClient::new(&rogue).unwrap(), "127.0.0.1")
            .unwrap_err();
        assert!(matches!(e, TlsError::UnknownCa), "{e}");
        assert!(
            e.to_string().contains("not signed by the configured CA"),
            "{e}"
        );
    }

    #[test]
    fn name_mismatch_lists_the_names() {
        let server = TestServer::start(
            "hs-name",
            Peer::Tls {
                require_client_cert: false,
            },
        );
        let e = server
            .connect_with(&client(&server.pki, false, None), "10.1.2.3")
            .unwrap_err();
        let TlsError::NameMismatch {
            expected,
            presented,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(expected, "10.1.2.3");
        assert!(presented.contains("localhost"), "{presented}");
        let e = server
            .connect_with(
                &client(&server.pki, false, Some("other.example")),
                "127.0.0.1",
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("not valid for \"other.example\""),
            "{e}"
        );
    }

    #[test]
    fn expired_and_not_yet_valid() {
        for (validity, want) in [
            (Validity::Expired, "has expired (on 2001-01-01"),
            (
                Validity::NotYetValid,
                "not valid yet (valid from 2090-01-01",
            ),
        ] {
            let server = TestServer::start_with_cert(
                &format!("hs-{validity:?}"),
                Peer::Tls {
                    require_client_cert: false,
                },
                validity,
            );
            let e = server
                .connect_with(&client(&server.pki, false, None), "127.0.0.1")
                .unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
            assert_eq!(e.status(), consolegate_driver_api::abi::CgStatus::TLS);
        }
    }

    #[test]
    fn server_rejecting_our_certificate_is_named() {
        // TLS 1.3: the client finishes first, so the alert comes with the first read.
        let server = TestServer::start(
            "hs-nocert",
            Peer::Tls {
                require_client_cert: true,
            },
        );
        let e = match server.connect_with(&client(&server.pki, false, None), "127.0.0.1") {
            Err(e) => e,
            Ok(mut ch) => {
                let mut buf = [0u8; 4];
                let err = BlockingTls::new(&mut ch, Deadline::after(Duration::from_secs(5)))
                    .read(&mut buf)
                    .unwrap_err();
                TlsError::from_io(err)
            }
        };
        assert!(
            matches!(e, TlsError::ClientCertificateRejected { .. }),
            "{e}"
        );
        assert_eq!(e.status(), consolegate_driver_api::abi::CgStatus::AUTH);
    }

    #[test]
    fn plain_peer_is_not_tls() {
        let server = TestServer::start("hs-plain", Peer::Plain(b"RFB 003.008\n"));
        let e = server
            .connect_with(&client(&server.pki, false, None), "127.0.0.1")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the hypervisor did not answer with TLS (it sent \"RFB 003.008\\n\"); is TLS enabled \
             on this port?"
        );
    }

    #[test]
    fn peer_closing_is_named() {
        let server = TestServer::start("hs-close", Peer::Close);
        let e = server
            .connect_with(&client(&server.pki, false, None), "127.0.0.1")
            .unwrap_err();
        assert!(matches!(e, TlsError::ClosedDuringHandshake), "{e}");
        assert!(e
            .to_string()
            .contains("may have rejected the proxy's client certificate"));
    }

    #[test]
    fn stalling_peer_times_out() {
        let server = TestServer::start("hs-stall", Peer::Stall);
        let started = Instant::now();
        let e = server
            .connect_within(
                &client(&server.pki, false, None),
                "127.0.0.1",
                Duration::from_millis(300),
            )
            .unwrap_err();
        assert!(matches!(e, TlsError::Timeout), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
