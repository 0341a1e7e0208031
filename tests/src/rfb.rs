//! A minimal RFB (VNC) client over any byte stream, usually a [`Ws`](crate::ws::Ws): the
//! version exchange (3.3, 3.7 or 3.8), security type None, ClientInit (shared) and ServerInit,
//! then a FramebufferUpdateRequest and the header of the FramebufferUpdate that answers it.
//! Errors say which step failed and what arrived.

use std::io::{Read, Write};
use std::time::Duration;

/// Longest desktop name accepted from a server.
const MAX_NAME: u32 = 4096;

/// The protocol version the client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// RFB 3.3: the server picks the security type.
    V3_3,
    /// RFB 3.7: the client picks; no SecurityResult after None.
    V3_7,
    /// RFB 3.8: the client picks; SecurityResult always.
    V3_8,
}

impl Version {
    fn greeting(self) -> &'static [u8; 12] {
        match self {
            Version::V3_3 => b"RFB 003.003\n",
            Version::V3_7 => b"RFB 003.007\n",
            Version::V3_8 => b"RFB 003.008\n",
        }
    }
}

/// What the server said in ServerInit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInit {
    /// The server's version greeting, e.g. `RFB 003.008`.
    pub server_version: String,
    /// Framebuffer width.
    pub width: u16,
    /// Framebuffer height.
    pub height: u16,
    /// Bits per pixel of the pixel format.
    pub bits_per_pixel: u8,
    /// Desktop name, e.g. `QEMU` or `QEMU (NAME)`.
    pub name: String,
}

/// Runs the handshake as `version` with security type None and `shared = 1`.
pub fn handshake<S: Read + Write>(s: &mut S, version: Version) -> Result<ServerInit, String> {
    let greeting = read_n(s, 12, "the server's version greeting")?;
    let server_version = String::from_utf8_lossy(&greeting).trim_end().to_string();
    if !server_version.starts_with("RFB ") {
        return Err(format!("not an RFB greeting: {greeting:?}"));
    }
    send(s, version.greeting(), "our version")?;
    if version == Version::V3_3 {
        match read_u32(s, "the security type")? {
            1 => {}
            0 => return Err(format!("server refused: {}", read_reason(s)?)),
            other => return Err(format!("server chose security type {other}, not None (1)")),
        }
    } else {
        let n = read_n(s, 1, "the number of security types")?[0];
        if n == 0 {
            return Err(format!("server refused: {}", read_reason(s)?));
        }
        let types = read_n(s, usize::from(n), "the security types")?;
        if !types.contains(&1) {
            return Err(format!(
                "server offers security types {types:?}, not None (1)"
            ));
        }
        send(s, &[1], "the security type")?;
        if version == Version::V3_8 {
            match read_u32(s, "the SecurityResult")? {
                0 => {}
                code => return Err(format!("SecurityResult {code}: {}", read_reason(s)?)),
            }
        }
    }
    send(s, &[1], "ClientInit")?;
    let head = read_n(s, 24, "ServerInit")?;
    let name_len = u32::from_be_bytes([head[20], head[21], head[22], head[23]]);
    if name_len > MAX_NAME {
        return Err(format!(
            "ServerInit name length {name_len} exceeds {MAX_NAME}"
        ));
    }
    let name = read_n(s, name_len as usize, "the desktop name")?;
    Ok(ServerInit {
        server_version,
        width: u16::from_be_bytes([head[0], head[1]]),
        height: u16::from_be_bytes([head[2], head[3]]),
        bits_per_pixel: head[4],
        name: String::from_utf8_lossy(&name).into_owned(),
    })
}

/// Sends a non-incremental FramebufferUpdateRequest for the whole `width` x `height` screen.
pub fn request_update<S: Write>(s: &mut S, width: u16, height: u16) -> Result<(), String> {
    let mut msg = vec![3u8, 0, 0, 0, 0, 0];
    msg.extend(width.to_be_bytes());
    msg.extend(height.to_be_bytes());
    send(s, &msg, "FramebufferUpdateRequest")
}

/// Reads the next server message's header, which must be a FramebufferUpdate: its number of
/// rectangles. The rectangles themselves are left unread.
pub fn read_update_header<S: Read>(s: &mut S) -> Result<u16, String> {
    let head = read_n(s, 4, "the FramebufferUpdate header")?;
    if head[0] != 0 {
        return Err(format!(
            "expected a FramebufferUpdate (type 0), got message type {}",
            head[0]
        ));
    }
    Ok(u16::from_be_bytes([head[2], head[3]]))
}

fn send<S: Write>(s: &mut S, bytes: &[u8], what: &str) -> Result<(), String> {
    s.write_all(bytes)
        .and_then(|()| s.flush())
        .map_err(|e| format!("sending {what}: {e}"))
}

/// Reads exactly `n` bytes; end of stream is an error naming `what`.
pub fn read_n<S: Read>(s: &mut S, n: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err(format!("stream ended reading {what} ({got} of {n} bytes)")),
            Ok(k) => got += k,
            Err(e) => return Err(format!("reading {what}: {e}")),
        }
    }
    Ok(buf)
}

fn read_u32<S: Read>(s: &mut S, what: &str) -> Result<u32, String> {
    let b = read_n(s, 4, what)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A u32-length-prefixed failure reason.
fn read_reason<S: Read>(s: &mut S) -> Result<String, String> {
    let len = read_u32(s, "the reason length")?.min(MAX_NAME);
    Ok(String::from_utf8_lossy(&read_n(s, len as usize, "the reason")?).into_owned())
}

/// The first 12 bytes the VNC server on `127.0.0.1:port` sends (its version greeting, e.g.
/// `RFB 003.008\n`), or what went wrong, in parentheses.
pub fn server_greeting(port: u16) -> String {
    let addr = (std::net::Ipv4Addr::LOCALHOST, port).into();
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return "(connect failed)".into();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 12];
    match s.read_exact(&mut buf) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(e) => format!("(read failed: {e})"),
    }
}
