//! RFB security types and VeNCrypt subtypes with their wire numbers and names, the limits on
//! their lists, and the few fixed values of the security handshake.

use std::fmt;

/// Most security types accepted in a server's list (real servers list fewer than ten).
pub const MAX_SECURITY_TYPES: usize = 32;
/// Most VeNCrypt subtypes accepted in a server's list (Xvnc lists five).
pub const MAX_SUBTYPES: usize = 32;
/// Length of the VNC authentication challenge and response.
pub const VNC_CHALLENGE_LEN: usize = 16;
/// SecurityResult: success.
pub const SECURITY_RESULT_OK: u32 = 0;
/// SecurityResult: failure.
pub const SECURITY_RESULT_FAILED: u32 = 1;
/// The VeNCrypt version spoken: 0.2.
pub const VENCRYPT_VERSION: [u8; 2] = [0, 2];
/// The VeNCrypt subtype acknowledgement meaning "accepted" (VeNCrypt 0.2).
pub const SUBTYPE_ACK_OK: u8 = 1;

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
    /// 20: SASL.
    Sasl,
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
            20 => SecurityType::Sasl,
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
            SecurityType::Sasl => 20,
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
            SecurityType::Sasl => write!(f, "SASL(20)"),
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
    /// 263: X.509 TLS, then SASL (QEMU, libvirt and gtk-vnc number it so).
    X509Sasl,
    /// 264: anonymous TLS, then SASL.
    TlsSasl,
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
    (Subtype::X509Sasl, 263, "X509SASL"),
    (Subtype::TlsSasl, 264, "TLSSASL"),
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

    /// Whether this subtype carries SASL (TLSSASL or X509SASL).
    pub fn is_sasl(self) -> bool {
        matches!(self, Subtype::TlsSasl | Subtype::X509Sasl)
    }

    /// Whether this subtype runs TLS with certificates (the only ones the vencrypt driver
    /// uses).
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for n in 0..=255 {
            assert_eq!(SecurityType::from_wire(n).wire(), n);
        }
        assert_eq!(SecurityType::from_wire(20).to_string(), "SASL(20)");
        assert!(Subtype::from_wire(264).is_sasl() && !Subtype::X509Vnc.is_sasl());
        assert_eq!(Subtype::from_wire(263), Subtype::X509Sasl);
    }
}
