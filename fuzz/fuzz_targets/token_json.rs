//! libvirt-console-proxy's JSON token file (`token_source = json:PATH`,
//! `token::json::JsonFile`): an object mapping each token to a console object or target string.
//!
//! Input: the file's bytes, written to a scratch file and opened as the proxy opens it.
//! Properties: a file that is not a JSON object does not open, and its error never quotes the
//! file; in a file that opens, every token resolves to what `console_from_json` makes of its
//! value (an entry whose token breaks the token format is malformed: `usable_entry_token`), or to a `Malformed` error named by the token's hash (never the token) whose detail
//! repeats the token and does not depend on the entry's password.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use consolegate::token::format::usable_entry_token;
use consolegate::token::json::{console_from_json, JsonFile};
use consolegate::token::{token_hash, TokenError, TokenSource};
use consolegate_fuzz::{scratch_file, with_other_password};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| scratch_file("token-json"))
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(scratch(), data).expect("write the scratch token file");
    let opened = JsonFile::open(scratch());
    let parsed: Option<serde_json::Map<String, Value>> = std::str::from_utf8(data)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok());
    let Some(map) = parsed else {
        match opened {
            Err(TokenError::Malformed { detail, .. }) | Err(TokenError::Unavailable(detail)) => {
                assert_no_quote(&detail, data)
            }
            Err(e) => panic!("unexpected error {e:?}"),
            Ok(_) => panic!("a file that is not a JSON object opened"),
        }
        return;
    };
    let source = opened.expect("a JSON object opens");
    assert_eq!(
        source.problems().len(),
        map.iter().filter(|(t, v)| entry(t, v).is_err()).count()
    );
    for (token, value) in &map {
        match (source.lookup(token), entry(token, value)) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(TokenError::Malformed { location, detail }), Err(want)) => {
                assert_eq!(detail, want);
                // The detail comes from the value alone (it equals console_from_json's), so it
                // cannot name the token; the location names it by hash only.
                assert_eq!(
                    location,
                    format!(
                        "{} entry for token hash {}",
                        scratch().display(),
                        token_hash(token)
                    )
                );
                if let Some(other) = with_other_password(value) {
                    let again = entry(token, &other).err();
                    assert_eq!(
                        again.as_ref(),
                        Some(&detail),
                        "the error depends on the password"
                    );
                }
            }
            (got, want) => panic!("token {token:?}: got {got:?}, want {want:?}"),
        }
    }
});

/// What the file's entry for `token` should be.
fn entry(token: &str, value: &Value) -> Result<consolegate::token::Console, String> {
    usable_entry_token(token).and_then(|()| console_from_json(value))
}

/// A syntax error says where, never what: no run of 16 letters and digits of the file is in `detail`.
fn assert_no_quote(detail: &str, data: &[u8]) {
    for window in data.windows(16) {
        if let Ok(w) = std::str::from_utf8(window) {
            if w.chars().all(|c| c.is_ascii_alphanumeric()) {
                assert!(!detail.contains(w), "{detail:?} quotes the file");
            }
        }
    }
}
