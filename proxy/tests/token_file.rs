//! `token_source = file:PATH` through `token::open`, as the daemon opens it: a token that breaks
//! the token format is refused before the file's table is asked, even when the file names it.

mod token_support;

use consolegate::token::format::FormatViolation;
use consolegate::token::TokenError;
use consolegate_tests::scratch::TempDir;
use token_support::open;

#[test]
fn a_malformed_token_never_reaches_the_token_file() {
    let dir = TempDir::new("file-malformed");
    let path = dir.join("tokens");
    let long = "a".repeat(257);
    std::fs::write(&path, format!("..: h:1\n.: h:2\n{long}: h:3\nvm-1: h:4\n")).unwrap();
    let src = open(&format!("file:{}", path.display()), "");
    assert_eq!(
        src.lookup(".."),
        Err(TokenError::BadFormat(FormatViolation::DotSegment))
    );
    assert_eq!(
        src.lookup("."),
        Err(TokenError::BadFormat(FormatViolation::DotSegment))
    );
    assert_eq!(
        src.lookup(&long),
        Err(TokenError::BadFormat(FormatViolation::TooLong))
    );
    assert_eq!(
        src.lookup("vm 1"),
        Err(TokenError::BadFormat(FormatViolation::BadCharacter))
    );
    assert_eq!(src.lookup("vm-1").unwrap().port, 4);
}
