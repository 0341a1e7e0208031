//! The VeNCrypt driver's hypervisor side (`server_handshake`), step by step in the order
//! `server_handshake::run` takes them, over an in-memory server that sends the fuzzer's bytes:
//! ProtocolVersion, security types, VeNCrypt version, subtypes, the subtype choice and its
//! ack, then (as if inside TLS, which rustls parses) the subtype's authentication and the
//! SecurityResult. The TLS handshake itself is left out: those bytes are rustls's to parse.
//!
//! Input: a byte picking how many bytes each read returns (1-16), a byte of session flags
//! (bit 0: username, bit 1: password, bits 2-3: subtype preference), then the server's bytes.
//! Properties: each step sends exactly its protocol answer and nothing after a refusal; only
//! an X.509 subtype that the server offered, the preference lists and the credentials satisfy
//! is chosen; X509Vnc answers the challenge with the VNC response, X509Plain sends the
//! length-prefixed credentials; every error's text, and what the browser is told, has no
//! control characters and a bounded length.
#![no_main]

use std::time::Duration;

use consolegate_driver_api::{ConsoleRequest, Kind};
use consolegate_fuzz::{check_error_texts, Script};
use consolegate_rfb::security::MAX_SUBTYPES;
use consolegate_rfb::{RfbVersion, Subtype};
use consolegate_vencrypt::choose::{choose_subtype, Credentials};
use consolegate_vencrypt::server_handshake::{
    authenticate, expect_security_result, expect_security_types, expect_subtype_ack,
    expect_subtypes, expect_vencrypt_version, expect_version,
};
use consolegate_vencrypt::{vnc_auth, VencryptError};
use libfuzzer_sys::fuzz_target;

const PREFERENCES: [&[Subtype]; 4] = [
    &[Subtype::X509Vnc, Subtype::X509None, Subtype::X509Plain],
    &[Subtype::X509Plain, Subtype::X509Vnc],
    &[Subtype::X509None],
    &[Subtype::TlsVnc, Subtype::X509Vnc, Subtype::Plain],
];

fuzz_target!(|data: &[u8]| {
    let [chunk, flags, server @ ..] = data else {
        return;
    };
    let session = ConsoleRequest {
        kind: Kind::Vnc,
        hypervisor: "hv1.example",
        port: 5901,
        username: (flags & 1 == 1).then_some("proxy"),
        password: (flags & 2 == 2).then_some("s3cret"),
        session_id: 1,
        handshake_timeout: Duration::from_secs(1),
    };
    let preference = PREFERENCES[usize::from(flags >> 2 & 3)];
    let mut io = Script::new(server, usize::from(chunk % 16) + 1);
    if let Err(e) = steps(&mut io, &session, preference) {
        check_error(&e);
    }
});

fn steps(
    io: &mut Script<'_>,
    session: &ConsoleRequest<'_>,
    preference: &[Subtype],
) -> Result<(), VencryptError> {
    let version = sent(io, |io| expect_version(io), |v, out| out == v.wire())?;
    sent(
        io,
        |io| expect_security_types(io, version),
        |(), out| match version {
            RfbVersion::V3_3 => out.is_empty(),
            _ => out == [19],
        },
    )?;
    sent(
        io,
        |io| expect_vencrypt_version(io),
        |(), out| out == [0, 2],
    )?;
    let offered = sent(
        io,
        |io| expect_subtypes(io),
        |s, out| s.len() <= MAX_SUBTYPES && out.is_empty(),
    )?;
    let creds = Credentials {
        username: session.username.is_some(),
        password: session.password.is_some(),
    };
    let subtype = choose_subtype(&offered, preference, creds)?;
    assert!(subtype.is_x509() && offered.contains(&subtype) && preference.contains(&subtype));
    match subtype {
        Subtype::X509Vnc => assert!(creds.password),
        Subtype::X509Plain => assert!(creds.username && creds.password),
        _ => {}
    }
    sent(
        io,
        |io| expect_subtype_ack(io, subtype),
        |(), out| out == subtype.wire().to_be_bytes(),
    )?;
    let challenge: Option<[u8; 16]> = io.unread().get(..16).map(|c| c.try_into().unwrap());
    sent(
        io,
        |io| authenticate(io, subtype, session),
        |(), out| match subtype {
            Subtype::X509Vnc => {
                out == vnc_auth::response(session.password.unwrap(), &challenge.unwrap())
            }
            Subtype::X509Plain => out == b"\0\0\0\x05\0\0\0\x06proxys3cret",
            _ => out.is_empty(),
        },
    )?;
    sent(
        io,
        |io| expect_security_result(io, version),
        |(), out| out.is_empty(),
    )
}

/// Runs one step; on success, `answer` must accept what the step wrote. A failing step may
/// have written its answer before it read the server's refusal, but no more.
fn sent<T>(
    io: &mut Script<'_>,
    step: impl FnOnce(&mut Script<'_>) -> Result<T, VencryptError>,
    answer: impl FnOnce(&T, &[u8]) -> bool,
) -> Result<T, VencryptError> {
    let before = io.output.len();
    let result = step(io);
    let out = io.output[before..].to_vec();
    match &result {
        Ok(value) => assert!(answer(value, &out), "wrong answer {out:?}"),
        Err(_) => assert!(
            out.len() <= 12,
            "{} bytes sent by a failing step",
            out.len()
        ),
    }
    result
}

fn check_error(e: &VencryptError) {
    check_error_texts(e.to_string(), e.client_reason(7));
}
