//! websockify's token file (`token_source = file:PATH`, `token::file::TokenFile`): one
//! `TOKEN: TARGET` a line, `#` comments and blank lines ignored.
//!
//! Input: the file's bytes, written to a scratch file and opened as the proxy opens it.
//! Properties: a file that is not UTF-8 is unavailable (not half-read); every token named on a
//! line resolves to what its last line's target parses to (`parse_target`; a token that breaks
//! the token format makes the entry malformed, `usable_entry_token`), or to a
//! `Malformed` error that names the file and line and never the token; a token not in the file
//! is unknown; every malformed line is listed by `problems()`.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use consolegate::token::file::TokenFile;
use consolegate::token::format::usable_entry_token;
use consolegate::token::{parse_target, TokenError, TokenSource};
use consolegate_fuzz::scratch_file;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| scratch_file("token-file"))
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(scratch(), data).expect("write the scratch token file");
    let opened = TokenFile::open(scratch());
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(matches!(opened, Err(TokenError::Unavailable(_))));
        return;
    };
    let source = opened.expect("a UTF-8 token file opens");

    // The format, line by line: the last line for a token wins.
    let mut expected: HashMap<&str, (usize, Result<_, String>)> = HashMap::new();
    let mut bad_lines = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            None => bad_lines += 1,
            Some((token, target)) => {
                let token = token.trim();
                let entry = usable_entry_token(token).and_then(|()| parse_target(target));
                expected.insert(token, (index + 1, entry));
            }
        }
    }
    let malformed = expected.values().filter(|(_, r)| r.is_err()).count();
    assert_eq!(source.problems().len(), bad_lines + malformed);
    for (token, (line, result)) in &expected {
        match (source.lookup(token), result) {
            (Ok(got), Ok(want)) => assert_eq!(&got, want),
            (Err(TokenError::Malformed { location, detail }), Err(want)) => {
                assert_eq!(&detail, want);
                assert_eq!(location, format!("{}:{line}", scratch().display()));
            }
            (got, want) => panic!("token {token:?}: got {got:?}, want {want:?}"),
        }
    }
    let absent = "no-such-token-\u{1}";
    if !expected.contains_key(absent) {
        assert_eq!(source.lookup(absent), Err(TokenError::Unknown));
    }
});
