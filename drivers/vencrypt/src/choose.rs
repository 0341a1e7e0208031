//! [`choose_subtype`]: which VeNCrypt subtype to use, from what the server offers, the
//! configured preference and the session's credentials. Pure, so it is tested against a table.

use crate::error::VencryptError;
use consolegate_rfb::Subtype;

/// Which credentials the session has (from the token source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// A username is set.
    pub username: bool,
    /// A password is set.
    pub password: bool,
}

/// What a subtype needs from the session, or `None` if it needs nothing.
fn needs(subtype: Subtype, creds: Credentials) -> Option<&'static str> {
    match subtype {
        Subtype::X509Vnc if !creds.password => Some("X509Vnc needs a password"),
        Subtype::X509Plain if !(creds.username && creds.password) => {
            Some("X509Plain needs a username and a password")
        }
        _ => None,
    }
}

/// The first subtype of `preference` that the server offers and the session can satisfy
/// (X509Vnc needs a password, X509Plain a username and a password, X509None nothing). The
/// server's order does not matter. Only X.509 subtypes are ever chosen: anonymous TLS, SASL,
/// cleartext Plain and plain RFB types in the list are ignored.
pub fn choose_subtype(
    offered: &[Subtype],
    preference: &[Subtype],
    creds: Credentials,
) -> Result<Subtype, VencryptError> {
    let mut missing_credentials = Vec::new();
    for &want in preference.iter().filter(|s| s.is_x509()) {
        if !offered.contains(&want) {
            continue;
        }
        match needs(want, creds) {
            None => return Ok(want),
            Some(need) => missing_credentials.push(need.to_owned()),
        }
    }
    let any_x509 = offered.iter().any(|s| s.is_x509());
    if !any_x509 && offered.iter().any(|s| s.is_anonymous_tls()) {
        return Err(VencryptError::AnonymousTlsRefused {
            offered: offered.to_vec(),
        });
    }
    Err(VencryptError::NoAcceptableSubtype {
        offered: offered.to_vec(),
        preference: preference.to_vec(),
        missing_credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subtype::*;

    const NONE: Credentials = Credentials {
        username: false,
        password: false,
    };
    const PW: Credentials = Credentials {
        username: false,
        password: true,
    };
    const USER_PW: Credentials = Credentials {
        username: true,
        password: true,
    };
    const USER: Credentials = Credentials {
        username: true,
        password: false,
    };
    const DEFAULT: &[Subtype] = &[X509Vnc, X509None, X509Plain];
    const XVNC: &[Subtype] = &[X509Plain, X509Vnc, X509None, TlsVnc, Other(2)];

    /// Offered, preference, credentials, and the choice or a piece of the error message.
    type Case = (
        &'static [Subtype],
        &'static [Subtype],
        Credentials,
        Result<Subtype, &'static str>,
    );

    #[test]
    fn table() {
        let ok = |s| Ok::<Subtype, &str>(s);
        let cases: &[Case] = &[
            // QEMU offers exactly one subtype.
            (&[X509None], DEFAULT, NONE, ok(X509None)),
            (&[X509None], DEFAULT, PW, ok(X509None)),
            (&[X509Vnc], DEFAULT, PW, ok(X509Vnc)),
            (&[X509Vnc], DEFAULT, NONE, Err("X509Vnc needs a password")),
            // Xvnc: our preference order wins over the server's.
            (XVNC, DEFAULT, PW, ok(X509Vnc)),
            (XVNC, DEFAULT, NONE, ok(X509None)),
            (XVNC, &[X509Plain, X509Vnc], USER_PW, ok(X509Plain)),
            (XVNC, &[X509Plain, X509Vnc], PW, ok(X509Vnc)),
            (
                XVNC,
                &[X509Plain],
                USER,
                Err("X509Plain needs a username and a password"),
            ),
            // Not in the preference.
            (
                &[X509Plain],
                &[X509None, X509Vnc],
                USER_PW,
                Err("vencrypt_subtypes allows"),
            ),
            // Never chosen, even if configured: anonymous TLS, SASL, cleartext.
            (&[TlsNone, TlsVnc], DEFAULT, PW, Err("only anonymous TLS")),
            (&[TlsNone], &[TlsNone], PW, Err("only anonymous TLS")),
            (&[X509Sasl, TlsSasl], DEFAULT, USER_PW, Err("no acceptable")),
            (&[Plain, Other(2)], DEFAULT, USER_PW, Err("no acceptable")),
            (&[], DEFAULT, USER_PW, Err("the server offers []")),
        ];
        for (offered, prefs, creds, want) in cases {
            let got = choose_subtype(offered, prefs, *creds).map_err(|e| e.to_string());
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{offered:?} {prefs:?} {creds:?}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{offered:?}: {g:?} lacks {w:?}"),
                _ => panic!("{offered:?} {prefs:?} {creds:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn anonymous_only_is_its_own_error() {
        let e = choose_subtype(&[TlsVnc, TlsNone], DEFAULT, PW).unwrap_err();
        assert!(
            matches!(e, VencryptError::AnonymousTlsRefused { .. }),
            "{e}"
        );
    }
}
