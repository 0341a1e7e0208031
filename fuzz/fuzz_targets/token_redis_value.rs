//! A Redis key's value (`token::redis::console_from_value`, what `RedisSource::lookup` applies
//! to the value `GET` returns): a console object or target string in JSON, or a plain target.
//!
//! Input: the value. Properties: a value reads as the console its JSON or its target text
//! describes (the same reading the file and JSON sources use); a value that is not UTF-8 is
//! refused.
#![no_main]

use consolegate::token::json::console_from_json_text;
use consolegate::token::parse_target;
use consolegate::token::redis::console_from_value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = data;
    let got = console_from_value(value);
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
        (Ok(c), Ok(r)) => assert_eq!(c, r),
        (Err(e), Ok(_)) => panic!("refused a good value: {e}"),
        (Err(e), Err(r)) => assert_eq!(e, r),
        (Ok(c), Err(r)) => panic!("accepted {c:?}, but its reading says {r}"),
    }
});
