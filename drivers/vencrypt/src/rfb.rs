//! RFB (RFC 6143) and VeNCrypt wire facts: protocol versions, security types and VeNCrypt
//! subtypes with their wire numbers, and the `MAX_*` limits every length field is checked
//! against.

use std::fmt;

/// Length of a ProtocolVersion message (`"RFB xxx.yyy\n"`).
pub const VERSION_LEN: usize = 12;
/// Most security types accepted in a server's list (real servers list fewer than ten).
pub const MAX_SECURITY_TYPES: usize = 32;
/// Most VeNCrypt subtypes accepted in a server's list (Xvnc lists five).
pub const MAX_SUBTYPES: usize = 32;
/// Longest failure reason accepted from a server, in bytes.
pub const MAX_REASON_LEN: usize = 4096;
/// Length of the VNC authentication challenge and response.
pub const VNC_CHALLENGE_LEN: usize = 16;
/// Longest username or password sent for X509Plain, in bytes.
pub const MAX_PLAIN_CREDENTIAL_LEN: usize = 1024;

/// SecurityResult: success.
pub const SECURITY_RESULT_OK: u32 = 0;
/// SecurityResult: failure.
pub const SECURITY_RESULT_FAILED: u32 = 1;
/// The VeNCrypt version this driver speaks: 0.2.
pub const VENCRYPT_VERSION: [u8; 2] = [0, 2];
/// The VeNCrypt subtype acknowledgement meaning "accepted" (VeNCrypt 0.2).
pub const SUBTYPE_ACK_OK: u8 = 1;

/// The RFB versions there are (RFC 6143 §7.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RfbVersion {
    /// 3.3: the server picks the security type; no failure reasons after authentication.
    V3_3,
    /// 3.7: the client picks from a list; SecurityResult only after authentication.
    V3_7,
    /// 3.8: as 3.7, plus SecurityResult after None and failure reasons.
    V3_8,
}

impl RfbVersion {
    /// The ProtocolVersion message for this version.
    pub fn wire(self) -> &'static [u8; VERSION_LEN] {
        match self {
            RfbVersion::V3_3 => b"RFB 003.003\n",
            RfbVersion::V3_7 => b"RFB 003.007\n",
            RfbVersion::V3_8 => b"RFB 003.008\n",
        }
    }

    /// The version to speak with a server that announced `major.minor`: the highest both
    /// know. Servers announcing 3.8 or later (including Apple's 3.889 and RealVNC's 4.x/5.x)
    /// get 3.8; 3.4 to 3.6 are treated as 3.3 (RFC 6143 §7.1.1). Below 3.3: `None`.
    pub fn for_server(major: u16, minor: u16) -> Option<Self> {
        match (major, minor) {
            (3, 8..) | (4.., _) => Some(RfbVersion::V3_8),
            (3, 7) => Some(RfbVersion::V3_7),
            (3, 3..=6) => Some(RfbVersion::V3_3),
            _ => None,
        }
    }

    /// The version a client that answered `major.minor` to our 3.8 gets: as
    /// [`for_server`](Self::for_server), except that a client may not ask for more than 3.8.
    pub fn for_client(major: u16, minor: u16) -> Option<Self> {
        match (major, minor) {
            (3, 8) => Some(RfbVersion::V3_8),
            (3, 9..) | (4.., _) => None,
            _ => Self::for_server(major, minor),
        }
    }
}

impl fmt::Display for RfbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RfbVersion::V3_3 => "3.3",
            RfbVersion::V3_7 => "3.7",
            RfbVersion::V3_8 => "3.8",
        })
    }
}

/// Parses a ProtocolVersion message: `"RFB "`, three digits, `"."`, three digits, `"\n"`.
pub fn parse_version(bytes: &[u8; VERSION_LEN]) -> Option<(u16, u16)> {
    let digits = |s: &[u8]| -> Option<u16> {
        s.iter().try_fold(0u16, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u16::from(b - b'0'))
        })
    };
    if &bytes[..4] != b"RFB " || bytes[7] != b'.' || bytes[11] != b'\n' {
        return None;
    }
    Some((digits(&bytes[4..7])?, digits(&bytes[8..11])?))
}

/// An RFB security type (one byte on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityType {
    /// 0: invalid (in 3.3, "connection failed").
    Invalid,
    /// 1: no authentication.
    None,
    /// 2: VNC authentication (DES challenge-response, cleartext session).
    VncAuth,
    /// 19: VeNCrypt.
    VeNCrypt,
    /// Any other type.
    Other(u8),
}

impl SecurityType {
    /// The type of a wire number.
    pub fn from_wire(n: u8) -> Self {
        match n {
            0 => SecurityType::Invalid,
            1 => SecurityType::None,
            2 => SecurityType::VncAuth,
            19 => SecurityType::VeNCrypt,
            n => SecurityType::Other(n),
        }
    }

    /// The wire number.
    pub fn wire(self) -> u8 {
        match self {
            SecurityType::Invalid => 0,
            SecurityType::None => 1,
            SecurityType::VncAuth => 2,
            SecurityType::VeNCrypt => 19,
            SecurityType::Other(n) => n,
        }
    }
}

impl fmt::Display for SecurityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecurityType::Invalid => write!(f, "Invalid(0)"),
            SecurityType::None => write!(f, "None(1)"),
            SecurityType::VncAuth => write!(f, "VncAuth(2)"),
            SecurityType::VeNCrypt => write!(f, "VeNCrypt(19)"),
            SecurityType::Other(n) => write!(f, "{n}"),
        }
    }
}

/// A VeNCrypt subtype (four bytes on the wire). Servers may also list plain RFB security
/// types among them (Xvnc lists 2); those come out as [`Subtype::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subtype {
    /// 256: username and password in cleartext, no TLS.
    Plain,
    /// 257: anonymous TLS (no certificates), no authentication.
    TlsNone,
    /// 258: anonymous TLS, then VNC authentication.
    TlsVnc,
    /// 259: anonymous TLS, then username and password.
    TlsPlain,
    /// 260: X.509 TLS, no further authentication.
    X509None,
    /// 261: X.509 TLS, then VNC authentication.
    X509Vnc,
    /// 262: X.509 TLS, then username and password.
    X509Plain,
    /// 263: anonymous TLS, then SASL.
    TlsSasl,
    /// 264: X.509 TLS, then SASL.
    X509Sasl,
    /// Any other number.
    Other(u32),
}

/// The subtypes with a name, in wire order.
const NAMED: [(Subtype, u32, &str); 9] = [
    (Subtype::Plain, 256, "Plain"),
    (Subtype::TlsNone, 257, "TLSNone"),
    (Subtype::TlsVnc, 258, "TLSVnc"),
    (Subtype::TlsPlain, 259, "TLSPlain"),
    (Subtype::X509None, 260, "X509None"),
    (Subtype::X509Vnc, 261, "X509Vnc"),
    (Subtype::X509Plain, 262, "X509Plain"),
    (Subtype::TlsSasl, 263, "TLSSASL"),
    (Subtype::X509Sasl, 264, "X509SASL"),
];

impl Subtype {
    /// The subtype of a wire number.
    pub fn from_wire(n: u32) -> Self {
        NAMED
            .iter()
            .find(|(_, w, _)| *w == n)
            .map_or(Subtype::Other(n), |(s, _, _)| *s)
    }

    /// The wire number.
    pub fn wire(self) -> u32 {
        match self {
            Subtype::Other(n) => n,
            named => NAMED
                .iter()
                .find(|(s, _, _)| *s == named)
                .map_or(0, |(_, w, _)| *w),
        }
    }

    /// The VeNCrypt name (`X509Vnc`); `None` for unnamed numbers.
    pub fn name(self) -> Option<&'static str> {
        NAMED
            .iter()
            .find(|(s, _, _)| *s == self)
            .map(|(_, _, n)| *n)
    }

    /// The subtype of a name, case-insensitive (`x509vnc`, `X509Vnc`).
    pub fn from_name(name: &str) -> Option<Self> {
        NAMED
            .iter()
            .find(|(_, _, n)| n.eq_ignore_ascii_case(name))
            .map(|(s, _, _)| *s)
    }

    /// Whether this subtype runs TLS with certificates (the only ones this driver uses).
    pub fn is_x509(self) -> bool {
        matches!(
            self,
            Subtype::X509None | Subtype::X509Vnc | Subtype::X509Plain
        )
    }

    /// Whether this subtype is one of the anonymous-TLS subtypes 257-259, which cannot
    /// authenticate the server.
    pub fn is_anonymous_tls(self) -> bool {
        matches!(self, Subtype::TlsNone | Subtype::TlsVnc | Subtype::TlsPlain)
    }
}

impl fmt::Display for Subtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(name), s) => write!(f, "{name}({})", s.wire()),
            (None, Subtype::Other(n)) if *n < 256 => write!(f, "RFB type {n}"),
            (None, s) => write!(f, "{}", s.wire()),
        }
    }
}

/// `[a, b, c]` of displayable items, for messages.
pub fn list<T: fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A server's failure reason as text for logs and messages: lossy UTF-8, trailing NULs
/// removed (QEMU counts one in the length), control characters escaped.
pub fn reason_text(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end])
        .chars()
        .flat_map(char::escape_debug)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_negotiate() {
        assert_eq!(parse_version(b"RFB 003.008\n"), Some((3, 8)));
        assert_eq!(parse_version(b"RFB 003.889\n"), Some((3, 889)));
        assert_eq!(parse_version(b"RFB 003.00x\n"), None);
        assert_eq!(parse_version(b"RFB 003.008 "), None);
        assert_eq!(parse_version(b"HTTP/1.1 400"), None);
        let cases = [
            ((3, 3), Some(RfbVersion::V3_3), Some(RfbVersion::V3_3)),
            ((3, 5), Some(RfbVersion::V3_3), Some(RfbVersion::V3_3)),
            ((3, 7), Some(RfbVersion::V3_7), Some(RfbVersion::V3_7)),
            ((3, 8), Some(RfbVersion::V3_8), Some(RfbVersion::V3_8)),
            ((3, 889), Some(RfbVersion::V3_8), None),
            ((4, 1), Some(RfbVersion::V3_8), None),
            ((3, 2), None, None),
            ((2, 9), None, None),
        ];
        for ((major, minor), server, client) in cases {
            assert_eq!(
                RfbVersion::for_server(major, minor),
                server,
                "{major}.{minor}"
            );
            assert_eq!(
                RfbVersion::for_client(major, minor),
                client,
                "{major}.{minor}"
            );
        }
    }

    #[test]
    fn subtype_numbers_and_names() {
        for n in 250..270 {
            assert_eq!(Subtype::from_wire(n).wire(), n);
        }
        assert_eq!(Subtype::from_wire(261), Subtype::X509Vnc);
        assert_eq!(Subtype::from_name("x509PLAIN"), Some(Subtype::X509Plain));
        assert_eq!(Subtype::from_name("x509"), None);
        assert_eq!(Subtype::X509None.to_string(), "X509None(260)");
        assert_eq!(Subtype::from_wire(2).to_string(), "RFB type 2");
        assert_eq!(
            list(&[SecurityType::None, SecurityType::from_wire(16)]),
            "[None(1), 16]"
        );
    }

    #[test]
    fn reasons_lose_the_trailing_nul_and_control_characters() {
        assert_eq!(
            reason_text(b"Authentication failed\0"),
            "Authentication failed"
        );
        assert_eq!(reason_text(b"a\nb\x1b\xff"), "a\\nb\\u{1b}\u{fffd}");
        assert_eq!(reason_text(b"\0\0"), "");
    }
}
