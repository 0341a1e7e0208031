//! Parsing a console target as token sources write it: `host:port` (a VNC console, as in
//! websockify's token files) or a URL `vnc://[user][:password]@host:port`,
//! `spice://host:port`, `serial://host:port`. IPv6 hosts go in brackets.

use url::Url;

use super::{Console, Kind};

/// Parses a target. The error says what is wrong, never repeating a password.
pub fn parse_target(text: &str) -> Result<Console, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty target".into());
    }
    if !text.contains("://") {
        return host_port(text).map(|(host, port)| Console::new(Kind::Vnc, host, port));
    }
    let url = Url::parse(text).map_err(|e| format!("target is not a valid URL: {e}"))?;
    let kind = kind_from_name(url.scheme()).ok_or_else(|| {
        format!(
            "unknown console scheme '{}' (use vnc, spice or serial)",
            url.scheme()
        )
    })?;
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err("target URL has no host".into()),
    };
    let port = url.port().ok_or("target URL has no port")?;
    if port == 0 {
        return Err("port 0 is not a valid target".into());
    }
    if url.path() != "" && url.path() != "/" {
        return Err("target URL must not have a path".into());
    }
    let mut console = Console::new(kind, host, port);
    if !url.username().is_empty() {
        console.username = Some(decode(url.username())?);
    }
    if let Some(p) = url.password() {
        console.password = Some(decode(p)?);
    }
    Ok(console)
}

/// The console kind named `vnc`, `spice` or `serial`.
pub fn kind_from_name(name: &str) -> Option<Kind> {
    match name.to_ascii_lowercase().as_str() {
        "vnc" => Some(Kind::Vnc),
        "spice" => Some(Kind::Spice),
        "serial" => Some(Kind::Serial),
        _ => None,
    }
}

/// Splits `host:port` or `[v6]:port`.
pub fn host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or("IPv6 target must be [addr]:port")?;
        (host, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or("target must be host:port")?;
        if host.contains(':') {
            return Err("IPv6 target must be [addr]:port".into());
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("target has an empty host".into());
    }
    let port: u16 = port.parse().map_err(|_| format!("bad port '{port}'"))?;
    if port == 0 {
        return Err("port 0 is not a valid target".into());
    }
    Ok((host.to_string(), port))
}

/// Decodes a user name or password from a target URL's userinfo by RFC 3986 percent-decoding:
/// `%XX` is the byte XX and every other character stands for itself (`+` is a plus, `&` and `=`
/// are part of the value). The decoded bytes must be UTF-8; the error never repeats the value.
fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| {
            "target credentials are not valid UTF-8 once percent-decoded (encode each byte of a \
             UTF-8 value as %XX)"
                .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_port_is_vnc() {
        let c = parse_target("10.0.0.5:5901").unwrap();
        assert_eq!(
            (c.kind, c.hypervisor.as_str(), c.port),
            (Kind::Vnc, "10.0.0.5", 5901)
        );
    }

    #[test]
    fn urls_name_the_kind_and_credentials() {
        let c = parse_target("vnc://:s3cr%40t@hv1.example:5903").unwrap();
        assert_eq!(c.password.as_deref(), Some("s3cr@t"));
        assert_eq!(c.username, None);
        let c = parse_target("vnc://alice:pw@[::1]:5900").unwrap();
        assert_eq!(
            (c.hypervisor.as_str(), c.username.as_deref()),
            ("::1", Some("alice"))
        );
        assert_eq!(parse_target("spice://h:5931").unwrap().kind, Kind::Spice);
        assert_eq!(parse_target("serial://h:7000").unwrap().kind, Kind::Serial);
    }

    /// The password of `vnc://:PASSWORD@h:1`, decoded.
    fn password(encoded: &str) -> Result<Option<String>, String> {
        parse_target(&format!("vnc://:{encoded}@h:1")).map(|c| c.password)
    }

    #[test]
    fn a_plus_in_credentials_is_a_plus() {
        assert_eq!(password("a+b").unwrap().as_deref(), Some("a+b"));
        let c = parse_target("vnc://al+ice:x@h:1").unwrap();
        assert_eq!(c.username.as_deref(), Some("al+ice"));
    }

    #[test]
    fn an_ampersand_does_not_cut_the_value() {
        assert_eq!(password("a&b&c").unwrap().as_deref(), Some("a&b&c"));
    }

    #[test]
    fn escaped_plus_and_ampersand_decode_to_themselves() {
        assert_eq!(password("x%2By%26z").unwrap().as_deref(), Some("x+y&z"));
        assert_eq!(password("%2b").unwrap().as_deref(), Some("+"));
    }

    #[test]
    fn an_equals_sign_is_kept() {
        assert_eq!(password("k=v=").unwrap().as_deref(), Some("k=v="));
        assert_eq!(password("k%3Dv").unwrap().as_deref(), Some("k=v"));
    }

    #[test]
    fn a_utf8_password_survives_raw_or_escaped() {
        assert_eq!(password("pässwörd€").unwrap().as_deref(), Some("pässwörd€"));
        assert_eq!(
            password("p%C3%A4ss%E2%82%AC").unwrap().as_deref(),
            Some("päss€")
        );
    }

    #[test]
    fn invalid_utf8_is_refused_without_repeating_the_password() {
        let err = password("hunter2%FF%FE").unwrap_err();
        assert_eq!(
            err,
            "target credentials are not valid UTF-8 once percent-decoded (encode each byte of a \
             UTF-8 value as %XX)"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_target("vnc://hunter2%C3:x@h:1").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn bad_targets_say_why() {
        assert_eq!(
            parse_target("nohost").unwrap_err(),
            "target must be host:port"
        );
        assert_eq!(parse_target("h:99999").unwrap_err(), "bad port '99999'");
        assert!(parse_target("rdp://h:1")
            .unwrap_err()
            .contains("unknown console scheme 'rdp'"));
        assert_eq!(
            parse_target("::1:5900").unwrap_err(),
            "IPv6 target must be [addr]:port"
        );
        assert_eq!(
            parse_target("spice://h").unwrap_err(),
            "target URL has no port"
        );
    }

    /// Found by fuzz/fuzz_targets/token_target.rs: a URL target took port 0, which a bare
    /// `host:0` is refused for.
    #[test]
    fn port_0_is_refused_in_urls_too() {
        let err = parse_target("vnc://u:a+b&c@h:0\t\0").unwrap_err();
        assert_eq!(err, "port 0 is not a valid target");
        assert_eq!(
            parse_target("vnc://:pw@h05:00").unwrap_err(),
            "port 0 is not a valid target"
        );
    }
}
