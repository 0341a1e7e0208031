//! QEMU's SASL messages on the RFB wire (security type 20, and VeNCrypt X509SASL inside
//! TLS), as QEMU's `ui/vnc-auth-sasl.c`, libvirt and gtk-vnc speak them:
//!
//! 1. server: the mechanism list, a u32 length and comma-separated names ([`read_mechlist`]);
//! 2. client: the chosen mechanism (u32 length and name), then its first data
//!    ([`write_start`]);
//! 3. server: data and a "complete" byte ([`read_reply`]);
//! 4. client: the next step's data ([`write_step`]), and so on until the server says complete;
//! 5. server: the SecurityResult (read by the handshake).
//!
//! Data is a u32 length and the bytes with a trailing NUL counted in the length (from QEMU, the
//! byte after the data, whatever it is); a length of 0 means "no data", which SASL
//! distinguishes from empty data. Every length is checked against
//! its limit before anything is allocated.

use std::io::{Read, Write};

use consolegate_rfb::wire::{read_items, read_u32, read_u8, write_all, WireError};

/// Longest mechanism list accepted from a server, in bytes (QEMU's is a few dozen).
pub const MAX_MECHLIST_LEN: usize = 4096;
/// Longest SASL data accepted from a server in one message, in bytes (a Kerberos AP-REP is a
/// few hundred; QEMU's own limit is 1 MiB).
pub const MAX_DATA_LEN: usize = 64 * 1024;
/// Longest mechanism name (RFC 4422 §3.1).
pub const MAX_MECHANISM_LEN: usize = 20;
/// Most mechanisms accepted in a list.
pub const MAX_MECHANISMS: usize = 64;

/// Whether `name` is an RFC 4422 mechanism name: 1 to 20 of `A-Z 0-9 - _`.
pub fn is_mechanism_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MECHANISM_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Reads the server's mechanism list: names separated by commas or spaces, upper-cased.
pub fn read_mechlist(io: &mut impl Read) -> Result<Vec<String>, WireError> {
    let len = usize::try_from(read_u32(io)?).unwrap_or(usize::MAX);
    let bytes = read_items(io, len, 1, MAX_MECHLIST_LEN, "SASL mechanism list")?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| WireError::Unexpected("the SASL mechanism list is not text".into()))?;
    let mut names = Vec::new();
    for name in text
        .trim_end_matches('\0')
        .split([',', ' '])
        .filter(|n| !n.is_empty())
    {
        let name = name.to_ascii_uppercase();
        if !is_mechanism_name(&name) {
            return Err(WireError::Unexpected(format!(
                "the SASL mechanism list holds {:?}, which is not a mechanism name",
                name.escape_debug().to_string()
            )));
        }
        if names.len() == MAX_MECHANISMS {
            return Err(WireError::TooLong {
                what: "SASL mechanism list",
                len: names.len() as u64 + 1,
                max: MAX_MECHANISMS,
            });
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(WireError::Unexpected(
            "the SASL mechanism list is empty".into(),
        ));
    }
    Ok(names)
}

/// `data` framed: u32 length counting a trailing NUL, the bytes, the NUL; `None` is length 0.
fn framed(data: Option<&[u8]>, out: &mut Vec<u8>) {
    match data {
        // Our SASL data comes from cyrus-sasl, far below 4 GiB.
        Some(d) => {
            out.extend_from_slice(&(d.len() as u32 + 1).to_be_bytes());
            out.extend_from_slice(d);
            out.push(0);
        }
        None => out.extend_from_slice(&0u32.to_be_bytes()),
    }
}

/// Sends the chosen mechanism and its first data.
pub fn write_start(
    io: &mut impl Write,
    mechanism: &str,
    data: Option<&[u8]>,
) -> Result<(), WireError> {
    let mut msg = Vec::with_capacity(8 + mechanism.len() + data.map_or(0, |d| d.len() + 1));
    // A mechanism name is at most 20 bytes.
    msg.extend_from_slice(&(mechanism.len() as u32).to_be_bytes());
    msg.extend_from_slice(mechanism.as_bytes());
    framed(data, &mut msg);
    write_all(io, &msg)
}

/// Sends one step's data.
pub fn write_step(io: &mut impl Write, data: Option<&[u8]>) -> Result<(), WireError> {
    let mut msg = Vec::with_capacity(5 + data.map_or(0, <[u8]>::len));
    framed(data, &mut msg);
    write_all(io, &msg)
}

/// The server's answer to a start or a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its data, without the trailing NUL; `None` when it sent none.
    pub data: Option<Vec<u8>>,
    /// Whether the server considers the exchange complete.
    pub complete: bool,
}

/// Reads the server's data and its "complete" byte (0 or 1).
pub fn read_reply(io: &mut impl Read) -> Result<Reply, WireError> {
    let len = usize::try_from(read_u32(io)?).unwrap_or(usize::MAX);
    let data = match len {
        0 => None,
        n => {
            let mut bytes = read_items(io, n, 1, MAX_DATA_LEN, "SASL server data")?;
            // The length counts one byte past the data, meant to be a NUL; QEMU copies
            // whatever byte follows cyrus-sasl's output (binary for GSSAPI), so it is dropped
            // unread, as gtk-vnc and libvirt do.
            bytes.pop();
            Some(bytes)
        }
    };
    let complete = match read_u8(io)? {
        0 => false,
        1 => true,
        other => {
            return Err(WireError::Unexpected(format!(
                "the SASL \"complete\" flag is {other}, not 0 or 1"
            )))
        }
    };
    Ok(Reply { data, complete })
}

#[cfg(test)]
mod tests {
    use super::*;
    use consolegate_rfb::script::script;

    #[test]
    fn qemus_mechanism_list() {
        let mut s = script(b"\0\0\0\x14GSSAPI,SCRAM-SHA-256");
        assert_eq!(read_mechlist(&mut s).unwrap(), ["GSSAPI", "SCRAM-SHA-256"]);
        let mut s = script(b"\0\0\0\x0fplain gssapi\0\0\0");
        assert_eq!(read_mechlist(&mut s).unwrap(), ["PLAIN", "GSSAPI"]);
    }

    #[test]
    fn bad_mechanism_lists() {
        let e = read_mechlist(&mut script(b"\0\x01\0\x01")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SASL mechanism list length 65537 exceeds the limit of 4096"
        );
        let e = read_mechlist(&mut script(b"\0\0\0\x01,")).unwrap_err();
        assert_eq!(e.to_string(), "the SASL mechanism list is empty");
        let e = read_mechlist(&mut script(b"\0\0\0\x05GSS\nX")).unwrap_err();
        assert!(e.to_string().contains("not a mechanism name"), "{e}");
        let e = read_mechlist(&mut script(b"\0\0\0\x02\xff\xfe")).unwrap_err();
        assert!(e.to_string().contains("not text"), "{e}");
    }

    #[test]
    fn start_and_step_frame_data_with_a_nul() {
        let mut s = script(b"");
        write_start(&mut s, "GSSAPI", Some(b"tok")).unwrap();
        assert_eq!(s.output, b"\0\0\0\x06GSSAPI\0\0\0\x04tok\0");
        let mut s = script(b"");
        write_start(&mut s, "SCRAM-SHA-256", None).unwrap();
        assert_eq!(s.output, b"\0\0\0\x0dSCRAM-SHA-256\0\0\0\0");
        let mut s = script(b"");
        write_step(&mut s, Some(b"")).unwrap();
        assert_eq!(s.output, b"\0\0\0\x01\0");
    }

    #[test]
    fn replies() {
        let r = read_reply(&mut script(b"\0\0\0\x03ok\0\x01")).unwrap();
        assert_eq!(
            r,
            Reply {
                data: Some(b"ok".to_vec()),
                complete: true
            }
        );
        let r = read_reply(&mut script(b"\0\0\0\0\0")).unwrap();
        assert_eq!((r.data, r.complete), (None, false));
        // QEMU's byte after binary data is not always a NUL.
        let r = read_reply(&mut script(b"\0\0\0\x03\x60\x82\x07\x01")).unwrap();
        assert_eq!(r.data.unwrap(), [0x60, 0x82]);
        let e = read_reply(&mut script(b"\0\0\0\0\x02")).unwrap_err();
        assert!(e.to_string().contains("flag is 2"), "{e}");
        let e = read_reply(&mut script(b"\xff\xff\xff\xff")).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit of 65536"), "{e}");
    }
}
