//! The whole hypervisor-side handshake, in wire order:
//!
//! 1. [`choose_route`]: the server's ProtocolVersion and security types. VeNCrypt with
//!    X509SASL (263) is chosen when the server offers it and `[console_proxy_tls]` is set;
//!    otherwise plain SASL (20). Anonymous-TLS SASL (264) and servers without SASL are refused.
//! 2. For X509SASL: VeNCrypt 0.2, the subtype, then TLS (the hypervisor's certificate checked,
//!    the proxy's presented), as in the `vencrypt` driver.
//! 3. [`authenticate`]: QEMU's SASL exchange ([`crate::vnc_sasl`]) through cyrus-sasl with the
//!    first mechanism of `mechanisms` that the server offers and the route allows
//!    ([`choose_mechanism`]); then the SSF check (at least [`MIN_SSF`] without TLS) and the
//!    SecurityResult.
//!
//! Every read is bounded by the session deadline through the socket's timeouts. Nothing
//! reaches the relay unless every step succeeded.

use std::io::{Read, Write};

use consolegate_driver_api::{Channel, ConsoleRequest, ConsoleSocket};
use consolegate_rfb::security::{SECURITY_RESULT_OK, SUBTYPE_ACK_OK};
use consolegate_rfb::server;
use consolegate_rfb::wire::{read_reason, read_u32, write_all};
use consolegate_rfb::{RfbVersion, SecurityType, Subtype};
use consolegate_tls_client::{BlockingTls, Deadline, DeadlineIo, TlsClient};

use crate::cyrus::{Credentials, CyrusError, SaslClient, Security};
use crate::error::SaslError;
use crate::layer::SaslChannel;
use crate::options::{Mechanism, SaslOptions};
use crate::vnc_sasl::{read_mechlist, read_reply, write_start, write_step};

/// The least SSF accepted without TLS: 56, as QEMU itself requires ("good enough to require
/// Kerberos").
pub const MIN_SSF: u32 = 56;

/// How SASL reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// RFB security type 20 on plain TCP: a security layer wraps every byte.
    PlainSasl(RfbVersion),
    /// VeNCrypt X509SASL (263): SASL inside mutual TLS, no security layer.
    X509Sasl(RfbVersion),
}

impl Route {
    /// For messages.
    pub fn describe(self) -> &'static str {
        match self {
            Route::PlainSasl(_) => "over plain RFB (type 20)",
            Route::X509Sasl(_) => "inside VeNCrypt X509SASL",
        }
    }

    fn version(self) -> RfbVersion {
        match self {
            Route::PlainSasl(v) | Route::X509Sasl(v) => v,
        }
    }
}

/// What the handshake established: the channel to relay, and what was negotiated.
pub struct Established {
    /// The channel, positioned right after the SecurityResult (ClientInit comes next).
    pub channel: Box<dyn Channel>,
    /// How SASL was reached.
    pub route: Route,
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// The SSF of the SASL security layer (0 inside TLS).
    pub ssf: u32,
}

/// Step 1: version and security types; answers with the chosen type.
pub fn choose_route(
    io: &mut (impl Read + Write),
    tls_configured: bool,
) -> Result<Route, SaslError> {
    let version = server::exchange_version(io)?;
    let types = server::read_security_types(io, version)?;
    let vencrypt = types.contains(&SecurityType::VeNCrypt) && version != RfbVersion::V3_3;
    if vencrypt && (tls_configured || !types.contains(&SecurityType::Sasl)) {
        write_all(io, &[SecurityType::VeNCrypt.wire()])?;
        return choose_x509sasl(io, &types, tls_configured).map(|()| Route::X509Sasl(version));
    }
    if types.contains(&SecurityType::Sasl) {
        // RFB 3.3: the server chose; the client sends nothing.
        if version != RfbVersion::V3_3 {
            write_all(io, &[SecurityType::Sasl.wire()])?;
        }
        return Ok(Route::PlainSasl(version));
    }
    Err(SaslError::no_sasl(&types, None))
}

/// Step 2 before TLS: VeNCrypt 0.2, the subtypes, X509SASL chosen and acknowledged.
fn choose_x509sasl(
    io: &mut (impl Read + Write),
    types: &[SecurityType],
    tls_configured: bool,
) -> Result<(), SaslError> {
    server::negotiate_vencrypt_version(io)?;
    let subtypes = server::read_subtypes(io)?;
    if !subtypes.contains(&Subtype::X509Sasl) {
        return Err(if subtypes.contains(&Subtype::TlsSasl) {
            SaslError::AnonymousTls { offered: subtypes }
        } else {
            SaslError::no_sasl(types, Some(&subtypes))
        });
    }
    if !tls_configured {
        return Err(SaslError::TlsNotConfigured);
    }
    match server::send_subtype(io, Subtype::X509Sasl)? {
        SUBTYPE_ACK_OK => Ok(()),
        ack => Err(SaslError::Protocol(format!(
            "the server did not accept VeNCrypt subtype X509SASL(263) (ack {ack})"
        ))),
    }
}

/// The first configured mechanism that the server offers and the route allows: without TLS
/// only one with a confidentiality layer (GSSAPI); SCRAM needs the token's username and
/// password.
pub fn choose_mechanism(
    offered: &[String],
    allowed: &[Mechanism],
    route: Route,
    credentials: &Credentials,
) -> Result<Mechanism, SaslError> {
    let mut notes = Vec::new();
    for &m in allowed {
        if !offered.iter().any(|o| o == m.name()) {
            continue;
        }
        if matches!(route, Route::PlainSasl(_)) && !m.has_confidentiality_layer() {
            notes.push(format!(
                "{m} gives no security layer, so it is used only inside TLS"
            ));
            continue;
        }
        if m == Mechanism::ScramSha256
            && (credentials.username.is_none() || credentials.password.is_none())
        {
            notes.push(format!(
                "{m} needs a username and a password in the console's token"
            ));
            continue;
        }
        return Ok(m);
    }
    let note = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    Err(SaslError::NoMechanism {
        route: route.describe(),
        offered: offered.to_vec(),
        allowed: allowed.iter().map(|m| m.name().to_owned()).collect(),
        note,
    })
}

/// A cyrus-sasl failure as the error it means for `mechanism`.
fn mechanism_error(
    e: CyrusError,
    mechanism: Mechanism,
    options: &SaslOptions,
    host: &str,
) -> SaslError {
    match mechanism {
        Mechanism::Gssapi => SaslError::Kerberos {
            service: options.service.clone(),
            host: host.to_owned(),
            source: e,
        },
        m => SaslError::Mechanism {
            mechanism: m.name(),
            source: e,
        },
    }
}

/// Step 3: the SASL exchange, the SSF check and the SecurityResult, on `io` (the plain socket
/// for type 20, TLS for X509SASL). Returns the client (for the security layer) and its SSF.
pub fn authenticate(
    io: &mut (impl Read + Write),
    route: Route,
    options: &SaslOptions,
    session: &ConsoleRequest<'_>,
    external_ssf: u32,
) -> Result<(SaslClient, Mechanism, u32), SaslError> {
    let id = session.session_id;
    let offered = read_mechlist(io)?;
    let credentials = Credentials {
        username: session.username.map(str::to_owned),
        password: session.password.map(str::to_owned),
    };
    let chosen = choose_mechanism(&offered, &options.mechanisms, route, &credentials);
    log::debug!(
        "session {id}: the server offers SASL mechanisms [{}] {}; chose {}",
        offered.join(", "),
        route.describe(),
        chosen.as_ref().map_or("none", |m| m.name())
    );
    let mechanism = chosen?;
    let security = match route {
        Route::PlainSasl(_) => Security::Layer { min_ssf: MIN_SSF },
        Route::X509Sasl(_) => Security::InsideTls { external_ssf },
    };
    let host = session.hypervisor;
    let fail = |e| mechanism_error(e, mechanism, options, host);
    let mut client =
        SaslClient::new(&options.service, host, security, credentials).map_err(fail)?;
    let first = client.start(mechanism.name()).map_err(fail)?;
    let closed = |e: SaslError| match e {
        SaslError::Io(_) => SaslError::ClosedDuringAuth {
            mechanism: mechanism.name(),
        },
        e => e,
    };
    write_start(io, mechanism.name(), first.data.as_deref())?;
    let mut local_done = first.done;
    let mut reply = read_reply(io).map_err(|e| closed(e.into()))?;
    // The client steps until both sides are complete: even when the server says it is done,
    // the client checks the server's last data (mutual authentication).
    while !(reply.complete && local_done) {
        let step = client.step(reply.data.as_deref()).map_err(fail)?;
        local_done = step.done;
        if reply.complete {
            if !local_done {
                return Err(SaslError::Protocol(format!(
                    "the server ended SASL {mechanism} before the proxy's side was complete"
                )));
            }
            break;
        }
        write_step(io, step.data.as_deref())?;
        reply = read_reply(io).map_err(|e| closed(e.into()))?;
    }
    let ssf = client.ssf().map_err(fail)?;
    log::debug!("session {id}: SASL {mechanism} complete, SSF {ssf}");
    if matches!(route, Route::PlainSasl(_)) && ssf < MIN_SSF {
        return Err(SaslError::SsfTooLow {
            mechanism: mechanism.name(),
            ssf,
            min: MIN_SSF,
        });
    }
    let result = read_u32(io).map_err(|e| closed(e.into()))?;
    if result != SECURITY_RESULT_OK {
        let reason = if route.version() == RfbVersion::V3_8 {
            read_reason(io)?
        } else {
            format!("RFB {} carries no reason", route.version())
        };
        return Err(SaslError::ServerRejected {
            mechanism: mechanism.name(),
            reason,
        });
    }
    Ok((client, mechanism, ssf))
}

/// Runs the whole hypervisor side on `socket` until `deadline`.
pub fn run(
    options: &SaslOptions,
    tls: Option<&TlsClient>,
    session: &ConsoleRequest<'_>,
    mut socket: ConsoleSocket,
    deadline: Deadline,
) -> Result<Established, SaslError> {
    let mut io = DeadlineIo::new(&mut socket, deadline);
    let route = choose_route(&mut io, tls.is_some())?;
    match (route, tls) {
        (Route::PlainSasl(_), _) => {
            let (client, mechanism, ssf) = authenticate(&mut io, route, options, session, 0)?;
            let channel = SaslChannel::new(client, socket)?;
            Ok(Established {
                channel: Box::new(channel),
                route,
                mechanism,
                ssf,
            })
        }
        (Route::X509Sasl(_), Some(tls)) => {
            let mut channel = tls.connect(session.hypervisor, socket, deadline)?;
            // The cipher's key length, as QEMU tells its own SASL side.
            let external_ssf = channel
                .connection()
                .negotiated_cipher_suite()
                .map_or(128, |s| match s.suite() {
                    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 128,
                    _ => 256,
                });
            let (client, mechanism, ssf) = {
                let mut io = BlockingTls::new(&mut channel, deadline);
                authenticate(&mut io, route, options, session, external_ssf)?
            };
            // No security layer inside TLS (max SSF 0): the client is no longer needed.
            drop(client);
            Ok(Established {
                channel: Box::new(channel),
                route,
                mechanism,
                ssf,
            })
        }
        (Route::X509Sasl(_), None) => Err(SaslError::TlsNotConfigured),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consolegate_rfb::script::script;

    #[test]
    fn routes() {
        let mut s = script(b"RFB 003.008\n\x01\x14");
        assert_eq!(
            choose_route(&mut s, false).unwrap(),
            Route::PlainSasl(RfbVersion::V3_8)
        );
        assert_eq!(s.output, b"RFB 003.008\n\x14");
        let mut s = script(b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x07\x01");
        assert_eq!(
            choose_route(&mut s, true).unwrap(),
            Route::X509Sasl(RfbVersion::V3_8)
        );
        assert_eq!(s.output, b"RFB 003.008\n\x13\x00\x02\x00\x00\x01\x07");
        let e = choose_route(
            &mut script(b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x07"),
            false,
        )
        .unwrap_err();
        assert!(matches!(e, SaslError::TlsNotConfigured), "{e}");
        let e = choose_route(
            &mut script(b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x08"),
            true,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("anonymous TLS ([TLSSASL(264)])"),
            "{e}"
        );
        let e = choose_route(&mut script(b"RFB 003.008\n\x01\x01"), true).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "the VNC server offers no SASL the proxy can use (security types [None(1)])"
            ),
            "{e}"
        );
        let mut s = script(b"RFB 003.003\n\0\0\0\x14");
        assert_eq!(
            choose_route(&mut s, false).unwrap(),
            Route::PlainSasl(RfbVersion::V3_3)
        );
        assert_eq!(s.output, b"RFB 003.003\n");
        let e = choose_route(&mut script(b"SSH-2.0-OpenS"), false).unwrap_err();
        assert!(matches!(e, SaslError::NotRfb { .. }), "{e}");
    }

    #[test]
    fn mechanisms_follow_the_operators_order_and_the_route() {
        let offered = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let both = [Mechanism::Gssapi, Mechanism::ScramSha256];
        let scram_first = [Mechanism::ScramSha256, Mechanism::Gssapi];
        let creds = Credentials {
            username: Some("u".into()),
            password: Some("p".into()),
        };
        let none = Credentials::default();
        let plain = Route::PlainSasl(RfbVersion::V3_8);
        let tls = Route::X509Sasl(RfbVersion::V3_8);
        let all = offered(&["SCRAM-SHA-256", "GSSAPI"]);
        assert_eq!(
            choose_mechanism(&all, &both, tls, &creds).unwrap(),
            Mechanism::Gssapi
        );
        assert_eq!(
            choose_mechanism(&all, &scram_first, tls, &creds).unwrap(),
            Mechanism::ScramSha256
        );
        assert_eq!(
            choose_mechanism(&all, &scram_first, plain, &creds).unwrap(),
            Mechanism::Gssapi
        );
        assert_eq!(
            choose_mechanism(&all, &scram_first, tls, &none).unwrap(),
            Mechanism::Gssapi
        );
        let e = choose_mechanism(&offered(&["SCRAM-SHA-256"]), &both, plain, &creds).unwrap_err();
        assert!(
            e.to_string()
                .contains("SCRAM-SHA-256 gives no security layer"),
            "{e}"
        );
        let e =
            choose_mechanism(&offered(&["PLAIN", "DIGEST-MD5"]), &both, tls, &creds).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no acceptable SASL mechanism inside VeNCrypt X509SASL: the server offers [PLAIN, \
             DIGEST-MD5], mechanisms allows [GSSAPI, SCRAM-SHA-256]"
        );
    }
}
