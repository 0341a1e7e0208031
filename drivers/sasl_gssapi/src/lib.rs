//! # The `sasl_gssapi` driver: a PLACEHOLDER
//!
//! It cannot complete a session yet, and says so: its descriptor carries
//! `CG_DRIVER_FLAG_PLACEHOLDER`, so the proxy warns at start-up and `--check-config` prints
//! `WARNING: driver 'sasl_gssapi' is a placeholder`.
//!
//! What it does now:
//! 1. At start-up it validates `[console_proxy_sasl]` ([`SaslOptions`]): `mechanism` (default
//!    `GSSAPI`), `service` (default `vnc`), `keytab` (must be a readable file if set),
//!    `principal`; an unknown key is an error.
//! 2. Per VNC session it reads the server's RFB version and security offer, bounded by the
//!    handshake timeout (for VeNCrypt, up to the subtype list, which comes before TLS). If the
//!    server offers SASL (type 20, or VeNCrypt TLSSASL 263 / X509SASL 264) the session ends
//!    with [`NOT_IMPLEMENTED`]; otherwise with what the server offered.
//! 3. It tells the browser in RFB terms (the shared [`consolegate_rfb::browser`] handshake:
//!    version 3.8, then a failure with the reason), so noVNC shows the message, and returns
//!    the error to the proxy.
//!
//! It never returns a channel, so nothing is ever relayed, least of all in cleartext.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod offer;
mod options;

use consolegate_driver_api::{
    browser_reason, export_driver, Browser, Channel, ConsoleRequest, ConsoleSocket, Driver,
    DriverError, Options,
};
use consolegate_rfb::browser;
use consolegate_tls_client::{Deadline, DeadlineIo};

pub use error::{SaslError, NOT_IMPLEMENTED};
pub use offer::{read_offer, Offer};
pub use options::{SaslOptions, SECTION};

/// The driver: its validated options (unused until SASL is implemented).
#[derive(Debug)]
pub struct SaslGssapi {
    options: SaslOptions,
}

impl SaslGssapi {
    /// The validated options.
    pub fn options(&self) -> &SaslOptions {
        &self.options
    }
}

impl Driver for SaslGssapi {
    fn init(options: &Options) -> Result<Self, DriverError> {
        let options = SaslOptions::from_options(options)?;
        log::warn!(
            "sasl_gssapi is a placeholder: every session ends before the console is reached \
             (mechanism {}, service {})",
            options.mechanism,
            options.service
        );
        Ok(Self { options })
    }

    fn connect(
        &self,
        session: &ConsoleRequest<'_>,
        client: &mut Browser<'_>,
        mut server: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        let deadline = Deadline::after(session.handshake_timeout);
        let failure = match read_offer(&mut DeadlineIo::new(&mut server, deadline)) {
            Ok(offer) if offer.has_sasl() => {
                log::info!(
                    "session {}: the VNC server offers {offer}",
                    session.session_id
                );
                SaslError::NotImplemented
            }
            Ok(offer) => SaslError::NoSasl {
                offered: offer.to_string(),
            },
            Err(e) => e,
        };
        let status = failure.status();
        let reason = format!(
            "Console unavailable: {}.",
            browser_reason(status, session.session_id)
        );
        match browser::exchange_version(client) {
            Ok(browser) => browser.refuse(client, &reason),
            Err(e) => log::debug!(
                "session {}: cannot tell the browser in RFB: {e}",
                session.session_id
            ),
        }
        Err(failure.into())
    }
}

export_driver! {
    driver: SaslGssapi,
    name: "sasl_gssapi",
    kinds: CG_KIND_VNC,
    flags: CG_DRIVER_FLAG_PLACEHOLDER,
    option_sections: "console_proxy_sasl",
    description: "PLACEHOLDER: reports VNC servers' SASL offers; SASL negotiation is not implemented yet",
}
