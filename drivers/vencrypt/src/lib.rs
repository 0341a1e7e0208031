//! # The VeNCrypt driver: encrypted VNC to QEMU/libvirt
//!
//! Serves VNC consoles (`CG_KIND_VNC`). The proxy terminates RFB security on both legs:
//!
//! - **Towards the hypervisor** it speaks VeNCrypt 0.2 with an X.509 subtype (X509None,
//!   X509Vnc or X509Plain): TLS 1.2/1.3 with the hypervisor's certificate checked against
//!   `ca_certificate` and the proxy's client certificate presented, then the subtype's
//!   authentication inside TLS. A server without VeNCrypt, or with only anonymous-TLS
//!   subtypes, is refused: there is never a cleartext fallback.
//! - **Towards the browser** (noVNC, over the proxy's authenticated websocket) it offers
//!   security type None in RFB 3.3, 3.7 or 3.8. If the hypervisor side fails, the browser
//!   gets an RFB failure with a short reason, and the host gets the precise error.
//!
//! After both handshakes, ClientInit, ServerInit and everything else pass through the TLS
//! channel unchanged.
//!
//! ## INI keys, section `[console_proxy_tls]`
//! - `ca_certificate` (required): PEM bundle of the CA that signs the hypervisors'
//!   certificates (libvirt's `ca-cert.pem`).
//! - `client_certificate`, `client_key` (both or neither): the proxy's certificate, signed by a
//!   CA the hypervisor trusts. Needed whenever QEMU verifies clients (`verify-peer=on`, the
//!   default; libvirt `vnc_tls_x509_verify = 1`).
//! - `server_name` (optional): the name the hypervisor's certificate must carry; defaults to
//!   the host the proxy connects to (IP literals need an IP SAN).
//! - `vencrypt_subtypes` (default `x509vnc, x509none, x509plain`): the subtypes the driver
//!   may use, most preferred first. The first one the server offers and the session's
//!   credentials satisfy wins (X509Vnc needs a password, X509Plain a username and a
//!   password). Anonymous TLS (`tlsnone`, `tlsvnc`, `tlsplain`) is refused as configuration.
//!
//! The password and username come from the token source, per session. See
//! `docs/vencrypt.md` for setting up QEMU, libvirt and the PKI.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::{Read, Write};

use consolegate_driver_api::{
    export_driver, Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, DriverError, Options,
};
use consolegate_tls_client::{ConsoleTransport, Deadline, TlsChannel, TlsClient};

pub mod choose;
mod error;
pub mod options;
pub mod server_handshake;
pub mod vnc_auth;

use consolegate_rfb::{browser, Subtype};

use error::InPhase;
pub use error::{Phase, VencryptError};

/// The VeNCrypt driver: the TLS client configuration and the subtype preference, read once
/// at `init`.
#[derive(Debug, Clone)]
pub struct Vencrypt {
    tls: TlsClient,
    subtypes: Vec<Subtype>,
}

impl Vencrypt {
    /// Reads `[console_proxy_tls]` (see the crate docs) and loads the certificates.
    pub fn from_options(options: &Options) -> Result<Self, VencryptError> {
        let subtypes = options::subtypes(options)?;
        let tls = TlsClient::from_options(options, options::SECTION)?;
        Ok(Self::new(tls, subtypes))
    }

    /// A driver from a ready TLS client and a subtype preference.
    pub fn new(tls: TlsClient, subtypes: Vec<Subtype>) -> Self {
        Self { tls, subtypes }
    }

    /// Runs one session's handshake: the browser's ProtocolVersion on `to_browser`, then the whole
    /// hypervisor side on `console`, then the browser's security handshake (or its RFB failure
    /// message). Returns the TLS channel to relay; ClientInit is the next message either way.
    pub fn handshake<S: ConsoleTransport>(
        &self,
        session: &ConsoleRequest<'_>,
        to_browser: &mut (impl Read + Write),
        console: S,
    ) -> Result<TlsChannel<S>, VencryptError> {
        let id = session.session_id;
        let deadline = Deadline::after(session.handshake_timeout);
        let browser = browser::exchange_version(to_browser).in_phase(Phase::ClientVersion)?;
        match server_handshake::run(&self.tls, &self.subtypes, session, console, deadline) {
            Ok(done) => {
                browser.accept(to_browser).in_phase(Phase::ClientSecurity)?;
                log::info!(
                    "session {id}: VeNCrypt {} with {}:{} (RFB {}); browser speaks RFB {}",
                    done.subtype,
                    session.hypervisor,
                    session.port,
                    done.version,
                    browser.version()
                );
                Ok(done.channel)
            }
            Err(e) => {
                log::debug!("session {id}: hypervisor handshake failed: {e}");
                browser.refuse(to_browser, &e.client_reason(id));
                Err(e)
            }
        }
    }
}

impl Driver for Vencrypt {
    fn init(options: &Options) -> Result<Self, DriverError> {
        Ok(Self::from_options(options)?)
    }

    fn connect(
        &self,
        session: &ConsoleRequest<'_>,
        client: &mut Browser<'_>,
        server: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        Ok(Box::new(self.handshake(session, client, server)?))
    }
}

export_driver! {
    driver: Vencrypt,
    name: "vencrypt",
    kinds: CG_KIND_VNC,
    flags: 0,
    option_sections: "console_proxy_tls",
    description: "VeNCrypt (X.509 TLS) to QEMU/libvirt VNC; security type None to the browser",
}
