//! Console targets as token sources write them (`token::parse_target`): `host:port`,
//! `[v6]:port`, `vnc://user:password@host:port`, `spice://…`, `serial://…`.
//!
//! Input: the target text. Properties: an accepted target has a host and a port other than 0;
//! its credentials are the URL's userinfo percent-decoded as RFC 3986 says (a `+` stays a
//! `+`, a `&` does not cut the value), and credentials that are not UTF-8 once decoded are
//! refused; it round-trips (written back as a URL, its credentials percent-encoded as RFC 3986
//! userinfo, it parses to the same console); an error never repeats the password.
#![no_main]

use consolegate::token::{parse_target, Console, Kind};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// What RFC 3986 userinfo cannot hold unencoded: everything but unreserved characters,
/// sub-delims (`!$&'()*+,;=`) and `:` (which separates the password, so it is encoded too).
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn scheme(kind: Kind) -> &'static str {
    match kind {
        Kind::Vnc => "vnc",
        Kind::Spice => "spice",
        Kind::Serial => "serial",
    }
}

/// The console as a target URL.
fn url(c: &Console) -> String {
    let mut userinfo = String::new();
    if let Some(u) = &c.username {
        userinfo.push_str(&utf8_percent_encode(u, USERINFO).to_string());
    }
    if let Some(p) = &c.password {
        userinfo.push(':');
        userinfo.push_str(&utf8_percent_encode(p, USERINFO).to_string());
    }
    if !userinfo.is_empty() {
        userinfo.push('@');
    }
    format!("{}://{userinfo}{}", scheme(c.kind), c.address())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_target(text) {
        Ok(console) => {
            assert!(
                !console.hypervisor.is_empty(),
                "{text:?} gave an empty host"
            );
            assert_ne!(console.port, 0, "{text:?} gave port 0");
            if !text.contains("://") {
                // A bare host:port is a VNC console named as written.
                assert_eq!(console.kind, Kind::Vnc);
                let written = format!("[{}]:{}", console.hypervisor, console.port);
                let again = parse_target(&written).expect("bare target round trip");
                assert_eq!(again, console, "{text:?}");
            }
            // A bare host may hold characters a URL host cannot; URLs round-trip as URLs.
            if text.contains("://") {
                // Credentials are RFC 3986 userinfo: percent-decoded, `+` and `&` as written.
                let parsed = url::Url::parse(text.trim()).expect("an accepted URL target");
                if let Some(p) = parsed.password() {
                    let want = percent_decode_str(p).decode_utf8().expect("UTF-8 password");
                    assert_eq!(console.password.as_deref(), Some(&*want), "{text:?}");
                }
                if !parsed.username().is_empty() {
                    let want = percent_decode_str(parsed.username()).decode_utf8().unwrap();
                    assert_eq!(console.username.as_deref(), Some(&*want), "{text:?}");
                }
                let written = url(&console);
                let again = parse_target(&written)
                    .unwrap_or_else(|e| panic!("{text:?} -> {written:?}: {e}"));
                assert_eq!(again, console, "{text:?} -> {written:?}");
            }
        }
        Err(e) => {
            // The error may contain the password's text only by chance: then it is the same
            // with another password of the same length.
            if let Some(password) = password_in(text) {
                if e.contains(password) {
                    let other = "x".repeat(password.len());
                    // `password` is a slice of `text`: replace it where it is.
                    let start = password.as_ptr() as usize - text.as_ptr() as usize;
                    let end = start + password.len();
                    let changed = format!("{}{other}{}", &text[..start], &text[end..]);
                    let again = parse_target(&changed);
                    assert_eq!(
                        again.err().as_ref(),
                        Some(&e),
                        "error {e:?} repeats the password"
                    );
                }
            }
        }
    }
});

/// The password of a `scheme://user:password@` text, if it has one worth looking for.
fn password_in(text: &str) -> Option<&str> {
    let rest = text.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (password.len() >= 4).then_some(password)
}
