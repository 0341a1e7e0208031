//! What the browser is told when a console fails after the upgrade: a generic phrase and the
//! session number, never a host name, address, certificate subject or configuration hint. The
//! proxy's log has the detail under the same session number.

/// Every phrase the browser may be shown for a failed console (`CgStatus::browser_phrase`).
pub const PHRASES: &[&str] = &[
    "the console did not answer in time",
    "the secure connection to the console failed",
    "the console refused the credentials",
    "the console offers no security the proxy accepts",
    "the browser broke the console protocol",
    "the console connection failed",
    "console proxy error",
];

/// Asserts that a websocket close reason is one of [`PHRASES`] followed by ` (session N)`;
/// returns N.
pub fn session_of_close_reason(reason: &str) -> u64 {
    PHRASES
        .iter()
        .find_map(|phrase| session_number(reason, &format!("{phrase} (session "), ")"))
        .unwrap_or_else(|| panic!("close reason {reason:?} is not a generic phrase (session N)"))
}

/// Asserts that a websocket close reason is exactly `PHRASE (session N)`; returns N.
pub fn assert_close_reason(reason: &str, phrase: &str) -> u64 {
    session_number(reason, &format!("{phrase} (session "), ")")
        .unwrap_or_else(|| panic!("close reason {reason:?} is not {phrase:?} (session N)"))
}

/// Asserts that an RFB failure reason sent by a driver is exactly
/// `Console unavailable: PHRASE (session N).` (as is, or after the prefix with which
/// [`crate::rfb::handshake`] reports it, such as `SecurityResult 1: `); returns N.
pub fn assert_rfb_reason(reason: &str, phrase: &str) -> u64 {
    let reason = &reason[reason.find("Console unavailable: ").unwrap_or(0)..];
    let prefix = format!("Console unavailable: {phrase} (session ");
    session_number(reason, &prefix, ").").unwrap_or_else(|| {
        panic!(
            "RFB failure reason {reason:?} is not \"Console unavailable: {phrase} (session N).\""
        )
    })
}

fn session_number(text: &str, prefix: &str, suffix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// Asserts that an RFB failure reason is `Console unavailable: ` + one of [`PHRASES`] +
/// ` (session N).` (after any prefix the RFB client adds); returns N.
pub fn session_of_rfb_reason(reason: &str) -> u64 {
    let start = reason
        .find("Console unavailable: ")
        .unwrap_or_else(|| panic!("RFB failure reason {reason:?} is not generic"));
    let generic = &reason[start + "Console unavailable: ".len()..];
    let generic = generic
        .strip_suffix('.')
        .unwrap_or_else(|| panic!("RFB failure reason {reason:?} does not end in '.'"));
    session_of_close_reason(generic)
}
