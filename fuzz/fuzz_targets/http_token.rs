//! Token extraction (`http_upgrade::token`): the query parameter `token` (form encoding,
//! percent-encoded) else the cookie `token`, among other parameters and cookies.
//!
//! Input: a structured request (token, other parameters and cookies, where the token goes).
//! Properties: a token sent percent-encoded in the query comes back exactly as it was before
//! encoding; a token sent as a cookie comes back exactly; the query wins over the cookie; an
//! empty token is no token; other parameters and cookies never become the token.
#![no_main]

use arbitrary::Arbitrary;
use consolegate::http_upgrade::{read_request, token, MAX_REQUEST_HEAD};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

#[derive(Arbitrary, Debug)]
struct Input {
    /// The token, any text.
    query_token: Option<String>,
    /// A cookie token (cut to cookie-safe characters).
    cookie_token: Option<String>,
    /// Other query parameters, before and after the token.
    params: Vec<(String, String)>,
    /// Other cookies.
    cookies: Vec<(String, String)>,
    /// How many of `params` come before the token.
    split: u8,
}

/// Characters a cookie value may hold unquoted (RFC 6265 cookie-octet), minus `"` (which the
/// proxy strips from the ends, as browsers quote values) and `=` kept out of names below.
fn cookie_safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\'))
        .collect()
}

fn name_safe(s: &str) -> String {
    cookie_safe(s).replace('=', "")
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fuzz_target!(|input: Input| {
    let params: Vec<(String, String)> = input
        .params
        .iter()
        .filter(|(k, _)| k != "token")
        .cloned()
        .collect();
    let cookies: Vec<(String, String)> = input
        .cookies
        .iter()
        .map(|(k, v)| (name_safe(k), cookie_safe(v)))
        .filter(|(k, _)| !k.is_empty() && k != "token")
        .collect();
    let cookie_token = input.cookie_token.as_deref().map(cookie_safe);

    let mut query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    if let Some(t) = &input.query_token {
        let at = usize::from(input.split).min(query.len());
        query.insert(at, format!("token={}", enc(t)));
    }
    let mut cookie_pairs: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(t) = &cookie_token {
        let at = usize::from(input.split).min(cookie_pairs.len());
        cookie_pairs.insert(at, format!("token={t}"));
    }
    let mut head = format!(
        "GET /websockify?{} HTTP/1.1\r\nHost: proxy\r\n",
        query.join("&")
    );
    if !cookie_pairs.is_empty() {
        head.push_str(&format!("Cookie: {}\r\n", cookie_pairs.join("; ")));
    }
    head.push_str("\r\n");
    if head.len() > MAX_REQUEST_HEAD {
        return;
    }
    let parsed = read_request(&mut head.as_bytes())
        .unwrap_or_else(|e| panic!("a well-formed request was refused: {e}\n{head}"));
    let expected = input
        .query_token
        .filter(|t| !t.is_empty())
        .or(cookie_token.filter(|t| !t.is_empty()));
    assert_eq!(token(&parsed.request), expected, "{head}");
});
