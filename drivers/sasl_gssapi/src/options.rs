//! `[console_proxy_sasl]` as a validated [`SaslOptions`].

use std::fs::File;
use std::path::PathBuf;

use consolegate_driver_api::Options;

use crate::error::SaslError;

/// The INI section the driver reads.
pub const SECTION: &str = "console_proxy_sasl";
/// INI key: the SASL mechanism. Default [`DEFAULT_MECHANISM`].
pub const KEY_MECHANISM: &str = "mechanism";
/// INI key: the service name of the VNC server's principal. Default [`DEFAULT_SERVICE`].
pub const KEY_SERVICE: &str = "service";
/// INI key: the keytab holding the proxy's key. Optional.
pub const KEY_KEYTAB: &str = "keytab";
/// INI key: the proxy's own principal. Optional.
pub const KEY_PRINCIPAL: &str = "principal";
/// Every key the section may hold.
pub const KEYS: [&str; 4] = [KEY_MECHANISM, KEY_SERVICE, KEY_KEYTAB, KEY_PRINCIPAL];

/// The mechanism when none is set.
pub const DEFAULT_MECHANISM: &str = "GSSAPI";
/// The service when none is set: QEMU registers its SASL service as `vnc`.
pub const DEFAULT_SERVICE: &str = "vnc";
/// Longest SASL mechanism name (RFC 4422 §3.1).
const MAX_MECHANISM_LEN: usize = 20;
/// Longest service name or principal accepted.
const MAX_NAME_LEN: usize = 256;

/// The validated options. Nothing uses them yet: the driver is a placeholder, and validates
/// them so that a configuration written now keeps working when SASL is implemented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslOptions {
    /// `mechanism`: an RFC 4422 mechanism name, upper-cased. Defaults to `GSSAPI`.
    pub mechanism: String,
    /// `service`: the service part of the VNC server's principal (`vnc/host@REALM`).
    /// Defaults to `vnc`.
    pub service: String,
    /// `keytab`: a readable keytab file (`FILE:` prefix allowed). Defaults to none (the
    /// Kerberos library's default).
    pub keytab: Option<PathBuf>,
    /// `principal`: the proxy's principal, `name[/instance][@REALM]`. Defaults to none (the
    /// keytab's first).
    pub principal: Option<String>,
}

impl SaslOptions {
    /// Reads and validates `[console_proxy_sasl]`; an absent section gives the defaults.
    pub fn from_options(options: &Options) -> Result<Self, SaslError> {
        if let Some(key) = options.keys(SECTION).find(|k| !KEYS.contains(k)) {
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
        let mechanism = get(KEY_MECHANISM)
            .unwrap_or(DEFAULT_MECHANISM)
            .to_ascii_uppercase();
        let mechanism_ok = mechanism.len() <= MAX_MECHANISM_LEN
            && mechanism
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !mechanism_ok {
            return Err(SaslError::BadValue {
                key: KEY_MECHANISM,
                value: mechanism,
                expected: "an RFC 4422 mechanism name: up to 20 of A-Z, 0-9, '-' and '_'",
            });
        }
        let service = get(KEY_SERVICE).unwrap_or(DEFAULT_SERVICE).to_owned();
        if !is_name(&service, |b| {
            b.is_ascii_alphanumeric() || b"-_.".contains(&b)
        }) {
            return Err(SaslError::BadValue {
                key: KEY_SERVICE,
                value: service,
                expected: "a service name such as vnc (letters, digits, '-', '_', '.')",
            });
        }
        let principal = get(KEY_PRINCIPAL).map(str::to_owned);
        if let Some(p) = &principal {
            let one_realm = p.matches('@').count() <= 1 && !p.starts_with(['@', '/']);
            if !one_realm || !is_name(p, |b| b.is_ascii_graphic()) {
                return Err(SaslError::BadValue {
                    key: KEY_PRINCIPAL,
                    value: p.clone(),
                    expected: "a Kerberos principal: name[/instance][@REALM], no spaces",
                });
            }
        }
        let keytab = get(KEY_KEYTAB).map(|v| PathBuf::from(v.strip_prefix("FILE:").unwrap_or(v)));
        if let Some(path) = &keytab {
            check_readable_file(path)?;
        }
        Ok(Self {
            mechanism,
            service,
            keytab,
            principal,
        })
    }
}

/// Non-empty, at most [`MAX_NAME_LEN`] bytes, every byte accepted by `ok`.
fn is_name(value: &str, ok: impl Fn(u8) -> bool) -> bool {
    !value.is_empty() && value.len() <= MAX_NAME_LEN && value.bytes().all(ok)
}

/// The keytab must be a regular file the proxy's user can open.
fn check_readable_file(path: &PathBuf) -> Result<(), SaslError> {
    let unusable = |problem: String| SaslError::Keytab {
        path: path.clone(),
        problem,
    };
    let file = File::open(path).map_err(|e| unusable(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| unusable(format!("cannot stat it: {e}")))?;
    if !meta.is_file() {
        return Err(unusable("it is not a regular file".into()));
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
        assert_eq!(
            (o.mechanism.as_str(), o.service.as_str()),
            ("GSSAPI", "vnc")
        );
        assert_eq!((o.keytab, o.principal), (None, None));
    }

    #[test]
    fn mechanism_is_upper_cased_and_checked() {
        assert_eq!(
            opts(&[("mechanism", "gssapi")]).unwrap().mechanism,
            "GSSAPI"
        );
        let e = opts(&[("mechanism", "GSS API")]).unwrap_err();
        assert!(
            e.starts_with("[console_proxy_sasl] mechanism = \"GSS API\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = opts(&[("keytabs", "/x")]).unwrap_err();
        assert!(e.contains("unknown key 'keytabs'"), "{e}");
        assert!(e.contains("mechanism, service, keytab, principal"), "{e}");
    }

    #[test]
    fn keytab_must_be_a_readable_file() {
        let e = opts(&[("keytab", "/nonexistent/proxy.keytab")]).unwrap_err();
        assert!(
            e.contains("keytab = /nonexistent/proxy.keytab: cannot open it"),
            "{e}"
        );
        let e = opts(&[("keytab", "/")]).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let file = std::env::temp_dir().join(format!("sasl-keytab-{}", std::process::id()));
        std::fs::write(&file, b"\x05\x02").unwrap();
        let o = opts(&[("keytab", &format!("FILE:{}", file.display()))]).unwrap();
        assert_eq!(o.keytab, Some(file.clone()));
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn principal_and_service_are_checked() {
        assert!(opts(&[("principal", "consolegate/proxy.example@EXAMPLE.COM")]).is_ok());
        for bad in ["two words", "a@B@C", "@REALM"] {
            assert!(
                opts(&[("principal", bad)])
                    .unwrap_err()
                    .contains("principal"),
                "{bad}"
            );
        }
        assert!(opts(&[("service", "vnc/x")])
            .unwrap_err()
            .contains("service"));
    }
}
