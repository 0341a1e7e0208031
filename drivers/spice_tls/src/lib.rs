//! # The `spice_tls` driver: TLS to SPICE and serial consoles
//!
//! Serves two console kinds that are opaque byte streams inside TLS on the hypervisor side:
//!
//! - **SPICE** on QEMU's `tls-port` (`-spice tls-port=…,x509-dir=…`; libvirt `spice_tls = 1`).
//!   TLS comes first on that port, then SPICE's own link protocol (`REDQ`), which the browser's
//!   SPICE client (spice-html5) speaks through the relay. SPICE opens one connection per
//!   channel (main, display, inputs, cursor, …), each a separate websocket and session here.
//!   SPICE servers never ask for a client certificate; one configured is still presented.
//! - **Serial consoles** on a QEMU socket chardev with `tls-creds` (libvirt `chardev_tls = 1`).
//!   QEMU checks the client certificate (`verify-peer=on`, its default) only after the TLS
//!   handshake has completed, and then closes the connection without an alert. So after the
//!   handshake a serial session waits up to [`SERIAL_SETTLE`] for that close, to report a
//!   refused certificate as such rather than as "console closed" (see [`SpiceTlsError`]).
//!
//! ## Options: `[console_proxy_tls]`
//! The keys the VeNCrypt driver reads too, parsed by `consolegate-tls-client`:
//! `ca_certificate` (required), `client_certificate` + `client_key`, `server_name`. TLS 1.2
//! and 1.3 only; the server's certificate is verified against `ca_certificate` and
//! `server_name` (default: the console's host).
//!
//! ## Per-session information
//! Each channel keeps a [`SessionInfo`] (kind, target, the proxy's session id), logged when the
//! channel opens and closes. It is the seam for binding single-use tokens to one SPICE session
//! (a later issue): see [`ConsoleChannel`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod channel;
mod error;
mod serial;

use consolegate_driver_api::{
    export_driver, Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, DriverError, Kind,
    Options,
};
use consolegate_tls_client::{Deadline, TlsClient, TlsOptions};

pub use channel::{ConsoleChannel, SessionInfo};
pub use error::SpiceTlsError;
pub use serial::SERIAL_SETTLE;

/// The INI section the driver reads: the same one as the VeNCrypt driver.
pub const SECTION: &str = "console_proxy_tls";

/// The driver: one TLS client configuration shared by every session.
#[derive(Debug)]
pub struct SpiceTls {
    client: TlsClient,
    /// Whether `client_certificate` is configured (to tell "none configured" from "refused").
    presents_certificate: bool,
}

impl Driver for SpiceTls {
    fn init(options: &Options) -> Result<Self, DriverError> {
        Ok(Self::from_options(options)?)
    }

    fn connect(
        &self,
        session: &ConsoleRequest<'_>,
        _client: &mut Browser<'_>,
        server: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        let channel = self.open(session, server)?;
        Ok(Box::new(channel))
    }
}

impl SpiceTls {
    /// Reads `[console_proxy_tls]` and builds the TLS client.
    pub fn from_options(options: &Options) -> Result<Self, SpiceTlsError> {
        let tls = TlsOptions::from_options(options, SECTION)?;
        let client = TlsClient::new(&tls)?;
        Ok(Self {
            client,
            presents_certificate: tls.client_identity.is_some(),
        })
    }

    /// TLS with the console on `server`, within the session's handshake timeout.
    fn open(
        &self,
        session: &ConsoleRequest<'_>,
        server: ConsoleSocket,
    ) -> Result<ConsoleChannel, SpiceTlsError> {
        if session.kind == Kind::Vnc {
            return Err(SpiceTlsError::WrongKind(session.kind));
        }
        let info = SessionInfo::new(session);
        let deadline = Deadline::after(session.handshake_timeout);
        let mut tls = self
            .client
            .connect(session.hypervisor, server, deadline)
            .map_err(|e| SpiceTlsError::handshake(session.kind, e))?;
        let early = match session.kind {
            Kind::Serial => serial::settle(&mut tls, deadline, self.presents_certificate)?,
            Kind::Spice | Kind::Vnc => Vec::new(),
        };
        let conn = tls.connection();
        let version = conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let suite = conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
        log::info!(
            "session {}: {} console {}:{} over {version} ({})",
            info.session_id,
            info.kind,
            info.hypervisor,
            info.port,
            suite.unwrap_or_default()
        );
        Ok(ConsoleChannel::new(tls, info, early))
    }
}

export_driver! {
    driver: SpiceTls,
    name: "spice_tls",
    kinds: CG_KIND_SPICE | CG_KIND_SERIAL,
    flags: 0,
    option_sections: "console_proxy_tls",
    description: "TLS (X.509, TLS 1.2+) to SPICE tls-ports and to serial consoles on TLS chardevs",
}
