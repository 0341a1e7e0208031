//! [`VencryptError`], the handshake [`Phase`]s errors name, and the one mapping of each error
//! to the wire: its [`CgStatus`] (for the host) and its RFB failure reason (for the browser).

use std::fmt;
use std::io;

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::{browser_reason, DriverError};
use consolegate_tls_client::{TlsConfigError, TlsError};

use consolegate_rfb::server::ServerStepError;
use consolegate_rfb::{list, SecurityType, Subtype, WireError};

/// A step of the session handshake, named in timeouts and end-of-stream errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading the server's ProtocolVersion, or sending ours.
    ServerVersion,
    /// Reading the server's security types, or sending our choice.
    SecurityTypes,
    /// Exchanging VeNCrypt versions.
    VencryptVersion,
    /// Reading the VeNCrypt subtypes.
    Subtypes,
    /// Sending our subtype and reading its acknowledgement.
    SubtypeAck,
    /// Exchanging the VNC challenge and response (inside TLS).
    VncChallenge,
    /// Sending the X509Plain username and password (inside TLS).
    PlainCredentials,
    /// Reading the SecurityResult (inside TLS for VeNCrypt).
    SecurityResult,
    /// Reading the server's failure reason.
    FailureReason,
    /// Exchanging ProtocolVersions with the browser.
    ClientVersion,
    /// Offering the browser its security type and reading its choice.
    ClientSecurity,
}

impl Phase {
    /// Whether this step happens inside TLS with the hypervisor.
    pub fn inside_tls(self) -> bool {
        matches!(
            self,
            Phase::VncChallenge | Phase::PlainCredentials | Phase::SecurityResult
        )
    }

    /// Whether this step talks to the browser rather than the hypervisor.
    pub fn browser_side(self) -> bool {
        matches!(self, Phase::ClientVersion | Phase::ClientSecurity)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::ServerVersion => "exchanging ProtocolVersion with the server",
            Phase::SecurityTypes => "negotiating the security type with the server",
            Phase::VencryptVersion => "exchanging VeNCrypt versions",
            Phase::Subtypes => "reading the VeNCrypt subtypes",
            Phase::SubtypeAck => "choosing the VeNCrypt subtype",
            Phase::VncChallenge => "answering the VNC challenge inside TLS",
            Phase::PlainCredentials => "sending the X509Plain credentials inside TLS",
            Phase::SecurityResult => "reading the SecurityResult",
            Phase::FailureReason => "reading the server's failure reason",
            Phase::ClientVersion => "exchanging ProtocolVersion with the browser",
            Phase::ClientSecurity => "negotiating security type None with the browser",
        })
    }
}

/// Why a VeNCrypt session (or the driver's configuration) failed. Messages never contain the
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VencryptError {
    /// `vencrypt_subtypes` is invalid (unknown name, anonymous TLS, empty). Fix the INI value.
    #[error("[console_proxy_tls] vencrypt_subtypes = {value:?}: {problem}")]
    BadSubtypes {
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: String,
    },

    /// The shared TLS options are invalid (see [`TlsConfigError`]).
    #[error(transparent)]
    TlsConfig(#[from] TlsConfigError),

    /// The hypervisor does not offer VeNCrypt, so the console would be cleartext: refused.
    /// Enable TLS on the hypervisor (libvirt `vnc_tls = 1`; QEMU `-vnc …,tls-creds=…`).
    #[error(
        "server offers no VeNCrypt; refusing to fall back to cleartext (it offered {})",
        list(offered)
    )]
    NoVencryptOffered {
        /// The security types it offered.
        offered: Vec<SecurityType>,
    },

    /// No offered subtype is both in `vencrypt_subtypes` and satisfiable with the session's
    /// credentials. Align the preference with the hypervisor, or give the token its password.
    #[error(
        "no acceptable VeNCrypt subtype: the server offers {}, vencrypt_subtypes allows {}{}",
        list(offered),
        list(preference),
        missing_note(missing_credentials)
    )]
    NoAcceptableSubtype {
        /// The subtypes offered.
        offered: Vec<Subtype>,
        /// The configured preference.
        preference: Vec<Subtype>,
        /// Offered and preferred subtypes that lacked credentials, with what they need.
        missing_credentials: Vec<String>,
    },

    /// The server offers only anonymous-TLS subtypes, which cannot authenticate the
    /// hypervisor. Configure X.509 on it (QEMU `tls-creds-x509`, not `tls-creds-anon`).
    #[error(
        "the server offers only anonymous TLS subtypes {}, which cannot authenticate the \
        hypervisor; refusing (configure tls-creds-x509 on the hypervisor)",
        list(offered)
    )]
    AnonymousTlsRefused {
        /// The subtypes offered.
        offered: Vec<Subtype>,
    },

    /// The server's RFB or VeNCrypt version cannot be used (VeNCrypt needs RFB 3.7+ and
    /// VeNCrypt 0.2).
    #[error("{detail}")]
    VersionRejected {
        /// What was wrong.
        detail: String,
    },

    /// The server refused the connection before authentication, with this reason.
    #[error("the hypervisor refused the connection: {reason}")]
    ServerRefused {
        /// The server's reason.
        reason: String,
    },

    /// The server did not accept the subtype it had offered.
    #[error("the server did not accept VeNCrypt subtype {subtype} (ack {ack})")]
    SubtypeRefused {
        /// The subtype sent.
        subtype: Subtype,
        /// The acknowledgement byte received.
        ack: u8,
    },

    /// TLS with the hypervisor failed (see [`TlsError`] for each reason).
    #[error(transparent)]
    Tls(#[from] TlsError),

    /// The hypervisor rejected the credentials (VNC password, or username and password).
    /// Check the token's password; QEMU uses only its first 8 characters.
    #[error("the hypervisor rejected the credentials: {reason}")]
    ServerRejected {
        /// The server's reason ("Authentication failed"), or a note that it gave none.
        reason: String,
    },

    /// The hypervisor closed the connection after the TLS handshake, before the
    /// SecurityResult. QEMU does this when it rejects the client certificate.
    #[error(
        "the hypervisor closed the connection after TLS (while {phase}), most likely \
        rejecting the proxy's client certificate: check client_certificate and that its CA is \
        the one QEMU trusts"
    )]
    ClosedAfterTls {
        /// The step that saw the close.
        phase: Phase,
    },

    /// A length field from the server exceeds its limit (a broken or hostile server).
    #[error("{what} length {len} exceeds the limit of {max}")]
    LengthTooLarge {
        /// Which field.
        what: &'static str,
        /// The length received.
        len: u64,
        /// The limit.
        max: usize,
    },

    /// The server sent something that is not RFB at this point.
    #[error("malformed message from the server while {phase}: {detail}")]
    Malformed {
        /// The step.
        phase: Phase,
        /// What arrived.
        detail: String,
    },

    /// The handshake did not finish within `handshake_timeout`.
    #[error("timed out while {phase}")]
    Timeout {
        /// The step that ran out of time.
        phase: Phase,
    },

    /// The server closed the connection in the middle of the handshake.
    #[error("the server closed the connection while {phase}")]
    UnexpectedEof {
        /// The step.
        phase: Phase,
    },

    /// A socket error on the hypervisor side.
    #[error("socket error while {phase}: {source}")]
    Io {
        /// The step.
        phase: Phase,
        /// The error.
        source: io::Error,
    },

    /// The browser broke the RFB handshake (unknown version, or a security type other than
    /// None).
    #[error("the browser client broke the RFB handshake: {reason}")]
    ClientRefused {
        /// What it did.
        reason: String,
    },

    /// The browser went away, or its websocket failed, during the handshake.
    #[error("the browser client failed while {phase}: {source}")]
    ClientIo {
        /// The step.
        phase: Phase,
        /// The error.
        source: io::Error,
    },
}

fn missing_note(missing: &[String]) -> String {
    if missing.is_empty() {
        String::new()
    } else {
        format!(
            "; the session lacks credentials for: {}",
            missing.join("; ")
        )
    }
}

impl VencryptError {
    /// The ABI status: whose fault it is.
    pub fn status(&self) -> CgStatus {
        use VencryptError as E;
        match self {
            E::BadSubtypes { .. } | E::TlsConfig(_) => CgStatus::CONFIG,
            E::NoVencryptOffered { .. }
            | E::NoAcceptableSubtype { .. }
            | E::AnonymousTlsRefused { .. }
            | E::ServerRefused { .. } => CgStatus::REFUSED,
            E::VersionRejected { .. } => CgStatus::UNSUPPORTED,
            E::Tls(tls) => tls.status(),
            E::ServerRejected { .. } | E::ClosedAfterTls { .. } => CgStatus::AUTH,
            E::SubtypeRefused { .. } | E::LengthTooLarge { .. } | E::Malformed { .. } => {
                CgStatus::PROTOCOL
            }
            E::Timeout { .. } => CgStatus::TIMEOUT,
            E::UnexpectedEof { .. } | E::Io { .. } => CgStatus::IO,
            E::ClientRefused { .. } | E::ClientIo { .. } => CgStatus::CLIENT,
        }
    }

    /// The failure reason shown to the browser (noVNC prints it): generic, with the session
    /// number; the full message, with the hypervisor's own reason, goes to the proxy's log.
    pub fn client_reason(&self, session_id: u64) -> String {
        format!(
            "Console unavailable: {}.",
            browser_reason(self.status(), session_id)
        )
    }

    /// A wire failure in `phase` as the error it means there.
    pub(crate) fn from_wire(e: WireError, phase: Phase) -> Self {
        match e {
            WireError::Io(e) => Self::from_io(e, phase),
            WireError::TooLong { what, len, max } => {
                VencryptError::LengthTooLarge { what, len, max }
            }
            WireError::Unexpected(reason) if phase.browser_side() => {
                VencryptError::ClientRefused { reason }
            }
            WireError::Unexpected(detail) => VencryptError::Malformed { phase, detail },
        }
    }

    /// An I/O error of `phase` as the error it means there.
    pub(crate) fn from_io(e: io::Error, phase: Phase) -> Self {
        if phase.browser_side() {
            return match e.kind() {
                io::ErrorKind::UnexpectedEof => VencryptError::ClientRefused {
                    reason: format!("it closed the connection while {phase}"),
                },
                _ => VencryptError::ClientIo { phase, source: e },
            };
        }
        let closed = matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        );
        match TlsError::from_io(e) {
            TlsError::Timeout => VencryptError::Timeout { phase },
            TlsError::Io(_) if closed && phase.inside_tls() => {
                VencryptError::ClosedAfterTls { phase }
            }
            TlsError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                VencryptError::UnexpectedEof { phase }
            }
            TlsError::Io(source) => VencryptError::Io { phase, source },
            tls => VencryptError::Tls(tls),
        }
    }
}

/// Names the step a wire operation belongs to: `read_u8(io).in_phase(Phase::Subtypes)?`.
pub(crate) trait InPhase<T> {
    /// The result, its failure as the [`VencryptError`] it means in `phase`.
    fn in_phase(self, phase: Phase) -> Result<T, VencryptError>;
}

impl<T> InPhase<T> for Result<T, WireError> {
    fn in_phase(self, phase: Phase) -> Result<T, VencryptError> {
        self.map_err(|e| VencryptError::from_wire(e, phase))
    }
}

impl<T> InPhase<T> for Result<T, ServerStepError> {
    fn in_phase(self, phase: Phase) -> Result<T, VencryptError> {
        self.map_err(|e| match e {
            ServerStepError::Wire(e) => VencryptError::from_wire(e, phase),
            e @ ServerStepError::NotRfb { .. } => VencryptError::Malformed {
                phase,
                detail: e.to_string(),
            },
            ServerStepError::Refused { reason } => VencryptError::ServerRefused { reason },
            e @ (ServerStepError::TooOld { .. }
            | ServerStepError::VencryptTooOld { .. }
            | ServerStepError::VencryptRefused { .. }) => VencryptError::VersionRejected {
                detail: e.to_string(),
            },
        })
    }
}

impl From<VencryptError> for DriverError {
    fn from(e: VencryptError) -> Self {
        DriverError::new(e.status(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_vencrypt_message_is_exact() {
        let e = VencryptError::NoVencryptOffered {
            offered: vec![SecurityType::None, SecurityType::VncAuth],
        };
        assert_eq!(
            e.to_string(),
            "server offers no VeNCrypt; refusing to fall back to cleartext (it offered \
             [None(1), VncAuth(2)])"
        );
        assert_eq!(e.status(), CgStatus::REFUSED);
    }

    #[test]
    fn io_errors_become_phase_errors() {
        let eof = || io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(matches!(
            VencryptError::from_io(eof(), Phase::SecurityResult),
            VencryptError::ClosedAfterTls {
                phase: Phase::SecurityResult
            }
        ));
        assert!(matches!(
            VencryptError::from_io(eof(), Phase::Subtypes),
            VencryptError::UnexpectedEof {
                phase: Phase::Subtypes
            }
        ));
        assert!(matches!(
            VencryptError::from_io(io::ErrorKind::WouldBlock.into(), Phase::ServerVersion),
            VencryptError::Timeout {
                phase: Phase::ServerVersion
            }
        ));
        let e = VencryptError::from_io(eof(), Phase::ClientSecurity);
        assert_eq!(e.status(), CgStatus::CLIENT);
        let e = VencryptError::from_wire(
            WireError::Unexpected("it chose security type VncAuth(2)".into()),
            Phase::ClientSecurity,
        );
        assert_eq!(
            e.to_string(),
            "the browser client broke the RFB handshake: it chose security type VncAuth(2)"
        );
        let e = VencryptError::from_io(eof(), Phase::ClientVersion);
        assert_eq!(
            e.to_string(),
            "the browser client broke the RFB handshake: it closed the connection while \
             exchanging ProtocolVersion with the browser"
        );
        let tls = io::Error::new(io::ErrorKind::InvalidData, TlsError::UnknownCa);
        assert!(matches!(
            VencryptError::from_io(tls, Phase::VncChallenge),
            VencryptError::Tls(TlsError::UnknownCa)
        ));
    }
}
