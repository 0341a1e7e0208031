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

/// Percent-decodes URL userinfo as RFC 3986 says: `+` and `&` are themselves (form encoding's
/// rules do not apply to userinfo).
fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| "target credentials are not UTF-8 once percent-decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_port_is_vnc() {
        let c = parse_target("10.0.0.5:5901").unwrap();
        assert_eq!(
            (c.kind, c.host.as_str(), c.port),
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
            (c.host.as_str(), c.username.as_deref()),
            ("::1", Some("alice"))
        );
        assert_eq!(parse_target("spice://h:5931").unwrap().kind, Kind::Spice);
        assert_eq!(parse_target("serial://h:7000").unwrap().kind, Kind::Serial);
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

    /// Found by fuzz/fuzz_targets/token_target.rs: credentials were decoded with form rules,
    /// so `+` became a space and `&` cut the value.
    #[test]
    fn credentials_are_rfc3986_userinfo() {
        let c = parse_target("vnc://u%2Bv:a+b&c%20d@h:1").unwrap();
        assert_eq!(c.username.as_deref(), Some("u+v"));
        assert_eq!(c.password.as_deref(), Some("a+b&c d"));
        assert_eq!(
            parse_target("vnc://:%ff@h:1").unwrap_err(),
            "target credentials are not UTF-8 once percent-decoded"
        );
    }
}
