//! The proxy's audit lines read back: the text form's `key=value` fields (a quoted value
//! unescaped as Rust's `{:?}` wrote it) and the JSON form's objects.

use std::collections::BTreeMap;

/// The first line of `log` whose text, after the logger's prefix, starts with `head` followed
/// by `session=SESSION `.
pub fn find_line<'a>(log: &'a str, head: &str, session: u64) -> Option<&'a str> {
    let want = format!("{head}session={session} ");
    log.lines()
        .find(|l| l.find(head).is_some_and(|at| l[at..].starts_with(&want)))
}

/// The `key=value` fields after `head` in `line`; `key="…"` values unescaped.
pub fn fields(line: &str, head: &str) -> BTreeMap<String, String> {
    let mut rest = line.split_once(head).map_or("", |(_, r)| r).trim();
    let mut out = BTreeMap::new();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted),
            None => {
                let (v, n) = after.split_once(' ').unwrap_or((after, ""));
                (v.to_string(), n)
            }
        };
        out.insert(key.to_string(), value);
        rest = next.trim();
    }
    out
}

/// Reads a `{:?}`-quoted string up to its closing quote (the opening one already taken):
/// the value and what follows.
fn unquote(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, other)) => value.push(other),
                None => break,
            },
            c => value.push(c),
        }
    }
    (value, "")
}

/// The JSON audit records (`logger` `consolegate::audit`) of a `log_format = json` log.
pub fn json_records(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["logger"] == "consolegate::audit")
        .collect()
}
