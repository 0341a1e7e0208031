//! `[console_proxy_sasl]` as a validated [`SaslOptions`], and the [`Mechanism`]s the driver
//! may use. (VeNCrypt X509SASL also reads the shared TLS keys of `[console_proxy_tls]`, through
//! `consolegate_tls_client`.)

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use consolegate_driver_api::Options;

use crate::error::SaslError;

/// The INI section the driver reads.
pub const SECTION: &str = "console_proxy_sasl";
/// The shared TLS section, read for VeNCrypt X509SASL when its `ca_certificate` is set.
pub const TLS_SECTION: &str = "console_proxy_tls";
/// INI key: the mechanisms the driver may use, most preferred first. Default
/// [`DEFAULT_MECHANISMS`].
pub const KEY_MECHANISMS: &str = "mechanisms";
/// INI key: the service name of the VNC server's principal. Default [`DEFAULT_SERVICE`].
pub const KEY_SERVICE: &str = "service";
/// INI key: the client keytab holding the proxy's key (`KRB5_CLIENT_KTNAME`). Optional.
pub const KEY_KEYTAB: &str = "keytab";
/// Every key the section may hold.
pub const KEYS: [&str; 3] = [KEY_MECHANISMS, KEY_SERVICE, KEY_KEYTAB];

/// Keys of the placeholder driver that are gone, with what to do instead.
const RETIRED: [(&str, &str); 2] = [
    (
        "mechanism",
        "use mechanisms = GSSAPI, SCRAM-SHA-256 (a list, most preferred first)",
    ),
    (
        "principal",
        "remove it: the proxy's principal is the one in its keytab (keytab = …)",
    ),
];

/// The mechanisms when none are set.
pub const DEFAULT_MECHANISMS: &str = "GSSAPI, SCRAM-SHA-256";
/// The service when none is set: QEMU registers its SASL service as `vnc`.
pub const DEFAULT_SERVICE: &str = "vnc";
/// Longest service name accepted.
const MAX_NAME_LEN: usize = 256;

/// A SASL mechanism the driver may use. Anything weaker is refused as configuration and never
/// chosen from a server's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Kerberos V5 (RFC 4752), with the proxy's keytab; the only one that gives a security
    /// layer with confidentiality, so the only one allowed over plain RFB type 20.
    Gssapi,
    /// SCRAM-SHA-256 (RFC 7677) with the token's username and password; inside TLS only.
    ScramSha256,
}

impl Mechanism {
    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Gssapi => "GSSAPI",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Whether it can give a security layer with confidentiality (needed without TLS).
    pub fn has_confidentiality_layer(self) -> bool {
        self == Mechanism::Gssapi
    }

    /// The mechanism of a name, case-insensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        [Mechanism::Gssapi, Mechanism::ScramSha256]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Mechanisms refused by name, with the reason.
const WEAK: [(&str, &str); 6] = [
    ("PLAIN", "sends the password itself"),
    ("LOGIN", "sends the password itself"),
    ("DIGEST-MD5", "is obsolete (RFC 6331) and rests on MD5"),
    (
        "CRAM-MD5",
        "rests on MD5 and lets the server store the password",
    ),
    ("ANONYMOUS", "authenticates nobody"),
    ("EXTERNAL", "is not supported by QEMU's VNC server"),
];

/// The validated options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslOptions {
    /// `mechanisms`: most preferred first, each at most once.
    pub mechanisms: Vec<Mechanism>,
    /// `service`: the service part of the VNC server's principal (`vnc/host@REALM`).
    pub service: String,
    /// `keytab`: a readable client keytab (`FILE:` prefix allowed). Defaults to none (the
    /// Kerberos library's default client keytab or credential cache).
    pub keytab: Option<PathBuf>,
}

impl SaslOptions {
    /// Reads and validates `[console_proxy_sasl]`; an absent section gives the defaults.
    pub fn from_options(options: &Options) -> Result<Self, SaslError> {
        if let Some(key) = options.keys(SECTION).find(|k| !KEYS.contains(k)) {
            if let Some((_, instead)) = RETIRED.iter().find(|(old, _)| *old == key) {
                return Err(SaslError::RetiredKey {
                    key: key.to_owned(),
                    instead,
                });
            }
            return Err(SaslError::UnknownKey {
                key: key.to_owned(),
            });
        }
        let get = |key| {
            options
                .get(SECTION, key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let mechanisms = parse_mechanisms(get(KEY_MECHANISMS).unwrap_or(DEFAULT_MECHANISMS))?;
        let service = get(KEY_SERVICE).unwrap_or(DEFAULT_SERVICE).to_owned();
        let service_ok = service.len() <= MAX_NAME_LEN
            && service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !service_ok {
            return Err(SaslError::BadValue {
                key: KEY_SERVICE,
                value: service,
                expected: "a service name such as vnc (letters, digits, '-', '_', '.')",
            });
        }
        let keytab = get(KEY_KEYTAB).map(|v| PathBuf::from(v.strip_prefix("FILE:").unwrap_or(v)));
        if let Some(path) = &keytab {
            check_keytab(path)?;
        }
        Ok(Self {
            mechanisms,
            service,
            keytab,
        })
    }
}

/// Parses `mechanisms`: names separated by commas or spaces, case-insensitive.
pub fn parse_mechanisms(value: &str) -> Result<Vec<Mechanism>, SaslError> {
    let bad = |expected| SaslError::BadValue {
        key: KEY_MECHANISMS,
        value: value.to_owned(),
        expected,
    };
    let mut out = Vec::new();
    for name in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
    {
        if let Some((weak, why)) = WEAK.iter().find(|(w, _)| w.eq_ignore_ascii_case(name)) {
            return Err(SaslError::WeakMechanism {
                mechanism: weak,
                why,
            });
        }
        let mechanism =
            Mechanism::from_name(name).ok_or_else(|| bad("GSSAPI and/or SCRAM-SHA-256"))?;
        if out.contains(&mechanism) {
            return Err(bad("each mechanism at most once"));
        }
        out.push(mechanism);
    }
    if out.is_empty() {
        return Err(bad("at least one of GSSAPI, SCRAM-SHA-256"));
    }
    Ok(out)
}

/// The keytab must be a regular file the proxy's user can open, in the keytab format (its
/// first two bytes are 0x05 0x01 or 0x05 0x02), with at least one entry.
fn check_keytab(path: &Path) -> Result<(), SaslError> {
    use std::io::Read;
    let unusable = |problem: String| SaslError::Keytab {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = File::open(path).map_err(|e| unusable(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| unusable(format!("cannot stat it: {e}")))?;
    if !meta.is_file() {
        return Err(unusable("it is not a regular file".into()));
    }
    let mut head = [0u8; 2];
    match file.read_exact(&mut head) {
        Ok(()) if head == [5, 1] || head == [5, 2] => {}
        Ok(()) => {
            return Err(unusable(
                "it is not a Kerberos keytab (make one with kadmin's ktadd or ktutil)".into(),
            ))
        }
        Err(e) => return Err(unusable(format!("cannot read it: {e}"))),
    }
    if meta.len() <= 2 {
        return Err(unusable("it holds no key".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Result<SaslOptions, String> {
        let entries = pairs
            .iter()
            .map(|(k, v)| (SECTION.to_owned(), k.to_string(), v.to_string()))
            .collect();
        SaslOptions::from_options(&Options::new(entries)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let o = opts(&[]).unwrap();
        assert_eq!(o.mechanisms, [Mechanism::Gssapi, Mechanism::ScramSha256]);
        assert_eq!((o.service.as_str(), o.keytab), ("vnc", None));
    }

    #[test]
    fn mechanisms_keep_the_operators_order() {
        assert_eq!(
            opts(&[("mechanisms", "scram-sha-256 gssapi")])
                .unwrap()
                .mechanisms,
            [Mechanism::ScramSha256, Mechanism::Gssapi]
        );
        for (value, why) in [
            (
                "GSSAPI, PLAIN",
                "PLAIN is refused: it sends the password itself",
            ),
            ("digest-md5", "DIGEST-MD5 is refused"),
            ("CRAM-MD5", "CRAM-MD5 is refused"),
            ("GSS API", "expected GSSAPI and/or SCRAM-SHA-256"),
            ("GSSAPI GSSAPI", "each mechanism at most once"),
            (" , ", "at least one"),
        ] {
            let e = opts(&[("mechanisms", value)]).unwrap_err();
            assert!(e.contains(why), "{value}: {e}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = opts(&[("keytabs", "/x")]).unwrap_err();
        assert!(e.contains("unknown key 'keytabs'"), "{e}");
        assert!(e.contains("mechanisms, service, keytab"), "{e}");
    }

    #[test]
    fn keytab_must_be_a_readable_keytab() {
        let e = opts(&[("keytab", "/nonexistent/proxy.keytab")]).unwrap_err();
        assert!(
            e.contains("keytab = /nonexistent/proxy.keytab: cannot open it"),
            "{e}"
        );
        let e = opts(&[("keytab", "/")]).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let file = std::env::temp_dir().join(format!("sasl-keytab-{}", std::process::id()));
        std::fs::write(&file, b"not a keytab").unwrap();
        let e = opts(&[("keytab", &file.display().to_string())]).unwrap_err();
        assert!(e.contains("not a Kerberos keytab"), "{e}");
        std::fs::write(&file, b"\x05\x02").unwrap();
        let e = opts(&[("keytab", &file.display().to_string())]).unwrap_err();
        assert!(e.contains("holds no key"), "{e}");
        std::fs::write(&file, b"\x05\x02\0\0\0\x40").unwrap();
        let o = opts(&[("keytab", &format!("FILE:{}", file.display()))]).unwrap();
        assert_eq!(o.keytab, Some(file.clone()));
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn the_placeholders_keys_say_what_replaced_them() {
        let e = opts(&[("mechanism", "GSSAPI")]).unwrap_err();
        assert_eq!(
            e,
            "[console_proxy_sasl] mechanism is no longer read: use mechanisms = GSSAPI, \
             SCRAM-SHA-256 (a list, most preferred first)"
        );
        let e = opts(&[("principal", "p@R")]).unwrap_err();
        assert!(
            e.contains("the proxy's principal is the one in its keytab"),
            "{e}"
        );
    }

    #[test]
    fn service_is_checked() {
        assert!(opts(&[("service", "vnc/x")])
            .unwrap_err()
            .contains("service"));
        assert_eq!(
            opts(&[("service", "vnc-test")]).unwrap().service,
            "vnc-test"
        );
    }
}
