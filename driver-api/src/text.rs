//! Cutting text to a byte limit without splitting a UTF-8 character, shared by the proxy and
//! the drivers (close reasons, RFB failure reasons and error buffers all have byte limits).

/// `text` cut to at most `max` bytes at a character boundary.
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut n = text.len().min(max);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    &text[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_character_boundary() {
        assert_eq!(truncate_utf8("abc", 10), "abc");
        assert_eq!(truncate_utf8("abc", 2), "ab");
        // "é" is two bytes: cutting inside it keeps neither byte.
        assert_eq!(truncate_utf8("aé", 2), "a");
        assert_eq!(truncate_utf8("aé", 0), "");
    }
}
