//! [`SpiceTlsError`], and its one mapping to a [`DriverError`] status.

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::{DriverError, Kind};
use consolegate_tls_client::{TlsConfigError, TlsError};
use rustls::HandshakeType;

/// Why the driver could not start or a session could not be established. Messages put what
/// failed first: the proxy cuts websocket close reasons at 120 bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpiceTlsError {
    /// `[console_proxy_tls]` is incomplete or names unusable files (at start-up).
    #[error(transparent)]
    Config(#[from] TlsConfigError),

    /// The proxy asked for a console kind the descriptor does not declare (a proxy bug).
    #[error("spice_tls serves spice and serial consoles, not {0}")]
    WrongKind(Kind),

    /// The port answered with a cleartext SPICE link reply: it is SPICE's plain `port`, not its
    /// `tls-port`. Point the token at the `tls-port`.
    #[error(
        "not TLS: this is a plain SPICE port (it answered with a cleartext SPICE link reply); \
         point the token at SPICE's tls-port"
    )]
    SpicePlainPort,

    /// The SPICE server closed the connection during the TLS handshake. SPICE never checks
    /// client certificates, so the port is probably not a SPICE TLS port.
    #[error(
        "the SPICE server closed the connection during the TLS handshake; is this SPICE's \
         tls-port with x509-dir set?"
    )]
    SpiceClosed,

    /// The serial port echoed the proxy's TLS ClientHello back: the chardev is plain TCP and
    /// the guest echoes its input. Add `tls-creds` to the chardev (libvirt `chardev_tls = 1`).
    #[error(
        "not TLS: the serial console echoed the TLS ClientHello back (a plain chardev); add \
         tls-creds to it (libvirt chardev_tls = 1)"
    )]
    SerialPlainEcho,

    /// QEMU closed the serial console right after TLS and the proxy presented no certificate:
    /// the chardev verifies clients (`verify-peer=on`). Set `client_certificate` and
    /// `client_key`.
    #[error(
        "serial console refused after TLS: QEMU requires a client certificate; set \
         client_certificate in [console_proxy_tls]"
    )]
    SerialCertificateRequired,

    /// QEMU closed the serial console right after TLS although the proxy presented its
    /// certificate: it does not trust the certificate's CA, or `tls-authz` does not admit its DN.
    #[error(
        "serial console refused after TLS: QEMU rejected the proxy's client certificate (check \
         its CA and tls-authz)"
    )]
    SerialCertificateRefused,

    /// The TLS handshake failed (unknown CA, name mismatch, not TLS, timeout, …).
    #[error(transparent)]
    Tls(TlsError),
}

impl SpiceTlsError {
    /// A handshake failure with a `kind` console, named as precisely as the kind allows.
    pub fn handshake(kind: Kind, e: TlsError) -> Self {
        match (kind, e) {
            (Kind::Spice, TlsError::NotTls { first_bytes })
                if first_bytes.starts_with("\"REDQ") =>
            {
                SpiceTlsError::SpicePlainPort
            }
            (Kind::Spice, TlsError::ClosedDuringHandshake) => SpiceTlsError::SpiceClosed,
            (
                Kind::Serial,
                TlsError::Protocol(rustls::Error::InappropriateHandshakeMessage {
                    got_type: HandshakeType::ClientHello,
                    ..
                }),
            ) => SpiceTlsError::SerialPlainEcho,
            (_, e) => SpiceTlsError::Tls(e),
        }
    }

    /// The ABI status: whose fault it is.
    pub fn status(&self) -> CgStatus {
        match self {
            SpiceTlsError::Config(_) => CgStatus::CONFIG,
            SpiceTlsError::WrongKind(_) => CgStatus::INTERNAL,
            SpiceTlsError::SpicePlainPort
            | SpiceTlsError::SpiceClosed
            | SpiceTlsError::SerialPlainEcho => CgStatus::TLS,
            SpiceTlsError::SerialCertificateRequired | SpiceTlsError::SerialCertificateRefused => {
                CgStatus::AUTH
            }
            SpiceTlsError::Tls(e) => e.status(),
        }
    }
}

impl From<SpiceTlsError> for DriverError {
    fn from(e: SpiceTlsError) -> Self {
        DriverError::new(e.status(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SpiceTlsError as E;

    #[test]
    fn a_cleartext_spice_link_reply_is_a_plain_spice_port() {
        let e = E::handshake(
            Kind::Spice,
            TlsError::NotTls {
                first_bytes: "\"REDQ\\x02\"".into(),
            },
        );
        assert!(matches!(e, E::SpicePlainPort), "{e}");
        assert_eq!(e.status(), CgStatus::TLS);
        let other = E::handshake(
            Kind::Spice,
            TlsError::NotTls {
                first_bytes: "\"RFB \"".into(),
            },
        );
        assert!(matches!(other, E::Tls(TlsError::NotTls { .. })), "{other}");
    }

    #[test]
    fn a_spice_close_does_not_blame_the_client_certificate() {
        let e = E::handshake(Kind::Spice, TlsError::ClosedDuringHandshake);
        assert!(!e.to_string().contains("client certificate"), "{e}");
        let serial = E::handshake(Kind::Serial, TlsError::ClosedDuringHandshake);
        assert!(
            serial.to_string().contains("client certificate"),
            "{serial}"
        );
    }

    #[test]
    fn an_echoed_client_hello_is_a_plain_serial_port() {
        let echo = || {
            TlsError::Protocol(rustls::Error::InappropriateHandshakeMessage {
                expect_types: vec![HandshakeType::ServerHello],
                got_type: HandshakeType::ClientHello,
            })
        };
        assert!(matches!(
            E::handshake(Kind::Serial, echo()),
            E::SerialPlainEcho
        ));
        assert!(matches!(E::handshake(Kind::Spice, echo()), E::Tls(_)));
    }

    #[test]
    fn refusals_fit_a_close_reason_and_map_to_auth() {
        for e in [
            E::SerialCertificateRequired,
            E::SerialCertificateRefused,
            E::SpicePlainPort,
        ] {
            let text = e.to_string();
            assert!(text.len() <= 120, "{} bytes: {text}", text.len());
        }
        assert_eq!(E::SerialCertificateRefused.status(), CgStatus::AUTH);
        assert_eq!(
            DriverError::from(E::SerialCertificateRequired).status,
            CgStatus::AUTH
        );
        assert_eq!(E::Tls(TlsError::Timeout).status(), CgStatus::TIMEOUT);
    }
}
