//! Failure reasons: a server's, read as safe text, and ours, framed for the browser (a u32
//! length and the bytes, cut to [`MAX_REASON_LEN`]).

use consolegate_driver_api::text::truncate_utf8;

/// Longest failure reason accepted from a server or sent to a browser, in bytes.
pub const MAX_REASON_LEN: usize = 4096;

/// A server's failure reason as text for logs and messages: lossy UTF-8, trailing NULs
/// removed (QEMU counts one in the length), control characters escaped.
pub fn reason_text(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end])
        .chars()
        .flat_map(char::escape_debug)
        .collect()
}

/// `prefix`, then `reason` as a u32 length and its bytes (cut to [`MAX_REASON_LEN`] at a
/// character boundary).
pub fn with_reason(prefix: &[u8], reason: &str) -> Vec<u8> {
    let reason = truncate_utf8(reason, MAX_REASON_LEN);
    let mut out = prefix.to_vec();
    // reason.len() <= MAX_REASON_LEN, which fits in a u32.
    out.extend_from_slice(&(reason.len() as u32).to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_the_trailing_nul_and_control_characters() {
        assert_eq!(
            reason_text(b"Authentication failed\0"),
            "Authentication failed"
        );
        assert_eq!(reason_text(b"a\nb\x1b\xff"), "a\\nb\\u{1b}\u{fffd}");
        assert_eq!(reason_text(b"\0\0"), "");
    }

    #[test]
    fn our_reasons_are_framed_and_cut_at_a_character_boundary() {
        assert_eq!(with_reason(&[1], "no"), b"\x01\0\0\0\x02no");
        let long = "é".repeat(MAX_REASON_LEN);
        let framed = with_reason(&[], &long);
        assert_eq!(framed.len(), 4 + MAX_REASON_LEN);
        assert_eq!(&framed[..4], &(MAX_REASON_LEN as u32).to_be_bytes());
    }
}
