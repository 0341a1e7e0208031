//! The `sasl_gssapi` driver's reading of a hypervisor, over an in-memory server that sends the
//! fuzzer's bytes: `handshake::choose_route` (ProtocolVersion, security types, and for
//! VeNCrypt its version, subtypes and ack), then QEMU's SASL messages of `vnc_sasl` (the
//! mechanism list, `choose_mechanism`, and up to four server replies). cyrus-sasl itself is
//! left out: its input is what the server's replies carry, which this target bounds.
//!
//! Input: a byte picking how many bytes each read returns (1-16), a byte of flags (bit 0: TLS
//! configured, bit 1: the token has a username and password, bit 2: SCRAM preferred), then
//! the server's bytes.
//! Properties: the route answers exactly the version and the chosen type (and for X509SASL
//! `0.2` and `263`), and nothing after a refusal beyond that; every mechanism name read is an
//! RFC 4422 name; the mechanism chosen is offered, configured, never SCRAM over plain RFB nor
//! without credentials; replies hold at most `MAX_DATA_LEN` bytes; errors and the browser's
//! reason have no control characters and a bounded length.
#![no_main]

use consolegate_fuzz::{check_error_texts, Script};
use consolegate_rfb::RfbVersion;
use consolegate_sasl_gssapi::cyrus::Credentials;
use consolegate_sasl_gssapi::handshake::{choose_mechanism, choose_route, Route};
use consolegate_sasl_gssapi::vnc_sasl::{
    is_mechanism_name, read_mechlist, read_reply, MAX_DATA_LEN,
};
use consolegate_sasl_gssapi::{Mechanism, SaslError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [chunk, flags, server @ ..] = data else {
        return;
    };
    let mut io = Script::new(server, usize::from(chunk % 16) + 1);
    if let Err(e) = steps(&mut io, *flags) {
        check_error(&e);
    }
});

fn steps(io: &mut Script<'_>, flags: u8) -> Result<(), SaslError> {
    let tls = flags & 1 == 1;
    let result = choose_route(io, tls);
    let out = io.output.clone();
    let route = match result {
        Ok(route) => route,
        Err(e) => {
            // At most the version, the type, VeNCrypt 0.2 and the subtype.
            assert!(out.len() <= 12 + 1 + 2 + 4, "{} bytes sent", out.len());
            return Err(e);
        }
    };
    let (version, rest) = out.split_at(12);
    match route {
        Route::PlainSasl(v) => {
            assert_eq!(version, v.wire());
            let want: &[u8] = if v == RfbVersion::V3_3 { &[] } else { &[20] };
            assert_eq!(rest, want);
        }
        Route::X509Sasl(v) => {
            assert!(tls && v != RfbVersion::V3_3);
            assert_eq!(version, v.wire());
            assert_eq!(rest, [19, 0, 2, 0, 0, 1, 7]);
        }
    }
    let before = io.output.len();
    let offered = read_mechlist(io)?;
    assert!(offered.iter().all(|m| is_mechanism_name(m)), "{offered:?}");
    let credentials = if flags & 2 == 2 {
        Credentials {
            username: Some("proxy".into()),
            password: Some("s3cret".into()),
        }
    } else {
        Credentials::default()
    };
    let allowed: &[Mechanism] = if flags & 4 == 4 {
        &[Mechanism::ScramSha256, Mechanism::Gssapi]
    } else {
        &[Mechanism::Gssapi, Mechanism::ScramSha256]
    };
    let chosen = choose_mechanism(&offered, allowed, route, &credentials)?;
    assert!(offered.iter().any(|o| o == chosen.name()));
    if chosen == Mechanism::ScramSha256 {
        assert!(matches!(route, Route::X509Sasl(_)) && credentials.password.is_some());
    }
    for _ in 0..4 {
        let reply = read_reply(io)?;
        assert!(reply.data.map_or(0, |d| d.len()) < MAX_DATA_LEN);
    }
    assert_eq!(io.output.len(), before, "reading sends nothing");
    Ok(())
}

fn check_error(e: &SaslError) {
    check_error_texts(e.to_string(), e.browser_reason(7));
}
