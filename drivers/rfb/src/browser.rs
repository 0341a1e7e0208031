//! The handshake towards the browser (noVNC): RFB 3.3, 3.7 or 3.8 with security type None
//! only, since the browser's websocket is already authenticated by the proxy.
//!
//! Two steps around the hypervisor side: [`exchange_version`] first (we send 3.8, the browser
//! answers its version), then, once the hypervisor side is done, [`AwaitServer::accept`]
//! (offer None) or [`AwaitServer::refuse`] (report the failure in RFB terms so that noVNC
//! shows a real message). A browser that breaks the handshake gets
//! [`WireError::Unexpected`] with what it did.

use std::io::{Read, Write};

use crate::reason::with_reason;
use crate::security::{SecurityType, SECURITY_RESULT_FAILED, SECURITY_RESULT_OK};
use crate::version::{parse_version, RfbVersion, VERSION_LEN};
use crate::wire::{read_array, read_u8, write_all, WireError};

/// The browser after the ProtocolVersion exchange, waiting for its security types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwaitServer {
    version: RfbVersion,
}

/// Sends our ProtocolVersion (3.8) and reads the browser's.
pub fn exchange_version(client: &mut (impl Read + Write)) -> Result<AwaitServer, WireError> {
    write_all(client, RfbVersion::V3_8.wire())?;
    let got: [u8; VERSION_LEN] = read_array(client)?;
    let version = parse_version(&got)
        .and_then(|(major, minor)| RfbVersion::for_client(major, minor))
        .ok_or_else(|| {
            WireError::Unexpected(format!(
                "it answered ProtocolVersion \"{}\", not RFB 3.3, 3.7 or 3.8",
                got.escape_ascii()
            ))
        })?;
    Ok(AwaitServer { version })
}

impl AwaitServer {
    /// The RFB version the browser speaks.
    pub fn version(&self) -> RfbVersion {
        self.version
    }

    /// Completes the browser's security handshake with type None: 3.3 gets the type
    /// (no SecurityResult), 3.7 the list and no SecurityResult, 3.8 the list and a successful
    /// SecurityResult. The browser's ClientInit follows, for the relay.
    pub fn accept(self, client: &mut (impl Read + Write)) -> Result<(), WireError> {
        match self.version {
            RfbVersion::V3_3 => {
                write_all(client, &u32::from(SecurityType::None.wire()).to_be_bytes())
            }
            RfbVersion::V3_7 => offer_none(client),
            RfbVersion::V3_8 => {
                offer_none(client)?;
                write_all(client, &SECURITY_RESULT_OK.to_be_bytes())
            }
        }
    }

    /// Tells the browser the session failed, with `reason`: 3.8 gets a failed SecurityResult
    /// with the reason (after offering None and reading its choice); 3.7 an empty security
    /// type list with the reason; 3.3 security type 0 (invalid) with the reason. Best effort:
    /// a browser that went away is only logged.
    pub fn refuse(self, client: &mut (impl Read + Write), reason: &str) {
        let sent = match self.version {
            RfbVersion::V3_3 => write_all(client, &with_reason(&[0; 4], reason)),
            RfbVersion::V3_7 => write_all(client, &with_reason(&[0], reason)),
            RfbVersion::V3_8 => offer_none(client).and_then(|()| {
                let result = SECURITY_RESULT_FAILED.to_be_bytes();
                write_all(client, &with_reason(&result, reason))
            }),
        };
        if let Err(e) = sent {
            log::debug!("could not tell the browser why the session failed: {e}");
        }
    }
}

/// Offers the one security type None and reads the browser's choice, which must be None.
fn offer_none(client: &mut (impl Read + Write)) -> Result<(), WireError> {
    write_all(client, &[1, SecurityType::None.wire()])?;
    match SecurityType::from_wire(read_u8(client)?) {
        SecurityType::None => Ok(()),
        other => Err(WireError::Unexpected(format!(
            "it chose security type {other}, but only None(1) was offered"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::script;

    /// Runs the browser side against `input`, accepting or refusing; returns what was sent
    /// after our ProtocolVersion.
    fn browser(input: &[u8], refuse: Option<&str>) -> Result<Vec<u8>, WireError> {
        let mut s = script(input);
        let state = exchange_version(&mut s)?;
        match refuse {
            None => state.accept(&mut s)?,
            Some(reason) => state.refuse(&mut s, reason),
        }
        assert_eq!(&s.output[..12], b"RFB 003.008\n");
        Ok(s.output[12..].to_vec())
    }

    #[test]
    fn accept_per_version() {
        assert_eq!(browser(b"RFB 003.003\n", None).unwrap(), [0, 0, 0, 1]);
        assert_eq!(browser(b"RFB 003.007\n\x01", None).unwrap(), [1, 1]);
        assert_eq!(
            browser(b"RFB 003.008\n\x01", None).unwrap(),
            [1, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn refuse_per_version() {
        assert_eq!(
            browser(b"RFB 003.003\n", Some("no")).unwrap(),
            b"\0\0\0\0\0\0\0\x02no"
        );
        assert_eq!(
            browser(b"RFB 003.007\n", Some("no")).unwrap(),
            b"\0\0\0\0\x02no"
        );
        assert_eq!(
            browser(b"RFB 003.008\n\x01", Some("no")).unwrap(),
            b"\x01\x01\0\0\0\x01\0\0\0\x02no"
        );
    }

    #[test]
    fn client_mistakes() {
        let e = browser(b"RFB 003.008\n\x02", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it chose security type VncAuth(2), but only None(1) was offered"
        );
        let e = browser(b"GET / HTTP/1.1\r\n", None).unwrap_err();
        assert!(
            e.to_string().contains("ProtocolVersion \"GET / HTTP/1\""),
            "{e}"
        );
        let e = browser(b"RFB 004.001\n", None).unwrap_err();
        assert!(e.to_string().contains("not RFB 3.3, 3.7 or 3.8"), "{e}");
        let e = browser(b"RFB 003", None).unwrap_err();
        assert!(
            matches!(&e, WireError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof),
            "{e:?}"
        );
    }
}
