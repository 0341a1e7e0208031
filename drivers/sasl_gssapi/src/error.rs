//! [`SaslError`], and its one mapping to the wire: its [`CgStatus`] (for the host, whose log
//! gets the whole message) and the RFB failure reason the browser is shown.

use std::io;
use std::path::PathBuf;

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::deadline::is_timeout;
use consolegate_driver_api::{browser_reason, DriverError};
use consolegate_rfb::server::ServerStepError;
use consolegate_rfb::{list, SecurityType, Subtype, WireError};
use consolegate_tls_client::{TlsConfigError, TlsError};

use crate::cyrus::CyrusError;
use crate::options::{KEYS, SECTION};

/// Why the driver refused its configuration or a session. Messages never contain a password
/// or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// `[console_proxy_sasl]` has a key the driver does not know (a typo?).
    #[error("[{SECTION}] unknown key '{key}' (known: {})", KEYS.join(", "))]
    UnknownKey {
        /// The key.
        key: String,
    },

    /// A key of the placeholder driver that is no longer read.
    #[error("[{SECTION}] {key} is no longer read: {instead}")]
    RetiredKey {
        /// The key.
        key: String,
        /// What to do instead.
        instead: &'static str,
    },

    /// A value is malformed.
    #[error("[{SECTION}] {key} = {value:?} is not valid: expected {expected}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },

    /// `mechanisms` names a mechanism the driver refuses.
    #[error(
        "[{SECTION}] mechanisms: {mechanism} is refused: it {why}; use GSSAPI or SCRAM-SHA-256"
    )]
    WeakMechanism {
        /// The mechanism.
        mechanism: &'static str,
        /// Why.
        why: &'static str,
    },

    /// `keytab` names a file that is not a usable keytab.
    #[error("[{SECTION}] keytab = {}: {problem}", path.display())]
    Keytab {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// `[console_proxy_tls]` is set but invalid.
    #[error(transparent)]
    TlsConfig(#[from] TlsConfigError),

    /// cyrus-sasl could not be initialised (its plug-ins are missing?).
    #[error(
        "cyrus-sasl cannot be used: {0} (install libsasl2-2, libsasl2-modules and \
         libsasl2-modules-gssapi-mit)"
    )]
    Library(CyrusError),

    /// The server offers no form of SASL the driver can use.
    #[error(
        "the VNC server offers no SASL the proxy can use ({offered}); configure QEMU with \
         -vnc …,sasl=on (libvirt vnc_sasl = 1), or use the vencrypt driver for this console"
    )]
    NoSasl {
        /// What the server offered, for example `security types [None(1)]`.
        offered: String,
    },

    /// The server offers SASL only inside VeNCrypt, and `[console_proxy_tls]` is not set.
    #[error(
        "the VNC server offers SASL only inside VeNCrypt X509SASL, but [console_proxy_tls] \
         ca_certificate is not set: configure the CA (and the proxy's client certificate)"
    )]
    TlsNotConfigured,

    /// The server offers SASL only after anonymous TLS (TLSSASL), which cannot authenticate
    /// the hypervisor.
    #[error(
        "the VNC server offers SASL only after anonymous TLS ({}), which cannot authenticate \
         the hypervisor; refusing (configure tls-creds-x509 on the hypervisor)",
        list(offered)
    )]
    AnonymousTls {
        /// The subtypes offered.
        offered: Vec<Subtype>,
    },

    /// No mechanism of the server's list is allowed on this route with this session.
    #[error(
        "no acceptable SASL mechanism {route}: the server offers [{}], mechanisms allows [{}]{}",
        offered.join(", "), allowed.join(", "), note
    )]
    NoMechanism {
        /// `over plain RFB (type 20)` or `inside VeNCrypt X509SASL`.
        route: &'static str,
        /// The server's list.
        offered: Vec<String>,
        /// The configured list.
        allowed: Vec<String>,
        /// Why offered and allowed ones were passed over (`; SCRAM-SHA-256 …`).
        note: String,
    },

    /// The Kerberos side of GSSAPI failed before the server said anything about it: no or
    /// expired credentials, a wrong or missing keytab, an unknown service principal.
    #[error(
        "GSSAPI with {service}@{host} failed on the proxy's side: {source}; check the keytab \
         (kinit -k -t KEYTAB), the service principal {service}/{host} in the KDC, and the \
         realm mapping in krb5.conf"
    )]
    Kerberos {
        /// The service name.
        service: String,
        /// The host.
        host: String,
        /// cyrus-sasl's error, with the GSS major and minor status.
        source: CyrusError,
    },

    /// A SASL step failed on the proxy's side (other than Kerberos credentials).
    #[error("SASL {mechanism} failed on the proxy's side: {source}")]
    Mechanism {
        /// The mechanism.
        mechanism: &'static str,
        /// cyrus-sasl's error.
        source: CyrusError,
    },

    /// The server closed the connection during the SASL exchange: QEMU does this when it
    /// rejects the credentials (a wrong SCRAM password, a Kerberos ticket it cannot accept).
    #[error(
        "the hypervisor closed the connection during SASL {mechanism} authentication: it \
         rejected the proxy's credentials (see its log: vnc_auth_fail)"
    )]
    ClosedDuringAuth {
        /// The mechanism.
        mechanism: &'static str,
    },

    /// The server refused the connection before authentication.
    #[error("the VNC server refused the connection: {reason}")]
    ServerRefused {
        /// Its reason.
        reason: String,
    },

    /// The server's SecurityResult was a failure.
    #[error("the hypervisor rejected SASL {mechanism} authentication: {reason}")]
    ServerRejected {
        /// The mechanism.
        mechanism: &'static str,
        /// Its reason, or a note that RFB 3.7 gives none.
        reason: String,
    },

    /// Without TLS the negotiated security layer is too weak (or absent): nothing is relayed.
    #[error(
        "SASL {mechanism} over plain RFB negotiated SSF {ssf}, below the {min} required \
         without TLS; nothing is relayed"
    )]
    SsfTooLow {
        /// The mechanism.
        mechanism: &'static str,
        /// The SSF negotiated.
        ssf: u32,
        /// The SSF required.
        min: u32,
    },

    /// TLS with the hypervisor (VeNCrypt X509SASL) failed.
    #[error(transparent)]
    Tls(#[from] TlsError),

    /// The server's first bytes are not an RFB ProtocolVersion: not a VNC port.
    #[error("not a VNC server: it greeted with {greeting}")]
    NotRfb {
        /// The greeting, escaped.
        greeting: String,
    },

    /// The server broke the RFB, VeNCrypt or SASL protocol.
    #[error("the VNC server broke the protocol: {0}")]
    Protocol(String),

    /// The server did not answer within the handshake timeout.
    #[error("the VNC server did not finish the SASL handshake within handshake_timeout")]
    Timeout,

    /// The server closed the connection, or a socket error.
    #[error("the connection to the VNC server failed during the handshake: {0}")]
    Io(io::Error),

    /// The browser broke the RFB handshake or went away.
    #[error("the browser client broke the RFB handshake: {0}")]
    Browser(String),
}

/// The browser's reason for a Kerberos failure.
const KERBEROS_PHRASE: &str = "the hypervisor refused the proxy's Kerberos credentials";
/// The browser's reason when no allowed mechanism is offered.
const MECHANISM_PHRASE: &str = "the console requires a mechanism the proxy does not allow";

impl SaslError {
    /// The ABI status: whose fault it is.
    pub fn status(&self) -> CgStatus {
        use SaslError as E;
        match self {
            E::UnknownKey { .. }
            | E::RetiredKey { .. }
            | E::BadValue { .. }
            | E::WeakMechanism { .. }
            | E::Keytab { .. }
            | E::TlsConfig(_)
            | E::Library(_)
            | E::TlsNotConfigured => CgStatus::CONFIG,
            E::NoSasl { .. }
            | E::AnonymousTls { .. }
            | E::NoMechanism { .. }
            | E::ServerRefused { .. }
            | E::SsfTooLow { .. } => CgStatus::REFUSED,
            E::Kerberos { .. }
            | E::Mechanism { .. }
            | E::ClosedDuringAuth { .. }
            | E::ServerRejected { .. } => CgStatus::AUTH,
            E::Tls(tls) => tls.status(),
            E::NotRfb { .. } | E::Protocol(_) => CgStatus::PROTOCOL,
            E::Timeout => CgStatus::TIMEOUT,
            E::Io(_) => CgStatus::IO,
            E::Browser(_) => CgStatus::CLIENT,
        }
    }

    /// The RFB failure reason the browser is shown: a phrase without internal detail (no host,
    /// principal or mechanism list) and the session number, under which the log has the rest.
    pub fn browser_reason(&self, session_id: u64) -> String {
        let phrase = match self {
            SaslError::Kerberos { .. } => Some(KERBEROS_PHRASE),
            SaslError::ClosedDuringAuth { mechanism }
            | SaslError::ServerRejected { mechanism, .. }
                if *mechanism == "GSSAPI" =>
            {
                Some(KERBEROS_PHRASE)
            }
            SaslError::NoMechanism { .. } => Some(MECHANISM_PHRASE),
            _ => None,
        };
        match phrase {
            Some(p) => format!("Console unavailable: {p} (session {session_id})."),
            None => format!(
                "Console unavailable: {}.",
                browser_reason(self.status(), session_id)
            ),
        }
    }

    /// The offer a server made, for [`SaslError::NoSasl`].
    pub fn no_sasl(types: &[SecurityType], subtypes: Option<&[Subtype]>) -> Self {
        let offered = match subtypes {
            Some(s) => format!(
                "security types {}, VeNCrypt subtypes {}",
                list(types),
                list(s)
            ),
            None => format!("security types {}", list(types)),
        };
        SaslError::NoSasl { offered }
    }
}

impl From<io::Error> for SaslError {
    /// Timeouts (the deadline-bounded socket says `TimedOut`) become [`SaslError::Timeout`];
    /// a TLS failure carried in an `io::Error` becomes [`SaslError::Tls`].
    fn from(e: io::Error) -> Self {
        if is_timeout(&e) {
            return SaslError::Timeout;
        }
        match TlsError::from_io(e) {
            TlsError::Timeout => SaslError::Timeout,
            TlsError::Io(e) => SaslError::Io(e),
            tls => SaslError::Tls(tls),
        }
    }
}

impl From<WireError> for SaslError {
    /// A length over its limit, or a field the step does not allow, is the server breaking
    /// the protocol.
    fn from(e: WireError) -> Self {
        match e {
            WireError::Io(e) => e.into(),
            e @ (WireError::TooLong { .. } | WireError::Unexpected(_)) => {
                SaslError::Protocol(e.to_string())
            }
        }
    }
}

impl From<ServerStepError> for SaslError {
    /// The first steps' failures: not RFB, refused, or a version the driver cannot speak.
    fn from(e: ServerStepError) -> Self {
        match e {
            ServerStepError::Wire(e) => e.into(),
            ServerStepError::NotRfb { greeting } => SaslError::NotRfb {
                greeting: format!("\"{greeting}\""),
            },
            ServerStepError::Refused { reason } => SaslError::ServerRefused { reason },
            e @ (ServerStepError::TooOld { .. }
            | ServerStepError::VencryptTooOld { .. }
            | ServerStepError::VencryptRefused { .. }) => SaslError::Protocol(e.to_string()),
        }
    }
}

impl From<SaslError> for DriverError {
    fn from(e: SaslError) -> Self {
        DriverError::new(e.status(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cyrus(detail: &str) -> CyrusError {
        CyrusError {
            op: "sasl_client_start",
            code: -1,
            detail: detail.into(),
        }
    }

    #[test]
    fn browser_reasons_name_the_problem_without_detail() {
        let e = SaslError::Kerberos {
            service: "vnc".into(),
            host: "hv1.example".into(),
            source: cyrus("GSSAPI Error: Unspecified GSS failure (Server not found)"),
        };
        assert_eq!(
            e.browser_reason(7),
            "Console unavailable: the hypervisor refused the proxy's Kerberos credentials \
             (session 7)."
        );
        assert!(e.to_string().contains("Server not found"), "{e}");
        assert_eq!(e.status(), CgStatus::AUTH);
        let e = SaslError::NoMechanism {
            route: "inside VeNCrypt X509SASL",
            offered: vec!["PLAIN".into()],
            allowed: vec!["GSSAPI".into()],
            note: String::new(),
        };
        assert_eq!(
            e.browser_reason(3),
            "Console unavailable: the console requires a mechanism the proxy does not allow \
             (session 3)."
        );
        let e = SaslError::ClosedDuringAuth {
            mechanism: "SCRAM-SHA-256",
        };
        assert_eq!(
            e.browser_reason(4),
            "Console unavailable: the console refused the credentials (session 4)."
        );
        let e = SaslError::SsfTooLow {
            mechanism: "GSSAPI",
            ssf: 0,
            min: 56,
        };
        assert_eq!(
            e.browser_reason(5),
            "Console unavailable: the console offers no security the proxy accepts (session 5)."
        );
    }

    #[test]
    fn timeouts_and_config_errors_map_to_their_status() {
        let e = SaslError::from(io::Error::new(io::ErrorKind::TimedOut, "deadline"));
        assert_eq!(e.status(), CgStatus::TIMEOUT);
        assert_eq!(
            DriverError::from(SaslError::UnknownKey { key: "x".into() }).status,
            CgStatus::CONFIG
        );
    }
}
