//! The handshake towards the hypervisor, one function per step, in wire order:
//!
//! 1. [`expect_version`]: the server's ProtocolVersion; we answer 3.8 (or 3.7/3.3 if that is
//!    all it speaks).
//! 2. [`expect_security_types`]: VeNCrypt (19) must be offered; nothing else is accepted, so
//!    there is never a cleartext fallback.
//! 3. [`expect_vencrypt_version`]: 0.2 only.
//! 4. [`expect_subtypes`] and [`choose_subtype`]: an X.509 subtype the session can satisfy.
//! 5. [`expect_subtype_ack`]: the server accepts it.
//! 6. TLS ([`TlsClient::connect`]): the server's certificate against `ca_certificate`, and
//!    ours presented.
//! 7. [`authenticate`] inside TLS: nothing (X509None), the VNC challenge (X509Vnc), or the
//!    username and password (X509Plain).
//! 8. [`expect_security_result`].
//!
//! Every read is bounded by the session deadline through the socket's timeouts, and every
//! length field by a `MAX_*` of [`consolegate_rfb::security`].

use std::io::{Read, Write};

use consolegate_driver_api::ConsoleRequest;
use consolegate_tls_client::{
    BlockingTls, ConsoleTransport, Deadline, DeadlineIo, TlsChannel, TlsClient,
};

use consolegate_rfb::security::{SECURITY_RESULT_OK, SUBTYPE_ACK_OK, VNC_CHALLENGE_LEN};
use consolegate_rfb::server;
use consolegate_rfb::wire::{read_array, read_reason, read_u32, write_all};
use consolegate_rfb::{list, RfbVersion, SecurityType, Subtype};

use crate::choose::{choose_subtype, Credentials};
use crate::error::{InPhase, Phase, VencryptError};
use crate::vnc_auth;

/// Longest username or password sent for X509Plain, in bytes.
pub const MAX_PLAIN_CREDENTIAL_LEN: usize = 1024;

/// The hypervisor side once authenticated: the TLS channel positioned right after the
/// SecurityResult (ClientInit comes next), and what was negotiated.
#[derive(Debug)]
pub struct Established<S: ConsoleTransport> {
    /// The TLS channel to relay through.
    pub channel: TlsChannel<S>,
    /// The RFB version spoken with the server.
    pub version: RfbVersion,
    /// The VeNCrypt subtype used.
    pub subtype: Subtype,
}

/// Runs the whole hypervisor-side handshake on `socket` (blocking, until `deadline`).
pub fn run<S: ConsoleTransport>(
    tls: &TlsClient,
    preference: &[Subtype],
    session: &ConsoleRequest<'_>,
    mut socket: S,
    deadline: Deadline,
) -> Result<Established<S>, VencryptError> {
    let id = session.session_id;
    let mut io = DeadlineIo::new(&mut socket, deadline);
    let version = expect_version(&mut io)?;
    expect_security_types(&mut io, version)?;
    expect_vencrypt_version(&mut io)?;
    let offered = expect_subtypes(&mut io)?;
    let creds = Credentials {
        username: session.username.is_some(),
        password: session.password.is_some(),
    };
    let subtype = choose_subtype(&offered, preference, creds)?;
    log::debug!(
        "session {id}: server offers subtypes {}; chose {subtype}",
        list(&offered)
    );
    expect_subtype_ack(&mut io, subtype)?;

    let mut channel = tls.connect(session.hypervisor, socket, deadline)?;
    let conn = channel.connection();
    log::debug!(
        "session {id}: TLS up ({:?}, {:?})",
        conn.protocol_version(),
        conn.negotiated_cipher_suite().map(|s| s.suite())
    );
    let mut io = BlockingTls::new(&mut channel, deadline);
    authenticate(&mut io, subtype, session)?;
    expect_security_result(&mut io, version)?;
    Ok(Established {
        channel,
        version,
        subtype,
    })
}

/// Step 1: reads the server's ProtocolVersion and answers with the version to speak.
pub fn expect_version(io: &mut (impl Read + Write)) -> Result<RfbVersion, VencryptError> {
    server::exchange_version(io).in_phase(Phase::ServerVersion)
}

/// Step 2: reads the security types (3.7+: a list, 3.3: the server's pick) and selects
/// VeNCrypt. Anything without VeNCrypt is refused; a zero-count list carries the server's
/// reason.
pub fn expect_security_types(
    io: &mut (impl Read + Write),
    version: RfbVersion,
) -> Result<(), VencryptError> {
    let offered = server::read_security_types(io, version).in_phase(Phase::SecurityTypes)?;
    if !offered.contains(&SecurityType::VeNCrypt) {
        if version == RfbVersion::V3_3 {
            log::info!("RFB 3.3 server picked security type {offered:?}; VeNCrypt needs 3.7+");
        }
        return Err(VencryptError::NoVencryptOffered { offered });
    }
    if version == RfbVersion::V3_3 {
        // The server picked VeNCrypt itself: the client sends nothing.
        return Ok(());
    }
    write_all(io, &[SecurityType::VeNCrypt.wire()]).in_phase(Phase::SecurityTypes)
}

/// Step 3: VeNCrypt version 0.2, which the server must support.
pub fn expect_vencrypt_version(io: &mut (impl Read + Write)) -> Result<(), VencryptError> {
    server::negotiate_vencrypt_version(io).in_phase(Phase::VencryptVersion)
}

/// Step 4: the subtype list (u8 count, u32 each).
pub fn expect_subtypes(io: &mut impl Read) -> Result<Vec<Subtype>, VencryptError> {
    server::read_subtypes(io).in_phase(Phase::Subtypes)
}

/// Step 5: sends the chosen subtype and reads the server's acknowledgement.
pub fn expect_subtype_ack(
    io: &mut (impl Read + Write),
    subtype: Subtype,
) -> Result<(), VencryptError> {
    match server::send_subtype(io, subtype).in_phase(Phase::SubtypeAck)? {
        SUBTYPE_ACK_OK => Ok(()),
        ack => Err(VencryptError::SubtypeRefused { subtype, ack }),
    }
}

/// Step 7, inside TLS: the subtype's own authentication.
pub fn authenticate(
    io: &mut (impl Read + Write),
    subtype: Subtype,
    session: &ConsoleRequest<'_>,
) -> Result<(), VencryptError> {
    // choose_subtype only picks X509Vnc with a password and X509Plain with a username and a
    // password, so the empty defaults below are never used.
    let password = session.password.unwrap_or_default();
    match subtype {
        Subtype::X509Vnc => {
            let challenge: [u8; VNC_CHALLENGE_LEN] =
                read_array(io).in_phase(Phase::VncChallenge)?;
            write_all(io, &vnc_auth::response(password, &challenge)).in_phase(Phase::VncChallenge)
        }
        Subtype::X509Plain => {
            let user = session.username.unwrap_or_default().as_bytes();
            let pass = password.as_bytes();
            for (what, field) in [("X509Plain username", user), ("X509Plain password", pass)] {
                if field.len() > MAX_PLAIN_CREDENTIAL_LEN {
                    return Err(VencryptError::LengthTooLarge {
                        what,
                        len: field.len() as u64,
                        max: MAX_PLAIN_CREDENTIAL_LEN,
                    });
                }
            }
            // Both lengths are at most MAX_PLAIN_CREDENTIAL_LEN, so they fit in a u32.
            let mut msg = Vec::with_capacity(8 + user.len() + pass.len());
            msg.extend_from_slice(&(user.len() as u32).to_be_bytes());
            msg.extend_from_slice(&(pass.len() as u32).to_be_bytes());
            msg.extend_from_slice(user);
            msg.extend_from_slice(pass);
            let sent = write_all(io, &msg).in_phase(Phase::PlainCredentials);
            msg.fill(0);
            sent
        }
        _ => Ok(()),
    }
}

/// Step 8: the SecurityResult; a 3.8 failure carries the server's reason.
pub fn expect_security_result(
    io: &mut impl Read,
    version: RfbVersion,
) -> Result<(), VencryptError> {
    match read_u32(io).in_phase(Phase::SecurityResult)? {
        SECURITY_RESULT_OK => Ok(()),
        code if version == RfbVersion::V3_8 => {
            let reason = read_reason(io).in_phase(Phase::FailureReason)?;
            let reason = if reason.is_empty() {
                format!("failure {code}, no reason given")
            } else {
                reason
            };
            Err(VencryptError::ServerRejected { reason })
        }
        code => Err(VencryptError::ServerRejected {
            reason: format!("failure {code} (RFB {version} carries no reason)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consolegate_rfb::script::script;

    #[test]
    fn version_answers() {
        for (server, answer) in [
            (&b"RFB 003.008\n"[..], &b"RFB 003.008\n"[..]),
            (b"RFB 003.889\n", b"RFB 003.008\n"),
            (b"RFB 003.007\n", b"RFB 003.007\n"),
            (b"RFB 003.003\n", b"RFB 003.003\n"),
        ] {
            let mut s = script(server);
            expect_version(&mut s).unwrap();
            assert_eq!(s.output, answer);
        }
        let e = expect_version(&mut script(b"SSH-2.0-Open")).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"SSH-2.0-Open\" is not an RFB ProtocolVersion"),
            "{e}"
        );
        let e = expect_version(&mut script(b"RFB 003.002\n")).unwrap_err();
        assert!(matches!(e, VencryptError::VersionRejected { .. }), "{e}");
        let e = expect_version(&mut script(b"RFB 00")).unwrap_err();
        assert!(
            matches!(
                e,
                VencryptError::UnexpectedEof {
                    phase: Phase::ServerVersion
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn security_types() {
        let mut s = script(&[3, 1, 2, 19]);
        expect_security_types(&mut s, RfbVersion::V3_8).unwrap();
        assert_eq!(s.output, [19]);

        let mut s = script(&[2, 1, 2]);
        let e = expect_security_types(&mut s, RfbVersion::V3_8).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("(it offered [None(1), VncAuth(2)])"),
            "{e}"
        );
        assert!(s.output.is_empty(), "nothing may be sent after a refusal");

        let mut s = script(b"\0\0\0\0\0\0\0\x05busy!");
        let e = expect_security_types(&mut s, RfbVersion::V3_3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the hypervisor refused the connection: busy!"
        );
        let e =
            expect_security_types(&mut script(&[0, 0, 0x10, 0, 0]), RfbVersion::V3_7).unwrap_err();
        assert!(
            matches!(e, VencryptError::LengthTooLarge { len: 0x100000, .. }),
            "{e}"
        );
        let e = expect_security_types(&mut script(&[0, 0, 0, 2]), RfbVersion::V3_3).unwrap_err();
        assert!(matches!(e, VencryptError::NoVencryptOffered { .. }), "{e}");
        let mut s = script(&[0, 0, 0, 19]);
        expect_security_types(&mut s, RfbVersion::V3_3).unwrap();
        assert!(
            s.output.is_empty(),
            "RFB 3.3: the server picks, the client sends nothing"
        );
        let e = expect_security_types(&mut script(&[200]), RfbVersion::V3_8).unwrap_err();
        assert!(
            matches!(e, VencryptError::LengthTooLarge { len: 200, .. }),
            "{e}"
        );
    }

    #[test]
    fn vencrypt_version_and_subtypes() {
        let mut s = script(&[0, 2, 0]);
        expect_vencrypt_version(&mut s).unwrap();
        assert_eq!(s.output, [0, 2]);
        let e = expect_vencrypt_version(&mut script(&[0, 1])).unwrap_err();
        assert!(
            e.to_string().contains("VeNCrypt 0.1; 0.2 is required"),
            "{e}"
        );
        let e = expect_vencrypt_version(&mut script(&[0, 3, 1])).unwrap_err();
        assert!(
            e.to_string().contains("refused VeNCrypt 0.2 (status 1)"),
            "{e}"
        );

        let xvnc = [
            5, 0, 0, 1, 6, 0, 0, 1, 5, 0, 0, 1, 4, 0, 0, 1, 2, 0, 0, 0, 2,
        ];
        let subtypes = expect_subtypes(&mut script(&xvnc)).unwrap();
        assert_eq!(subtypes[0], Subtype::X509Plain);
        assert_eq!(subtypes[4], Subtype::Other(2));
        let e = expect_subtypes(&mut script(&[255])).unwrap_err();
        assert!(e
            .to_string()
            .contains("VeNCrypt subtype list length 255 exceeds the limit of 32"));
    }

    #[test]
    fn subtype_ack_and_result() {
        let mut s = script(&[1]);
        expect_subtype_ack(&mut s, Subtype::X509None).unwrap();
        assert_eq!(s.output, [0, 0, 1, 4]);
        let e = expect_subtype_ack(&mut script(&[0]), Subtype::X509None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server did not accept VeNCrypt subtype X509None(260) (ack 0)"
        );

        expect_security_result(&mut script(&[0, 0, 0, 0]), RfbVersion::V3_8).unwrap();
        let qemu = b"\0\0\0\x01\0\0\0\x16Authentication failed\0";
        let e = expect_security_result(&mut script(qemu), RfbVersion::V3_8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the hypervisor rejected the credentials: Authentication failed"
        );
        let e = expect_security_result(&mut script(&[0, 0, 0, 1]), RfbVersion::V3_7).unwrap_err();
        assert!(e.to_string().contains("RFB 3.7 carries no reason"), "{e}");
        let e = expect_security_result(&mut script(&[0, 0, 0, 1, 0xff, 0, 0, 0]), RfbVersion::V3_8)
            .unwrap_err();
        assert!(
            matches!(
                e,
                VencryptError::LengthTooLarge {
                    what: "failure reason",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn plain_credentials_layout() {
        let session = ConsoleRequest {
            kind: consolegate_driver_api::Kind::Vnc,
            hypervisor: "h",
            port: 1,
            username: Some("proxy"),
            password: Some("pw"),
            session_id: 1,
            handshake_timeout: std::time::Duration::from_secs(1),
        };
        let mut s = script(&[]);
        authenticate(&mut s, Subtype::X509Plain, &session).unwrap();
        assert_eq!(s.output, b"\0\0\0\x05\0\0\0\x02proxypw");
        let mut s = script(&[0; 16]);
        authenticate(&mut s, Subtype::X509Vnc, &session).unwrap();
        assert_eq!(s.output, vnc_auth::response("pw", &[0; 16]));
    }
}
