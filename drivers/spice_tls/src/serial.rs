//! The serial console's settle window: how a certificate QEMU refuses is told apart from a
//! console that accepted the session.
//!
//! QEMU's TLS chardev (QEMU 7.2 and 10, TLS 1.2 and 1.3) completes the TLS handshake, then
//! checks the client certificate, and when it refuses it (none, another CA, or a DN its
//! `tls-authz` does not admit) closes the TCP connection without an alert. A serial console
//! that accepted the session sends nothing until the guest writes. So the driver reads for up
//! to [`SERIAL_SETTLE`]: end of stream means refused; data (an HMP monitor's greeting, guest
//! output) or silence means accepted, and the data is relayed first.

use std::io::{self, Read};
use std::time::Duration;

use consolegate_driver_api::{ConsoleSocket, Kind};
use consolegate_tls_client::{BlockingTls, Deadline, TlsChannel, TlsError};

use crate::error::SpiceTlsError;

/// How long a serial session waits after the TLS handshake for QEMU to refuse the client
/// certificate. It delays every serial session by this much, unless the console speaks first.
pub const SERIAL_SETTLE: Duration = Duration::from_millis(300);

/// Most bytes read during the settle window (a monitor's greeting is about 60).
const MAX_EARLY: usize = 4096;

/// Waits up to [`SERIAL_SETTLE`] (and never past `deadline`) for the console's first bytes or
/// its close; returns what it sent. `presents_certificate` picks the refusal's wording.
pub(crate) fn settle(
    tls: &mut TlsChannel<ConsoleSocket>,
    deadline: Deadline,
    presents_certificate: bool,
) -> Result<Vec<u8>, SpiceTlsError> {
    let window = SERIAL_SETTLE.min(deadline.remaining().unwrap_or(Duration::ZERO));
    let mut early = vec![0u8; MAX_EARLY];
    match BlockingTls::new(tls, Deadline::after(window)).read(&mut early) {
        Ok(0) if presents_certificate => Err(SpiceTlsError::SerialCertificateRefused),
        Ok(0) => Err(SpiceTlsError::SerialCertificateRequired),
        Ok(n) => {
            early.truncate(n);
            Ok(early)
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(Vec::new()),
        Err(e) => Err(SpiceTlsError::handshake(Kind::Serial, TlsError::from_io(e))),
    }
}
