//! The token's own format, checked once before any source is asked: a token that no issuer
//! produces never reaches a token file, a JSON file, a REST resolver's URL or a Redis key.
//!
//! A well-formed token is 1 to [`MAX_TOKEN_LEN`] bytes of RFC 3986's unreserved characters,
//! `A-Z a-z 0-9 - . _ ~`, and is not `.` or `..` (which a REST resolver's URL would read as a
//! path step). That covers what real issuers hand out: nova's and libvirt-console-proxy's UUIDs
//! (36 characters), websockify's token words, and base64url or hex secrets. Standard base64's
//! `+`, `/` and `=` are refused: `+` already turns into a space in a query string, so such a
//! token does not survive the URL anyway; issue base64url instead.
//!
//! [`open`](super::open) wraps every source in [`FormatChecked`], so the rule has one home. The
//! browser gets 400 `malformed token`: the rule is public (this page), so the answer says
//! nothing about which tokens exist.

use super::{Console, TokenError, TokenSource};

/// The longest token accepted, in bytes. Real tokens are far shorter (a UUID is 36).
pub const MAX_TOKEN_LEN: usize = 256;

/// Which rule of the token format a token breaks. Never holds the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatViolation {
    /// The token is the empty string.
    #[error("the token is empty")]
    Empty,
    /// The token is longer than [`MAX_TOKEN_LEN`] bytes.
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// The token has a byte outside `A-Z a-z 0-9 - . _ ~`.
    #[error("the token has a character outside A-Z a-z 0-9 - . _ ~")]
    BadCharacter,
    /// The token is `.` or `..`.
    #[error("the token is '.' or '..'")]
    DotSegment,
}

/// Checks `token` against the token format (see the module documentation).
pub fn check_token_format(token: &str) -> Result<(), FormatViolation> {
    if token.is_empty() {
        return Err(FormatViolation::Empty);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(FormatViolation::TooLong);
    }
    if !token.bytes().all(is_token_byte) {
        return Err(FormatViolation::BadCharacter);
    }
    if token == "." || token == ".." {
        return Err(FormatViolation::DotSegment);
    }
    Ok(())
}

/// For token files: `Ok` when an entry's token can be used, else what to report for the entry
/// (a token that breaks the format can never be asked for, so its entry is dead).
pub fn usable_entry_token(token: &str) -> Result<(), String> {
    check_token_format(token).map_err(|v| format!("{v}, so no request can use this entry"))
}

/// Whether `b` is one of RFC 3986's unreserved characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// A token source that refuses malformed tokens with [`TokenError::BadFormat`] before asking
/// the source it wraps, to look them up or to consume them.
pub struct FormatChecked {
    inner: Box<dyn TokenSource>,
}

impl FormatChecked {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn TokenSource>) -> Self {
        Self { inner }
    }
}

impl TokenSource for FormatChecked {
    fn lookup(&self, token: &str) -> Result<Console, TokenError> {
        check_token_format(token).map_err(TokenError::BadFormat)?;
        self.inner.lookup(token)
    }

    fn consume(&self, token: &str, console: &Console) -> Result<(), TokenError> {
        check_token_format(token).map_err(TokenError::BadFormat)?;
        self.inner.consume(token, console)
    }

    fn reload(&self) -> Result<(), TokenError> {
        self.inner.reload()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn check(&self) -> Result<(), TokenError> {
        self.inner.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Kind;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn uuids_and_websockify_words_are_well_formed() {
        for token in [
            "0b9f6a3c-6d2e-4d6b-9c55-8a1f1f0c2e7d",
            "vm1",
            "a",
            "Tok_en.v2~x",
            "...",
            "a..b",
            "dGhpcyBpcyBiYXNlNjR1cmw-_",
        ] {
            assert_eq!(check_token_format(token), Ok(()), "{token}");
        }
    }

    #[test]
    fn the_empty_token_is_refused() {
        assert_eq!(check_token_format(""), Err(FormatViolation::Empty));
    }

    #[test]
    fn a_token_longer_than_the_maximum_is_refused() {
        assert_eq!(check_token_format(&"a".repeat(MAX_TOKEN_LEN)), Ok(()));
        assert_eq!(
            check_token_format(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(FormatViolation::TooLong)
        );
        assert_eq!(
            check_token_format(&"a".repeat(1 << 20)),
            Err(FormatViolation::TooLong)
        );
    }

    #[test]
    fn characters_outside_the_unreserved_set_are_refused() {
        for token in [
            "a b", "a/b", "a+b", "a=b", "a%2F", "a:b", "a\0b", "a\nb", "é", "a*", "{x}", "\\",
        ] {
            assert_eq!(
                check_token_format(token),
                Err(FormatViolation::BadCharacter),
                "{token:?}"
            );
        }
    }

    #[test]
    fn dot_and_dot_dot_are_refused() {
        assert_eq!(check_token_format("."), Err(FormatViolation::DotSegment));
        assert_eq!(check_token_format(".."), Err(FormatViolation::DotSegment));
    }

    #[test]
    fn messages_never_repeat_the_token() {
        for token in ["secret token", "..", &"s".repeat(300)] {
            let shown = check_token_format(token).unwrap_err().to_string();
            assert!(
                !shown.contains("secret") && !shown.contains("sss"),
                "{shown}"
            );
        }
    }

    /// Counts lookups.
    struct Counting(Arc<AtomicUsize>);

    impl TokenSource for Counting {
        fn lookup(&self, _: &str) -> Result<Console, TokenError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Console::new(Kind::Vnc, "h", 1))
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    #[test]
    fn a_malformed_token_never_reaches_the_source() {
        let calls = Arc::new(AtomicUsize::new(0));
        let src = FormatChecked::new(Box::new(Counting(calls.clone())));
        assert_eq!(
            src.lookup(".."),
            Err(TokenError::BadFormat(FormatViolation::DotSegment))
        );
        assert_eq!(
            src.lookup("a/b"),
            Err(TokenError::BadFormat(FormatViolation::BadCharacter))
        );
        let console = Console::new(Kind::Vnc, "h", 1);
        assert_eq!(
            src.consume("..", &console),
            Err(TokenError::BadFormat(FormatViolation::DotSegment))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(src.lookup("good-token").is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
