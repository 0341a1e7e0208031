//! # The `sasl_gssapi` driver: SASL (Kerberos GSSAPI, SCRAM-SHA-256) to QEMU's VNC server
//!
//! Serves VNC consoles (`CG_KIND_VNC`). The proxy terminates RFB security on both legs:
//!
//! - **Towards the hypervisor** it authenticates with SASL through cyrus-sasl, the library
//!   QEMU uses on its side ([`cyrus`]):
//!   - **RFB security type 20 on plain TCP**: only GSSAPI, and only with a security layer of
//!     SSF ≥ 56 (confidentiality), through which every relayed byte is wrapped and unwrapped
//!     ([`layer`]);
//!   - **VeNCrypt X509SASL (263)**: mutual TLS with `[console_proxy_tls]`, as in the
//!     `vencrypt` driver, then SASL inside it (GSSAPI or SCRAM-SHA-256, no layer).
//!
//!   The mechanism is the first of `mechanisms` that the server offers and the route allows
//!   ([`handshake::choose_mechanism`]); PLAIN, DIGEST-MD5, CRAM-MD5 and the like are refused.
//!   GSSAPI uses the proxy's client keytab and the service principal `<service>/<host>`;
//!   SCRAM the username and password of the console's token.
//! - **Towards the browser** it offers security type None (the websocket already
//!   authenticated it) with the shared [`consolegate_rfb::browser`] handshake. A hypervisor
//!   failure reaches the browser as an RFB failure it can show
//!   ([`SaslError::browser_reason`]); the log gets the detail (the mechanism list, cyrus-sasl's
//!   error with the GSSAPI major and minor status, the SSF).
//!
//! ## INI keys, section `[console_proxy_sasl]`
//! - `mechanisms` (default `GSSAPI, SCRAM-SHA-256`), most preferred first.
//! - `service` (default `vnc`): the service part of the hypervisor's principal.
//! - `keytab` (optional): the proxy's client keytab, exported to the Kerberos library as
//!   `KRB5_CLIENT_KTNAME` at start-up (`--check-config` checks that it is a keytab).
//!
//! `[console_proxy_tls]` (`ca_certificate`, `client_certificate`, `client_key`,
//! `server_name`) enables X509SASL. See `docs/sasl.md`.

#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod cyrus;
mod error;
pub mod handshake;
pub mod layer;
pub mod options;
pub mod vnc_sasl;

use consolegate_driver_api::{
    export_driver, Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, DriverError, Options,
};
use consolegate_rfb::browser;
use consolegate_tls_client::{Deadline, TlsClient};

pub use error::SaslError;
pub use options::{Mechanism, SaslOptions, SECTION, TLS_SECTION};

/// The driver: its validated options and, when `[console_proxy_tls]` is set, the TLS client
/// for X509SASL.
#[derive(Debug)]
pub struct SaslGssapi {
    options: SaslOptions,
    tls: Option<TlsClient>,
}

impl SaslGssapi {
    /// Reads the options, loads the TLS configuration if any, points the Kerberos library at
    /// the keytab and initialises cyrus-sasl.
    pub fn from_options(options: &Options) -> Result<Self, SaslError> {
        let sasl = SaslOptions::from_options(options)?;
        let tls_configured = options
            .get(TLS_SECTION, consolegate_tls_client::KEY_CA_CERTIFICATE)
            .is_some_and(|v| !v.trim().is_empty());
        let tls = if tls_configured {
            Some(TlsClient::from_options(options, TLS_SECTION)?)
        } else {
            None
        };
        if let Some(keytab) = &sasl.keytab {
            // Read by MIT Kerberos when GSSAPI first needs the proxy's credentials. Set once,
            // at start-up, before any session thread runs.
            std::env::set_var("KRB5_CLIENT_KTNAME", keytab);
        }
        if std::env::var_os("KRB5CCNAME").is_none() {
            // Tickets obtained from the keytab stay in this process, not in a file another
            // process (or user) could read.
            std::env::set_var("KRB5CCNAME", "MEMORY:consolegate");
        }
        cyrus::init().map_err(SaslError::Library)?;
        Ok(Self { options: sasl, tls })
    }

    /// The validated options.
    pub fn options(&self) -> &SaslOptions {
        &self.options
    }
}

impl Driver for SaslGssapi {
    fn init(options: &Options) -> Result<Self, DriverError> {
        let driver = Self::from_options(options)?;
        log::info!(
            "sasl_gssapi: mechanisms [{}], service {}, keytab {}, X509SASL {}",
            driver
                .options
                .mechanisms
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", "),
            driver.options.service,
            driver
                .options
                .keytab
                .as_ref()
                .map_or("(Kerberos default)".into(), |p| p.display().to_string()),
            if driver.tls.is_some() {
                "enabled"
            } else {
                "disabled ([console_proxy_tls] not set)"
            }
        );
        Ok(driver)
    }

    fn connect(
        &self,
        session: &ConsoleRequest<'_>,
        client: &mut Browser<'_>,
        server: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        let id = session.session_id;
        let deadline = Deadline::after(session.handshake_timeout);
        let browser =
            browser::exchange_version(client).map_err(|e| SaslError::Browser(e.to_string()))?;
        match handshake::run(&self.options, self.tls.as_ref(), session, server, deadline) {
            Ok(done) => {
                browser
                    .accept(client)
                    .map_err(|e| SaslError::Browser(e.to_string()))?;
                log::info!(
                    "session {id}: SASL {} {} with {}:{} (SSF {}); browser speaks RFB {}",
                    done.mechanism,
                    done.route.describe(),
                    session.hypervisor,
                    session.port,
                    done.ssf,
                    browser.version()
                );
                Ok(done.channel)
            }
            Err(e) => {
                log::debug!("session {id}: hypervisor handshake failed: {e}");
                browser.refuse(client, &e.browser_reason(id));
                Err(e.into())
            }
        }
    }
}

export_driver! {
    driver: SaslGssapi,
    name: "sasl_gssapi",
    kinds: CG_KIND_VNC,
    flags: 0,
    option_sections: "console_proxy_sasl, console_proxy_tls",
    description: "SASL (Kerberos GSSAPI with a security layer, or SCRAM-SHA-256 inside VeNCrypt X509SASL) to QEMU/libvirt VNC; security type None to the browser",
}
