//! `allowed_targets`: where consoles may point. A token source names the console's host; when
//! this setting is present, a target outside it is refused before any connection is made, so a
//! forged or mistaken token cannot turn the proxy into a bridge to the management network, the
//! metadata service or the proxy's own loopback.
//!
//! The setting is a comma-separated list of
//! - CIDRs, IPv4 or IPv6 (`10.20.0.0/16`, `fd00:1::/64`), or single addresses (`10.0.0.5`);
//! - host names, exact (`hv1.example`) or a whole domain (`*.hv.example`: any name below
//!   `hv.example`, not `hv.example` itself). Names match without regard to case and to a
//!   trailing dot.
//!
//! The rule for a target:
//! - an IP address is allowed when it is inside a listed CIDR;
//! - a host name is allowed when it matches a listed name (its addresses are then trusted, as
//!   the operator named it), or else when it resolves and **every** address it resolves to is
//!   inside a listed CIDR. A name that resolves into a range that is not listed is refused.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5`) are checked as the IPv4 address they carry.
//! The proxy connects only to the addresses it checked (it does not resolve the name again), so
//! a name cannot change its answer between the check and the connection.

use std::net::IpAddr;

use ipnet::IpNet;

/// The parsed `allowed_targets` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTargets {
    nets: Vec<IpNet>,
    names: Vec<NamePattern>,
}

/// One host-name entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    /// This name exactly (lower case, no trailing dot).
    Exact(String),
    /// Any name ending in this suffix, which starts with a dot (`*.hv.example` → `.hv.example`).
    Below(String),
}

/// What is wrong with an `allowed_targets` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowedTargetsError {
    /// The value lists nothing.
    #[error("lists no CIDR or host name (leave the key out to allow every target)")]
    Empty,
    /// An entry is neither a CIDR, an address, a host name nor `*.domain`.
    #[error("'{0}' is not a CIDR (10.0.0.0/8, fd00::/8), an IP address, a host name or *.domain")]
    BadEntry(String),
}

/// Why a target was refused, for the log (it names the target; the browser never sees it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetRefused(String);

impl AllowedTargets {
    /// Parses the comma-separated list (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, AllowedTargetsError> {
        let mut allowed = Self {
            nets: Vec::new(),
            names: Vec::new(),
        };
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                allowed.nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                allowed.nets.push(IpNet::from(ip));
            } else {
                allowed.names.push(name_pattern(entry)?);
            }
        }
        if allowed.nets.is_empty() && allowed.names.is_empty() {
            return Err(AllowedTargetsError::Empty);
        }
        Ok(allowed)
    }

    /// Whether `ip` is inside a listed CIDR.
    pub fn allows_address(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether the host name `host` matches a listed name.
    pub fn allows_name(&self, host: &str) -> bool {
        let host = normal_name(host);
        self.names.iter().any(|pattern| match pattern {
            NamePattern::Exact(name) => *name == host,
            NamePattern::Below(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        })
    }

    /// Decides on a target: `host` as the token names it, `addresses` what it resolved to (for
    /// an IP literal, that address). The error says why, naming the target, for the log.
    pub fn check(&self, host: &str, addresses: &[IpAddr]) -> Result<(), TargetRefused> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.allows_address(ip) {
                Ok(())
            } else {
                Err(TargetRefused(format!("{ip} is outside allowed_targets")))
            };
        }
        if self.allows_name(host) {
            return Ok(());
        }
        match addresses.iter().find(|ip| !self.allows_address(**ip)) {
            _ if addresses.is_empty() => Err(TargetRefused(format!(
                "{host} is not listed in allowed_targets and resolves to no address"
            ))),
            Some(outside) => Err(TargetRefused(format!(
                "{host} is not listed in allowed_targets and resolves to {outside}, outside it"
            ))),
            None => Ok(()),
        }
    }
}

/// A host name in lower case without its trailing dot.
fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Reads a host-name entry: `name` or `*.domain`, made of DNS labels (letters, digits, `-`,
/// `_`), each 1 to 63 bytes.
fn name_pattern(entry: &str) -> Result<NamePattern, AllowedTargetsError> {
    let bad = || AllowedTargetsError::BadEntry(entry.to_string());
    let (below, name) = match entry.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, entry),
    };
    let name = normal_name(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(if below {
        NamePattern::Below(format!(".{name}"))
    } else {
        NamePattern::Exact(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn allowed(text: &str) -> AllowedTargets {
        AllowedTargets::parse(text).unwrap()
    }

    #[test]
    fn ipv4_cidrs_and_single_addresses() {
        let a = allowed("10.20.0.0/16, 192.168.1.7");
        assert!(a.allows_address(ip("10.20.255.1")));
        assert!(!a.allows_address(ip("10.21.0.1")));
        assert!(a.allows_address(ip("192.168.1.7")));
        assert!(!a.allows_address(ip("192.168.1.8")));
        assert!(a.check("10.20.0.5", &[]).is_ok());
        assert_eq!(
            a.check("127.0.0.1", &[]).unwrap_err().to_string(),
            "127.0.0.1 is outside allowed_targets"
        );
    }

    #[test]
    fn ipv6_cidrs() {
        let a = allowed("fd00:1::/64");
        assert!(a.allows_address(ip("fd00:1::5")));
        assert!(!a.allows_address(ip("fd00:2::5")));
        assert!(!a.allows_address(ip("::1")));
        assert!(a.check("fd00:1::abcd", &[]).is_ok());
    }

    #[test]
    fn ipv4_mapped_ipv6_is_checked_as_ipv4() {
        let a = allowed("10.0.0.0/8");
        assert!(a.allows_address(ip("::ffff:10.1.2.3")));
        assert!(!a.allows_address(ip("::ffff:127.0.0.1")));
        assert!(a.check("::ffff:127.0.0.1", &[]).is_err());
    }

    #[test]
    fn a_cidr_with_host_bits_covers_its_network() {
        let a = allowed("10.1.2.3/24");
        assert!(a.allows_address(ip("10.1.2.200")));
    }

    #[test]
    fn exact_names_ignore_case_and_a_trailing_dot() {
        let a = allowed("HV1.example");
        assert!(a.allows_name("hv1.example"));
        assert!(a.allows_name("hv1.EXAMPLE."));
        assert!(!a.allows_name("hv2.example"));
        assert!(!a.allows_name("xhv1.example"));
        assert!(
            a.check("hv1.example", &[ip("203.0.113.9")]).is_ok(),
            "a listed name is trusted"
        );
    }

    #[test]
    fn a_wildcard_covers_names_below_the_domain_only() {
        let a = allowed("*.hv.example");
        assert!(a.allows_name("a.hv.example"));
        assert!(a.allows_name("b.a.hv.example"));
        assert!(!a.allows_name("hv.example"));
        assert!(!a.allows_name("evilhv.example"));
        assert!(!a.allows_name("a.hv.example.evil"));
    }

    #[test]
    fn an_unlisted_name_is_allowed_only_when_every_address_is_inside() {
        let a = allowed("10.0.0.0/8, fd00::/8");
        assert!(a.check("hv", &[ip("10.0.0.1"), ip("fd00::1")]).is_ok());
        assert_eq!(
            a.check("hv", &[ip("10.0.0.1"), ip("169.254.169.254")])
                .unwrap_err()
                .to_string(),
            "hv is not listed in allowed_targets and resolves to 169.254.169.254, outside it"
        );
        assert_eq!(
            a.check("hv", &[]).unwrap_err().to_string(),
            "hv is not listed in allowed_targets and resolves to no address"
        );
    }

    #[test]
    fn names_alone_refuse_every_address_literal() {
        let a = allowed("hv1.example");
        assert!(a.check("10.0.0.1", &[]).is_err());
        assert!(a.check("other.example", &[ip("10.0.0.1")]).is_err());
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(
            AllowedTargets::parse(" , "),
            Err(AllowedTargetsError::Empty)
        );
        for entry in [
            "10.0.0.0/33",
            "*",
            "a b",
            "*.",
            "http://x",
            "fd00::/129",
            "a..b",
        ] {
            assert_eq!(
                AllowedTargets::parse(&format!("10.0.0.0/8, {entry}")),
                Err(AllowedTargetsError::BadEntry(entry.to_string())),
                "{entry}"
            );
        }
    }
}
