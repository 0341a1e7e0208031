//! A Redis key's value (`token::redis::console_from_value`, what `RedisSource::take` applies
//! to the value its take script returns): a console object or target string in JSON, or a
//! plain target.
//!
//! Input: one byte (bit 0: whether the take script consumed the key), then the value.
//! Properties: a value reads as the console its JSON or its target text describes (the same
//! reading the file and JSON sources use); a `single_use` console is handed out only when the
//! key was consumed; a value that is not UTF-8 is refused.
#![no_main]

use consolegate::token::json::console_from_json_text;
use consolegate::token::parse_target;
use consolegate::token::redis::console_from_value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, value)) = data.split_first() else {
        return;
    };
    let consumed = flags & 1 == 1;
    let got = console_from_value(value, consumed);
    let Ok(text) = std::str::from_utf8(value) else {
        assert_eq!(got, Err("value is not UTF-8".to_string()));
        return;
    };
    let json = text.trim_start().starts_with(['{', '"']);
    let reading = if json {
        console_from_json_text(value)
    } else {
        parse_target(text)
    };
    match (got, reading) {
        (Ok(c), Ok(r)) => {
            assert_eq!(c, r);
            assert!(
                consumed || !c.single_use,
                "single-use console handed out unconsumed"
            );
        }
        (Err(e), Ok(r)) => {
            assert!(r.single_use && !consumed, "refused a good value: {e}");
        }
        (Err(e), Err(r)) => assert_eq!(e, r),
        (Ok(c), Err(r)) => panic!("accepted {c:?}, but its reading says {r}"),
    }
});
