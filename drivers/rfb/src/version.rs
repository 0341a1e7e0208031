//! RFB ProtocolVersion (RFC 6143 §7.1.1): the versions there are, which one to speak with a
//! server or a browser, and parsing the 12-byte message.

use std::fmt;

/// Length of a ProtocolVersion message (`"RFB xxx.yyy\n"`).
pub const VERSION_LEN: usize = 12;

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
}
