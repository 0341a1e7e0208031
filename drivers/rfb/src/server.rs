//! The client's first steps towards a VNC server, shared by the `vencrypt` and `sasl_gssapi`
//! drivers, in wire order:
//!
//! 1. [`exchange_version`]: the server's ProtocolVersion, answered with the version to speak.
//! 2. [`read_security_types`]: the list (3.7+) or the server's pick (3.3); a refusal carries
//!    the server's reason. The caller sends its choice (3.7+ only).
//! 3. VeNCrypt: [`negotiate_vencrypt_version`] (0.2 only), [`read_subtypes`], then
//!    [`send_subtype`] with the subtype chosen, which returns the server's acknowledgement.
//!
//! Failures are [`ServerStepError`]s; each driver says what they mean in its own terms.

use std::io::{Read, Write};

use crate::security::{MAX_SECURITY_TYPES, MAX_SUBTYPES, VENCRYPT_VERSION};
use crate::version::{parse_version, RfbVersion, VERSION_LEN};
use crate::wire::{read_array, read_items, read_reason, read_u32, read_u8, write_all, WireError};
use crate::{SecurityType, Subtype};

/// Why one of the first steps failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerStepError {
    /// Reading or writing failed, or a length was over its limit.
    #[error(transparent)]
    Wire(#[from] WireError),

    /// The server's first bytes are not an RFB ProtocolVersion.
    #[error("\"{greeting}\" is not an RFB ProtocolVersion (not a VNC server?)")]
    NotRfb {
        /// The 12 bytes, escaped.
        greeting: String,
    },

    /// The server speaks a version older than 3.3.
    #[error("the server speaks RFB {major}.{minor}, older than 3.3")]
    TooOld {
        /// Its major version.
        major: u16,
        /// Its minor version.
        minor: u16,
    },

    /// The server refused the connection, with this reason.
    #[error("the server refused the connection: {reason}")]
    Refused {
        /// Its reason, as safe text.
        reason: String,
    },

    /// The server speaks a VeNCrypt version older than 0.2.
    #[error("the server speaks VeNCrypt {major}.{minor}; 0.2 is required")]
    VencryptTooOld {
        /// Its major version.
        major: u8,
        /// Its minor version.
        minor: u8,
    },

    /// The server refused VeNCrypt 0.2.
    #[error("the server (VeNCrypt {major}.{minor}) refused VeNCrypt 0.2 (status {status})")]
    VencryptRefused {
        /// Its major version.
        major: u8,
        /// Its minor version.
        minor: u8,
        /// The status byte it sent.
        status: u8,
    },
}

/// Step 1: reads the server's ProtocolVersion and answers with the version to speak.
pub fn exchange_version(io: &mut (impl Read + Write)) -> Result<RfbVersion, ServerStepError> {
    let got: [u8; VERSION_LEN] = read_array(io)?;
    let (major, minor) = parse_version(&got).ok_or_else(|| ServerStepError::NotRfb {
        greeting: got.escape_ascii().to_string(),
    })?;
    let version =
        RfbVersion::for_server(major, minor).ok_or(ServerStepError::TooOld { major, minor })?;
    log::debug!("server speaks RFB {major}.{minor}; using {version}");
    write_all(io, version.wire())?;
    Ok(version)
}

/// Step 2: the security types the server offers: its list (3.7+), or the one it picked
/// (3.3; empty if that number is not a byte). A refusal (count 0, or type 0 in 3.3) is
/// [`ServerStepError::Refused`] with its reason. Sends nothing.
pub fn read_security_types(
    io: &mut impl Read,
    version: RfbVersion,
) -> Result<Vec<SecurityType>, ServerStepError> {
    let refused = |io: &mut _| -> Result<_, ServerStepError> {
        Err(ServerStepError::Refused {
            reason: read_reason(io)?,
        })
    };
    if version == RfbVersion::V3_3 {
        return match read_u32(io)? {
            0 => refused(io),
            picked => Ok(u8::try_from(picked)
                .map(SecurityType::from_wire)
                .into_iter()
                .collect()),
        };
    }
    let count = usize::from(read_u8(io)?);
    if count == 0 {
        return refused(io);
    }
    Ok(
        read_items(io, count, 1, MAX_SECURITY_TYPES, "security type list")?
            .into_iter()
            .map(SecurityType::from_wire)
            .collect(),
    )
}

/// VeNCrypt, after the client chose type 19: version 0.2, which the server must support.
pub fn negotiate_vencrypt_version(io: &mut (impl Read + Write)) -> Result<(), ServerStepError> {
    let [major, minor] = read_array(io)?;
    if (major, minor) < (VENCRYPT_VERSION[0], VENCRYPT_VERSION[1]) {
        return Err(ServerStepError::VencryptTooOld { major, minor });
    }
    write_all(io, &VENCRYPT_VERSION)?;
    match read_u8(io)? {
        0 => Ok(()),
        status => Err(ServerStepError::VencryptRefused {
            major,
            minor,
            status,
        }),
    }
}

/// VeNCrypt: the subtype list (u8 count, u32 each).
pub fn read_subtypes(io: &mut impl Read) -> Result<Vec<Subtype>, WireError> {
    let count = usize::from(read_u8(io)?);
    let bytes = read_items(io, count, 4, MAX_SUBTYPES, "VeNCrypt subtype list")?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| Subtype::from_wire(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect())
}

/// VeNCrypt: sends the chosen subtype; returns the server's acknowledgement byte
/// ([`SUBTYPE_ACK_OK`](crate::security::SUBTYPE_ACK_OK) accepts it).
pub fn send_subtype(io: &mut (impl Read + Write), subtype: Subtype) -> Result<u8, WireError> {
    write_all(io, &subtype.wire().to_be_bytes())?;
    read_u8(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::script;

    #[test]
    fn the_first_steps() {
        let mut s = script(b"RFB 003.889\n");
        assert_eq!(exchange_version(&mut s).unwrap(), RfbVersion::V3_8);
        assert_eq!(s.output, b"RFB 003.008\n");
        let e = exchange_version(&mut script(b"SSH-2.0-Open")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"SSH-2.0-Open\" is not an RFB ProtocolVersion (not a VNC server?)"
        );
        let types = read_security_types(&mut script(&[2, 19, 20]), RfbVersion::V3_8).unwrap();
        assert_eq!(types, [SecurityType::VeNCrypt, SecurityType::Sasl]);
        let picked = read_security_types(&mut script(&[0, 0, 1, 0]), RfbVersion::V3_3).unwrap();
        assert!(picked.is_empty(), "256 is not a security type");
        let e =
            read_security_types(&mut script(b"\0\0\0\0\x04busy"), RfbVersion::V3_7).unwrap_err();
        assert_eq!(e.to_string(), "the server refused the connection: busy");
        let mut s = script(&[0, 2, 0, 1, 0, 0, 1, 7, 1]);
        negotiate_vencrypt_version(&mut s).unwrap();
        assert_eq!(read_subtypes(&mut s).unwrap(), [Subtype::X509Sasl]);
        assert_eq!(send_subtype(&mut s, Subtype::X509Sasl).unwrap(), 1);
        assert_eq!(s.output, [0, 2, 0, 0, 1, 7]);
    }
}
