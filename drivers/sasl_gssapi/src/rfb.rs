//! The little RFB this placeholder speaks: towards the server, the version exchange and the
//! security offer (with VeNCrypt, up to its subtype list, which is sent before TLS); towards
//! the browser, a version exchange and a failure with a reason, so that noVNC shows it.
//!
//! Every length read is bounded: type and subtype counts are one byte (at most 255 entries),
//! reasons are checked against [`MAX_REASON_LEN`].

use std::fmt;
use std::io::{Read, Write};

use crate::error::SaslError;

/// Length of a ProtocolVersion message (`"RFB 003.008\n"`).
const VERSION_LEN: usize = 12;
/// Longest failure reason accepted from a server, in bytes.
pub const MAX_REASON_LEN: u32 = 4096;
/// Security type: SASL.
pub const TYPE_SASL: u8 = 20;
/// Security type: VeNCrypt.
pub const TYPE_VENCRYPT: u8 = 19;
/// VeNCrypt subtypes that carry SASL: TLSSASL and X509SASL.
pub const SASL_SUBTYPES: [u32; 2] = [263, 264];

/// What the VNC server offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// An RFB 3.3 server chose this security type itself.
    Chosen(u32),
    /// The security types listed (RFB 3.7 and later), without VeNCrypt.
    Types(Vec<u8>),
    /// The security types listed, VeNCrypt among them, and VeNCrypt's subtypes.
    Vencrypt {
        /// The security types.
        types: Vec<u8>,
        /// The VeNCrypt subtypes.
        subtypes: Vec<u32>,
    },
}

impl Offer {
    /// Whether any form of SASL is on offer.
    pub fn has_sasl(&self) -> bool {
        match self {
            Offer::Chosen(t) => *t == u32::from(TYPE_SASL),
            Offer::Types(types) => types.contains(&TYPE_SASL),
            Offer::Vencrypt { types, subtypes } => {
                types.contains(&TYPE_SASL) || subtypes.iter().any(|s| SASL_SUBTYPES.contains(s))
            }
        }
    }
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let types = |types: &[u8]| list(types.iter().map(|t| (u32::from(*t), type_name(*t))));
        match self {
            Offer::Chosen(t) => {
                write!(f, "RFB 3.3 security type {}", list([(*t, chosen_name(*t))]))
            }
            Offer::Types(t) => write!(f, "security types {}", types(t)),
            Offer::Vencrypt { types: t, subtypes } => write!(
                f,
                "security types {}, VeNCrypt subtypes {}",
                types(t),
                list(subtypes.iter().map(|s| (*s, subtype_name(*s))))
            ),
        }
    }
}

/// `[1 None, 2 VncAuth]`.
fn list(items: impl IntoIterator<Item = (u32, &'static str)>) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
    format!("[{}]", items.join(", "))
}

fn chosen_name(t: u32) -> &'static str {
    u8::try_from(t).map_or("unknown", type_name)
}

fn type_name(t: u8) -> &'static str {
    match t {
        1 => "None",
        2 => "VncAuth",
        5 => "RA2",
        6 => "RA2ne",
        16 => "Tight",
        17 => "Ultra",
        18 => "TLS",
        19 => "VeNCrypt",
        20 => "SASL",
        22 => "xvp",
        30 => "AppleARD",
        _ => "unknown",
    }
}

fn subtype_name(s: u32) -> &'static str {
    match s {
        256 => "Plain",
        257 => "TLSNone",
        258 => "TLSVnc",
        259 => "TLSPlain",
        260 => "X509None",
        261 => "X509Vnc",
        262 => "X509Plain",
        263 => "TLSSASL",
        264 => "X509SASL",
        1 => "None",
        2 => "VncAuth",
        _ => "unknown",
    }
}

/// Reads the server's version and security offer, answering as far as needed to see it
/// (for VeNCrypt: version 0.2, then the subtype list). Sends no credentials.
pub fn read_offer<S: Read + Write>(server: &mut S) -> Result<Offer, SaslError> {
    let mut greeting = [0u8; VERSION_LEN];
    server.read_exact(&mut greeting)?;
    let (major, minor) = parse_version(&greeting).ok_or_else(|| SaslError::NotRfb {
        greeting: format!("\"{}\"", greeting.escape_ascii()),
    })?;
    let ours: &[u8; VERSION_LEN] = match (major, minor) {
        (3, 8..) | (4.., _) => b"RFB 003.008\n",
        (3, 7) => b"RFB 003.007\n",
        (3, 3..=6) => b"RFB 003.003\n",
        _ => {
            return Err(SaslError::Protocol(format!(
                "unsupported RFB version {major}.{minor}"
            )))
        }
    };
    server.write_all(ours)?;
    if ours == b"RFB 003.003\n" {
        return match read_u32(server)? {
            0 => Err(SaslError::ServerRefused {
                reason: read_reason(server)?,
            }),
            chosen => Ok(Offer::Chosen(chosen)),
        };
    }
    let types = read_list(server)?;
    if types.is_empty() {
        return Err(SaslError::ServerRefused {
            reason: read_reason(server)?,
        });
    }
    if types.contains(&TYPE_SASL) || !types.contains(&TYPE_VENCRYPT) {
        return Ok(Offer::Types(types));
    }
    server.write_all(&[TYPE_VENCRYPT])?;
    let mut version = [0u8; 2];
    server.read_exact(&mut version)?;
    if version < [0, 2] {
        return Err(SaslError::Protocol(format!(
            "VeNCrypt version {}.{} (only 0.2 is understood)",
            version[0], version[1]
        )));
    }
    server.write_all(&[0, 2])?;
    let mut status = [0u8; 1];
    server.read_exact(&mut status)?;
    if status[0] != 0 {
        return Err(SaslError::Protocol(
            "the server refused VeNCrypt version 0.2".into(),
        ));
    }
    let mut count = [0u8; 1];
    server.read_exact(&mut count)?;
    let subtypes = (0..count[0])
        .map(|_| read_u32(server))
        .collect::<Result<_, _>>()?;
    Ok(Offer::Vencrypt { types, subtypes })
}

/// Tells the browser that the session failed, in RFB terms: our version 3.8, its version,
/// then an empty security list (a u32 0 for a 3.3 client) and `reason`.
pub fn refuse_client<C: Read + Write>(client: &mut C, reason: &str) -> std::io::Result<()> {
    client.write_all(b"RFB 003.008\n")?;
    let mut version = [0u8; VERSION_LEN];
    client.read_exact(&mut version)?;
    let mut message = match parse_version(&version) {
        Some((3, 3..=6)) => 0u32.to_be_bytes().to_vec(),
        _ => vec![0u8],
    };
    let reason = &reason.as_bytes()[..reason.len().min(MAX_REASON_LEN as usize)];
    message.extend((reason.len() as u32).to_be_bytes());
    message.extend_from_slice(reason);
    client.write_all(&message)?;
    client.flush()
}

/// `"RFB xxx.yyy\n"` to `(xxx, yyy)`.
fn parse_version(v: &[u8; VERSION_LEN]) -> Option<(u16, u16)> {
    let digits = |b: &[u8]| -> Option<u16> {
        b.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(b).ok()?.parse().ok())?
    };
    if &v[..4] != b"RFB " || v[7] != b'.' || v[11] != b'\n' {
        return None;
    }
    Some((digits(&v[4..7])?, digits(&v[8..11])?))
}

fn read_u32<S: Read>(s: &mut S) -> Result<u32, SaslError> {
    let mut b = [0u8; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// A one-byte count and as many bytes.
fn read_list<S: Read>(s: &mut S) -> Result<Vec<u8>, SaslError> {
    let mut count = [0u8; 1];
    s.read_exact(&mut count)?;
    let mut items = vec![0u8; usize::from(count[0])];
    s.read_exact(&mut items)?;
    Ok(items)
}

fn read_reason<S: Read>(s: &mut S) -> Result<String, SaslError> {
    let len = read_u32(s)?;
    if len > MAX_REASON_LEN {
        return Err(SaslError::Protocol(format!(
            "failure reason of {len} bytes (at most {MAX_REASON_LEN} accepted)"
        )));
    }
    let mut reason = vec![0u8; len as usize];
    s.read_exact(&mut reason)?;
    Ok(String::from_utf8_lossy(&reason)
        .trim_end_matches('\0')
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, Cursor};

    /// A peer that answers with `input` and records what it is sent.
    struct Peer {
        input: Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Peer {
        fn new(input: &[u8]) -> Self {
            Self {
                input: Cursor::new(input.to_vec()),
                sent: Vec::new(),
            }
        }
    }

    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn offer(input: &[u8]) -> (Result<Offer, SaslError>, Vec<u8>) {
        let mut peer = Peer::new(input);
        (read_offer(&mut peer), peer.sent)
    }

    #[test]
    fn sasl_type_is_seen_without_choosing_it() {
        let (o, sent) = offer(b"RFB 003.008\n\x02\x01\x14");
        let o = o.unwrap();
        assert!(o.has_sasl());
        assert_eq!(o.to_string(), "security types [1 None, 20 SASL]");
        assert_eq!(sent, b"RFB 003.008\n");
    }

    #[test]
    fn vencrypt_subtypes_are_read_before_tls() {
        let (o, sent) = offer(b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x08");
        let o = o.unwrap();
        assert_eq!(
            o.to_string(),
            "security types [19 VeNCrypt], VeNCrypt subtypes [264 X509SASL]"
        );
        assert!(o.has_sasl());
        assert_eq!(sent, b"RFB 003.008\n\x13\x00\x02");
        let (o, _) = offer(b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x04");
        assert!(!o.unwrap().has_sasl());
    }

    #[test]
    fn no_sasl_and_rfb_33() {
        let (o, _) = offer(b"RFB 003.008\n\x01\x02");
        assert_eq!(o.unwrap(), Offer::Types(vec![2]));
        let (o, sent) = offer(b"RFB 003.003\n\x00\x00\x00\x01");
        assert_eq!(o.unwrap().to_string(), "RFB 3.3 security type [1 None]");
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
        assert!(o.unwrap_err().to_string().contains("4294967295 bytes"));
        let (o, _) = offer(b"REDQ\x02\x00\x00\x00\x02\x00\x00\x00");
        assert!(matches!(o, Err(SaslError::NotRfb { .. })));
        let (o, _) = offer(b"RFB 003.008\n\x03\x01");
        assert!(
            matches!(o, Err(SaslError::Io(_))),
            "a short list is an I/O error: {o:?}"
        );
    }

    #[test]
    fn the_browser_gets_an_empty_list_and_the_reason() {
        let mut client = Peer::new(b"RFB 003.008\n");
        refuse_client(&mut client, "no").unwrap();
        assert_eq!(client.sent, b"RFB 003.008\n\x00\x00\x00\x00\x02no");
        let mut old = Peer::new(b"RFB 003.003\n");
        refuse_client(&mut old, "no").unwrap();
        assert_eq!(old.sent, b"RFB 003.008\n\x00\x00\x00\x00\x00\x00\x00\x02no");
    }
}
