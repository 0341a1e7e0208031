//! Reading a VNC server's security offer, without choosing anything: the version exchange,
//! then the security types (for VeNCrypt, up to its subtype list, which is sent before TLS).
//! Every read goes through the shared RFB codec ([`consolegate_rfb`]), so every length is
//! bounded the same way as in the vencrypt driver.

use std::fmt;
use std::io::{Read, Write};

use consolegate_rfb::security::{MAX_SECURITY_TYPES, MAX_SUBTYPES, VENCRYPT_VERSION};
use consolegate_rfb::wire::{read_array, read_items, read_reason, read_u32, read_u8, write_all};
use consolegate_rfb::{list, parse_version, RfbVersion, SecurityType, Subtype, VERSION_LEN};

use crate::error::SaslError;

/// What the VNC server offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// An RFB 3.3 server chose this security type itself.
    Chosen(u32),
    /// The security types listed (RFB 3.7 and later), without VeNCrypt.
    Types(Vec<SecurityType>),
    /// The security types listed, VeNCrypt among them, and VeNCrypt's subtypes.
    Vencrypt {
        /// The security types.
        types: Vec<SecurityType>,
        /// The VeNCrypt subtypes.
        subtypes: Vec<Subtype>,
    },
}

impl Offer {
    /// Whether any form of SASL is on offer.
    pub fn has_sasl(&self) -> bool {
        match self {
            Offer::Chosen(t) => *t == u32::from(SecurityType::Sasl.wire()),
            Offer::Types(types) => types.contains(&SecurityType::Sasl),
            Offer::Vencrypt { types, subtypes } => {
                types.contains(&SecurityType::Sasl) || subtypes.iter().any(|s| s.is_sasl())
            }
        }
    }
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offer::Chosen(t) => match u8::try_from(*t) {
                Ok(t) => write!(f, "RFB 3.3 security type {}", SecurityType::from_wire(t)),
                Err(_) => write!(f, "RFB 3.3 security type {t}"),
            },
            Offer::Types(types) => write!(f, "security types {}", list(types)),
            Offer::Vencrypt { types, subtypes } => write!(
                f,
                "security types {}, VeNCrypt subtypes {}",
                list(types),
                list(subtypes)
            ),
        }
    }
}

/// Reads the server's version and security offer, answering as far as needed to see it
/// (for VeNCrypt: version 0.2, then the subtype list). Sends no credentials.
pub fn read_offer<S: Read + Write>(server: &mut S) -> Result<Offer, SaslError> {
    let greeting: [u8; VERSION_LEN] = read_array(server)?;
    let (major, minor) = parse_version(&greeting).ok_or_else(|| SaslError::NotRfb {
        greeting: format!("\"{}\"", greeting.escape_ascii()),
    })?;
    let version = RfbVersion::for_server(major, minor)
        .ok_or_else(|| SaslError::Protocol(format!("unsupported RFB version {major}.{minor}")))?;
    write_all(server, version.wire())?;
    if version == RfbVersion::V3_3 {
        return match read_u32(server)? {
            0 => Err(SaslError::ServerRefused {
                reason: read_reason(server)?,
            }),
            chosen => Ok(Offer::Chosen(chosen)),
        };
    }
    let count = usize::from(read_u8(server)?);
    if count == 0 {
        return Err(SaslError::ServerRefused {
            reason: read_reason(server)?,
        });
    }
    let types: Vec<SecurityType> =
        read_items(server, count, 1, MAX_SECURITY_TYPES, "security type list")?
            .into_iter()
            .map(SecurityType::from_wire)
            .collect();
    if types.contains(&SecurityType::Sasl) || !types.contains(&SecurityType::VeNCrypt) {
        return Ok(Offer::Types(types));
    }
    write_all(server, &[SecurityType::VeNCrypt.wire()])?;
    let version: [u8; 2] = read_array(server)?;
    if version < VENCRYPT_VERSION {
        return Err(SaslError::Protocol(format!(
            "VeNCrypt version {}.{} (only 0.2 is understood)",
            version[0], version[1]
        )));
    }
    write_all(server, &VENCRYPT_VERSION)?;
    if read_u8(server)? != 0 {
        return Err(SaslError::Protocol(
            "the server refused VeNCrypt version 0.2".into(),
        ));
    }
    let count = usize::from(read_u8(server)?);
    let subtypes = read_items(server, count, 4, MAX_SUBTYPES, "VeNCrypt subtype list")?
        .chunks_exact(4)
        .map(|c| Subtype::from_wire(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    Ok(Offer::Vencrypt { types, subtypes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use consolegate_rfb::script::script;

    fn offer(input: &[u8]) -> (Result<Offer, SaslError>, Vec<u8>) {
        let mut peer = script(input);
        (read_offer(&mut peer), peer.output)
    }

    #[test]
    fn sasl_type_is_seen_without_choosing_it() {
        let (o, sent) = offer(b"RFB 003.008\n\x02\x01\x14");
        let o = o.unwrap();
        assert!(o.has_sasl());
        assert_eq!(o.to_string(), "security types [None(1), SASL(20)]");
        assert_eq!(sent, b"RFB 003.008\n");
    }

    #[test]
    fn vencrypt_subtypes_are_read_before_tls() {
        let (o, sent) = offer(b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x08");
        let o = o.unwrap();
        assert_eq!(
            o.to_string(),
            "security types [VeNCrypt(19)], VeNCrypt subtypes [X509SASL(264)]"
        );
        assert!(o.has_sasl());
        assert_eq!(sent, b"RFB 003.008\n\x13\x00\x02");
        let (o, _) = offer(b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x04");
        assert!(!o.unwrap().has_sasl());
    }

    #[test]
    fn no_sasl_and_rfb_33() {
        let (o, _) = offer(b"RFB 003.008\n\x01\x02");
        assert_eq!(o.unwrap(), Offer::Types(vec![SecurityType::VncAuth]));
        let (o, sent) = offer(b"RFB 003.003\n\x00\x00\x00\x01");
        assert_eq!(o.unwrap().to_string(), "RFB 3.3 security type None(1)");
        assert_eq!(sent, b"RFB 003.003\n");
    }

    #[test]
    fn refusals_and_bad_input() {
        let (o, _) = offer(b"RFB 003.008\n\x00\x00\x00\x00\x05busy\x00");
        assert_eq!(
            o.unwrap_err().to_string(),
            "the VNC server refused the connection: busy"
        );
        let (o, _) = offer(b"RFB 003.008\n\x00\xff\xff\xff\xff");
        assert!(o.unwrap_err().to_string().contains("4294967295 exceeds"));
        let (o, _) = offer(b"RFB 003.008\n\x21");
        assert!(o
            .unwrap_err()
            .to_string()
            .contains("33 exceeds the limit of 32"));
        let (o, _) = offer(b"REDQ\x02\x00\x00\x00\x02\x00\x00\x00");
        assert!(matches!(o, Err(SaslError::NotRfb { .. })));
        let (o, _) = offer(b"RFB 003.008\n\x03\x01");
        assert!(
            matches!(o, Err(SaslError::Io(_))),
            "a short list is an I/O error: {o:?}"
        );
    }
}
