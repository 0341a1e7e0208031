//! The crate's errors: [`TlsConfigError`] (at `init`, the operator's configuration) and
//! [`TlsError`] (per session: the handshake with the hypervisor), and their one mapping to
//! [`DriverError`] statuses.

use std::io;
use std::path::PathBuf;

use consolegate_driver_api::abi::CgStatus;
use consolegate_driver_api::DriverError;

/// The `[console_proxy_tls]` options cannot be turned into a TLS client. Every variant names
/// the INI key and, where there is one, the file; all map to status `CONFIG`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A required key is missing or empty. Set it in the named section.
    #[error("[{section}] {key} is required: {hint}")]
    MissingKey {
        /// The INI section.
        section: String,
        /// The missing key.
        key: &'static str,
        /// What the key is for.
        hint: &'static str,
    },

    /// Only one of `client_certificate` and `client_key` is set. Set both (to present a client
    /// certificate) or neither.
    #[error("[{section}] {present} is set but {missing} is not: set both or neither")]
    IncompleteClientIdentity {
        /// The INI section.
        section: String,
        /// The key that is set.
        present: &'static str,
        /// The key that is missing.
        missing: &'static str,
    },

    /// A configured file cannot be read. Check the path and that the proxy's user may read it.
    #[error("{key} = {}: cannot read the file: {source}", path.display())]
    ReadFile {
        /// The INI key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },

    /// A configured file is not valid PEM, or holds nothing of the expected kind. It must hold
    /// `BEGIN CERTIFICATE` blocks (certificates) or one `BEGIN PRIVATE KEY`,
    /// `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY` block (keys).
    #[error("{key} = {}: {problem}", path.display())]
    BadPem {
        /// The INI key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// rustls refused a CA certificate as a trust anchor. Check that `ca_certificate` holds
    /// the CA that signed the hypervisor's certificate, in PEM.
    #[error("ca_certificate = {}: certificate {index} is not a usable trust anchor: {reason}",
        path.display())]
    BadCaCertificate {
        /// The CA bundle.
        path: PathBuf,
        /// Which certificate in the file (1 = first).
        index: usize,
        /// rustls's reason.
        reason: rustls::Error,
    },

    /// rustls refused the client certificate and key, for example because the key does not
    /// belong to the certificate or its algorithm is unsupported.
    #[error("client_certificate = {}, client_key = {}: unusable as a client identity: {reason}",
        certificate.display(), key.display())]
    BadClientIdentity {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        reason: rustls::Error,
    },

    /// `server_name` is neither a DNS name nor an IP address.
    #[error("[{section}] server_name = {value:?} is not a valid DNS name or IP address")]
    InvalidServerName {
        /// The INI section.
        section: String,
        /// The value given.
        value: String,
    },

    /// The TLS library refused the protocol versions (a build problem, not a configuration one).
    #[error("cannot configure TLS 1.2 and 1.3 with the ring provider: {0}")]
    Provider(rustls::Error),
}

/// The TLS handshake with the hypervisor failed, or the session's TLS stream broke. Each
/// variant names the reason as precisely as the evidence allows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The hypervisor's certificate is not signed by `ca_certificate`. Point `ca_certificate`
    /// at the CA that issued the hypervisor's `server-cert.pem`.
    #[error(
        "the hypervisor's certificate is not signed by the configured CA \
        (ca_certificate); point ca_certificate at the CA that issued the hypervisor's \
        server-cert.pem"
    )]
    UnknownCa,

    /// The hypervisor's certificate does not name the host the proxy connected to. Reissue the
    /// certificate with that name in its subjectAltName (IP literals need an IP SAN), or set
    /// `server_name` to a name it carries.
    #[error(
        "the hypervisor's certificate is not valid for {expected:?} (it names {presented}); \
        reissue it with that name in subjectAltName or set server_name"
    )]
    NameMismatch {
        /// The name the proxy checked.
        expected: String,
        /// The names the certificate carries, as far as known.
        presented: String,
    },

    /// The hypervisor's certificate has expired. Renew it (and check the clocks).
    #[error("the hypervisor's certificate has expired{when}; renew it")]
    Expired {
        /// Extra detail on the dates, possibly empty.
        when: String,
    },

    /// The hypervisor's certificate is not valid yet. Check the clocks of both machines.
    #[error("the hypervisor's certificate is not valid yet{when}; check the clocks")]
    NotValidYet {
        /// Extra detail on the dates, possibly empty.
        when: String,
    },

    /// The hypervisor's certificate was refused for another reason (bad signature, wrong key
    /// usage, unsupported algorithm, …).
    #[error("the hypervisor's certificate was refused: {0}")]
    BadCertificate(rustls::CertificateError),

    /// The hypervisor sent an alert refusing the proxy's client certificate (or its absence).
    /// Check `client_certificate`/`client_key`, and that the CA the hypervisor trusts signed
    /// them.
    #[error(
        "the hypervisor rejected the proxy's client certificate (TLS alert {alert:?}); \
        check client_certificate and that it is signed by the CA the hypervisor trusts"
    )]
    ClientCertificateRejected {
        /// The alert received.
        alert: rustls::AlertDescription,
    },

    /// The hypervisor offers no TLS version the proxy accepts (1.2 and 1.3): it answered the
    /// proxy's ClientHello with a `protocol_version` alert. Upgrade its TLS setup (QEMU's
    /// `tls-creds` use the system's GnuTLS priorities).
    #[error(
        "the hypervisor offers only TLS versions older than 1.2 (alert ProtocolVersion); \
        the proxy requires TLS 1.2 or 1.3: update the hypervisor's TLS settings"
    )]
    LegacyVersion,

    /// The hypervisor sent another fatal alert during the handshake.
    #[error("the hypervisor aborted the TLS handshake with alert {alert:?}")]
    Alert {
        /// The alert received.
        alert: rustls::AlertDescription,
    },

    /// The hypervisor closed the connection during the TLS handshake, without an alert. QEMU
    /// does this when it rejects the client certificate, so check `client_certificate`.
    #[error(
        "the hypervisor closed the connection during the TLS handshake; it may have \
        rejected the proxy's client certificate (check client_certificate and that its CA is \
        the one the hypervisor trusts)"
    )]
    ClosedDuringHandshake,

    /// The peer does not speak TLS at this point (for example: a plain VNC port, or another
    /// protocol). Check the port and the hypervisor's TLS configuration.
    #[error(
        "the hypervisor did not answer with TLS (it sent {first_bytes}); is TLS enabled on \
        this port?"
    )]
    NotTls {
        /// The first bytes received, escaped.
        first_bytes: String,
    },

    /// Both sides share no protocol version, cipher suite or signature scheme (the proxy
    /// speaks TLS 1.2 and 1.3 only).
    #[error("the hypervisor's TLS is incompatible with the proxy's (TLS 1.2/1.3): {0}")]
    Incompatible(rustls::Error),

    /// Any other TLS failure.
    #[error("TLS with the hypervisor failed: {0}")]
    Protocol(rustls::Error),

    /// The handshake did not finish within the session's handshake timeout.
    #[error("the TLS handshake with the hypervisor did not finish in time")]
    Timeout,

    /// A socket error during the handshake.
    #[error("socket error during the TLS handshake: {0}")]
    Io(io::Error),
}

impl TlsError {
    /// The ABI status for this error: whose fault it is.
    pub fn status(&self) -> CgStatus {
        match self {
            TlsError::ClientCertificateRejected { .. } => CgStatus::AUTH,
            TlsError::Timeout => CgStatus::TIMEOUT,
            TlsError::Io(_) => CgStatus::IO,
            TlsError::UnknownCa
            | TlsError::NameMismatch { .. }
            | TlsError::Expired { .. }
            | TlsError::NotValidYet { .. }
            | TlsError::BadCertificate(_)
            | TlsError::Alert { .. }
            | TlsError::LegacyVersion
            | TlsError::ClosedDuringHandshake
            | TlsError::NotTls { .. }
            | TlsError::Incompatible(_)
            | TlsError::Protocol(_) => CgStatus::TLS,
        }
    }
}

impl TlsError {
    /// The TLS error inside an I/O error from [`BlockingTls`](crate::BlockingTls) (see
    /// [`TlsError::into_io`]); a timeout becomes [`TlsError::Timeout`], anything else
    /// [`TlsError::Io`].
    pub fn from_io(e: io::Error) -> TlsError {
        if crate::deadline::is_timeout(&e) {
            return TlsError::Timeout;
        }
        match e.downcast::<TlsError>() {
            Ok(tls) => tls,
            Err(e) => TlsError::Io(e),
        }
    }

    /// This error as the `io::Error` of a `Read`/`Write` edge: socket errors as they are (a
    /// socket timeout as `TimedOut`), a timeout as `TimedOut`, a TLS failure as `InvalidData`
    /// carrying it (taken back out by [`TlsError::from_io`]).
    pub fn into_io(self) -> io::Error {
        match self {
            TlsError::Io(e) => crate::deadline::timeout_kind(e),
            TlsError::Timeout => {
                io::Error::new(io::ErrorKind::TimedOut, "the handshake deadline has passed")
            }
            tls => io::Error::new(io::ErrorKind::InvalidData, tls),
        }
    }
}

impl From<TlsConfigError> for DriverError {
    fn from(e: TlsConfigError) -> Self {
        DriverError::config(e.to_string())
    }
}

impl From<TlsError> for DriverError {
    fn from(e: TlsError) -> Self {
        DriverError::new(e.status(), e.to_string())
    }
}
