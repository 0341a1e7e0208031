//! The driver's own option in `[console_proxy_tls]`: `vencrypt_subtypes`, the subtype
//! preference. (The shared TLS keys are read by `consolegate_tls_client::TlsOptions`.)

use consolegate_driver_api::Options;

use crate::error::VencryptError;
use consolegate_rfb::Subtype;

/// The INI section the driver reads.
pub const SECTION: &str = "console_proxy_tls";
/// INI key: the VeNCrypt subtypes the driver may choose, most preferred first.
pub const KEY_SUBTYPES: &str = "vencrypt_subtypes";
/// The default of [`KEY_SUBTYPES`].
pub const DEFAULT_SUBTYPES: &str = "x509vnc, x509none, x509plain";

/// Reads `vencrypt_subtypes` (default [`DEFAULT_SUBTYPES`]).
pub fn subtypes(options: &Options) -> Result<Vec<Subtype>, VencryptError> {
    let value = options
        .get(SECTION, KEY_SUBTYPES)
        .map(str::trim)
        .filter(|v| !v.is_empty());
    parse_subtypes(value.unwrap_or(DEFAULT_SUBTYPES))
}

/// Parses a list of subtype names separated by commas or spaces, case-insensitive. Only
/// `x509vnc`, `x509none` and `x509plain` are allowed; each at most once.
pub fn parse_subtypes(value: &str) -> Result<Vec<Subtype>, VencryptError> {
    let bad = |problem: String| VencryptError::BadSubtypes {
        value: value.to_owned(),
        problem,
    };
    let mut out = Vec::new();
    for name in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
    {
        let subtype = match Subtype::from_name(name) {
            Some(s) if s.is_x509() => s,
            Some(s) if s.is_anonymous_tls() => {
                return Err(bad(format!(
                    "{name} is anonymous TLS: without certificates the proxy cannot tell the \
                     hypervisor from an impostor; use x509none, x509vnc or x509plain"
                )))
            }
            Some(Subtype::Plain) => {
                return Err(bad(format!(
                    "{name} sends the credentials in cleartext; use x509plain"
                )))
            }
            Some(_) => {
                return Err(bad(format!(
                    "{name} (SASL) is not supported; use x509none, x509vnc or x509plain"
                )))
            }
            None => {
                return Err(bad(format!(
                    "unknown subtype {name:?}; known: x509vnc, x509none, x509plain"
                )))
            }
        };
        if out.contains(&subtype) {
            return Err(bad(format!("{name} is listed twice")));
        }
        out.push(subtype);
    }
    if out.is_empty() {
        return Err(bad("no subtype given".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_explicit_lists() {
        assert_eq!(
            subtypes(&Options::default()).unwrap(),
            [Subtype::X509Vnc, Subtype::X509None, Subtype::X509Plain]
        );
        let o = Options::new(vec![(
            SECTION.into(),
            KEY_SUBTYPES.into(),
            "X509Plain x509none".into(),
        )]);
        assert_eq!(
            subtypes(&o).unwrap(),
            [Subtype::X509Plain, Subtype::X509None]
        );
    }

    #[test]
    fn refusals_explain_why() {
        for (value, why) in [
            ("x509vnc, tlsvnc", "tlsvnc is anonymous TLS"),
            ("tlsnone", "cannot tell the hypervisor from an impostor"),
            ("plain", "cleartext"),
            ("x509sasl", "SASL) is not supported"),
            ("x509vnc,x509foo", "unknown subtype \"x509foo\""),
            ("x509vnc x509vnc", "listed twice"),
            (" , ", "no subtype given"),
        ] {
            let e = parse_subtypes(value).unwrap_err().to_string();
            assert!(
                e.starts_with("[console_proxy_tls] vencrypt_subtypes = "),
                "{e}"
            );
            assert!(e.contains(why), "{value}: {e}");
        }
    }
}
