//! # consolegate's TLS client for security drivers
//!
//! The part of the hypervisor leg that the VeNCrypt driver and the `spice_tls` driver share:
//!
//! 1. **Options** ([`TlsOptions`]): the shared keys of the driver's INI section
//!    (`[console_proxy_tls]`):
//!    - `ca_certificate` (required): PEM bundle of the CA(s) that sign the hypervisors'
//!      certificates. These are the only trust anchors; the system's roots are never used.
//!    - `client_certificate` + `client_key` (both or neither): the certificate the proxy
//!      presents. Without them a warning is logged, since QEMU verifies clients by default.
//!    - `server_name` (optional): the name the hypervisor's certificate must carry. Defaults to
//!      the session's host; IP literals are matched against IP SANs.
//! 2. **Configuration** ([`TlsClient`]): a rustls `ClientConfig` (TLS 1.2 and 1.3 only, ring
//!    provider), built once at `init` and shared by all sessions.
//! 3. **Handshake** ([`TlsClient::connect`]): blocking, on the host's socket, bounded by the
//!    session's [`Deadline`]; a failure says why ([`TlsError`]: unknown CA, name mismatch,
//!    expired, not valid yet, our certificate rejected, peer closed, not TLS at all, timeout).
//! 4. **Channel** ([`TlsChannel`]): the established connection as a non-blocking
//!    [`Channel`](consolegate_driver_api::Channel) for the proxy's relay. During the rest of a
//!    driver's handshake, [`BlockingTls`] gives deadline-bounded blocking I/O through it, and
//!    [`DeadlineIo`] does the same for cleartext steps before TLS.
//!
//! Errors convert into [`DriverError`](consolegate_driver_api::DriverError) in one place
//! (`error.rs`): configuration errors are `CONFIG`; a rejected client certificate is `AUTH`;
//! timeouts `TIMEOUT`; socket errors `IO`; every other TLS failure `TLS`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blocking;
mod channel;
mod config;
mod deadline;
mod error;
mod handshake;
mod options;
mod socket;
#[cfg(test)]
mod test_pki;
#[cfg(test)]
mod test_server;

pub use blocking::BlockingTls;
pub use channel::{TlsChannel, MAX_PENDING_TLS};
pub use config::TlsClient;
pub use deadline::{is_timeout, Deadline};
pub use error::{TlsConfigError, TlsError};
pub use options::{
    ClientIdentity, TlsOptions, KEY_CA_CERTIFICATE, KEY_CLIENT_CERTIFICATE, KEY_CLIENT_KEY,
    KEY_SERVER_NAME,
};
pub use socket::{ConsoleTransport, DeadlineIo};
