//! The real client address of a connection that comes through a load balancer: the PROXY
//! protocol header (v1 or v2, parsed with `ppp`) on the listeners that enable it, and the
//! `Forwarded` / `X-Forwarded-For` request headers, both believed only from `trusted_proxies`.
//!
//! The rules, in the order a connection meets them:
//! 1. On a listener with `proxy_protocol`, a connection from a trusted proxy must begin with a
//!    PROXY header (else it is refused), and its source address replaces the socket's; a
//!    connection from anywhere else must not send one (else it is refused), and its socket
//!    address stands. The header is read within the handshake deadline, byte-exactly, so the
//!    TLS or HTTP bytes after it are left for the next step.
//! 2. Once the request head is read, if the address so far is a trusted proxy, the forwarded
//!    headers are read: `Forwarded` if present, else `X-Forwarded-For`. The hops are walked
//!    from the right, skipping trusted proxies: the first untrusted hop is the client (the
//!    hops left of it were written by the client itself and cannot be believed). From an
//!    untrusted address the headers change nothing.
//!
//! The result ([`ClientAddr`]) goes into the log and audit lines, the per-client limit and the
//! metrics.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use http::HeaderMap;
use ipnet::IpNet;

use crate::deadline::{remaining, DeadlineSocket};

/// A PROXY protocol v1 header is at most this long, `\r\n` included.
const V1_MAX: usize = 107;
/// The v2 signature (12 bytes), version/command, family and the 2-byte length.
const V2_FIXED: usize = 16;
/// The most address and TLV bytes read after a v2 header's fixed part.
const V2_MAX_PAYLOAD: usize = 1024;
/// How often a peek is repeated while too few bytes have arrived to tell whether a connection
/// starts with a PROXY header.
const PEEK_RETRY: Duration = Duration::from_millis(5);

/// A client's address: an IP address and, when known, its port (a forwarded header may name
/// only the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The address (IPv4-mapped IPv6 addresses are shown as IPv4).
    pub ip: IpAddr,
    /// The source port, if the proxy in front said it.
    pub port: Option<u16>,
}

impl ClientAddr {
    /// The socket address `addr`.
    pub fn socket(addr: SocketAddr) -> Self {
        Self {
            ip: canonical(addr.ip()),
            port: Some(addr.port()),
        }
    }
}

impl fmt::Display for ClientAddr {
    /// `IP:PORT` (`[IPv6]:PORT`), or the bare address when the port is not known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}", SocketAddr::new(self.ip, port)),
            None => write!(f, "{}", self.ip),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `trusted_proxies`: the load balancers whose PROXY headers and forwarded headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs and addresses (`10.0.0.0/8, 192.0.2.7, ::1`).
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("'{item}' is not a CIDR or an IP address (10.0.0.0/8, 192.0.2.7, ::1)")
                })?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `proxy_protocol`: which listeners expect a PROXY header from trusted proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// None (the default).
    #[default]
    Off,
    /// Every listener (`proxy_protocol = true`).
    All,
    /// The listeners bound to these `listen` addresses.
    Listeners(Vec<SocketAddr>),
}

impl ProxyProtocol {
    /// Whether the listener bound to the configured address `listen` expects PROXY headers.
    pub fn on(&self, listen: SocketAddr) -> bool {
        match self {
            ProxyProtocol::Off => false,
            ProxyProtocol::All => true,
            ProxyProtocol::Listeners(addrs) => addrs.contains(&listen),
        }
    }
}

/// Why a connection's PROXY header was refused. Logged; the connection is closed without an
/// answer (it has not spoken TLS or HTTP yet).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyHeaderError {
    /// A trusted proxy connected to a `proxy_protocol` listener without a PROXY header.
    #[error("trusted proxy {0} sent no PROXY protocol header (proxy_protocol is on for this listener: configure send-proxy or send-proxy-v2 on the load balancer)")]
    Missing(IpAddr),
    /// A PROXY header came from an address outside `trusted_proxies`.
    #[error("{0} sent a PROXY protocol header but is not in trusted_proxies")]
    Untrusted(IpAddr),
    /// The header is not valid PROXY protocol v1 or v2.
    #[error("malformed PROXY protocol header from {peer}: {detail}")]
    Malformed {
        /// The proxy that sent it.
        peer: IpAddr,
        /// What `ppp` or the length check said.
        detail: String,
    },
    /// The socket failed or the deadline passed while the header was read.
    #[error("cannot read the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// Step 1: the client address of a connection accepted from `peer` on a listener where
/// `proxy_protocol` is `expected`. Reads a PROXY header from a trusted proxy, and refuses one
/// from anywhere else, by `deadline`; reads nothing past the header.
pub fn accept(
    stream: &TcpStream,
    peer: SocketAddr,
    expected: bool,
    trusted: &TrustedProxies,
    deadline: Instant,
) -> Result<ClientAddr, ProxyHeaderError> {
    let socket = ClientAddr::socket(peer);
    if !expected {
        return Ok(socket);
    }
    if !trusted.contains(peer.ip()) {
        if starts_with_proxy_header(stream, deadline)? {
            return Err(ProxyHeaderError::Untrusted(socket.ip));
        }
        return Ok(socket);
    }
    let mut sock = DeadlineSocket::new(stream.try_clone()?, Some(deadline));
    read_proxy_header(&mut sock, peer)
}

/// Reads one PROXY header (v1 or v2) sent by the trusted proxy `peer` from `sock`, reading
/// nothing after it, and returns the client address it names. A header that names no client
/// (v2 `LOCAL`, as HAProxy's health checks send; v1 `UNKNOWN`; an unspecified or UNIX
/// family) is valid, and the connection is the proxy's own: `peer` is the client, as the
/// protocol says. `sock` holds the deadline.
pub fn read_proxy_header(
    sock: &mut impl Read,
    peer: SocketAddr,
) -> Result<ClientAddr, ProxyHeaderError> {
    let header = read_header(sock, peer.ip())?;
    Ok(source_of(&header, peer.ip())?.unwrap_or(ClientAddr::socket(peer)))
}

/// Whether the first bytes on `stream` are a PROXY header's signature (v1 `PROXY ` or the v2
/// signature). Peeks, so nothing is consumed; waits until enough bytes arrived to tell, or
/// the deadline.
fn starts_with_proxy_header(stream: &TcpStream, deadline: Instant) -> io::Result<bool> {
    const V1: &[u8] = b"PROXY ";
    let v2 = ppp::v2::PROTOCOL_PREFIX;
    let mut buf = [0u8; 12];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        let n = stream.peek(&mut buf)?;
        let seen = &buf[..n];
        if n == 0 {
            return Ok(false);
        }
        let could_be = |sig: &[u8]| sig.starts_with(&seen[..n.min(sig.len())]);
        if (n >= V1.len() && seen.starts_with(V1)) || (n >= v2.len() && seen.starts_with(v2)) {
            return Ok(true);
        }
        if !could_be(V1) && !could_be(v2) {
            return Ok(false);
        }
        std::thread::sleep(PEEK_RETRY.min(remaining(deadline)?));
    }
}

/// Reads exactly one PROXY header (v1 or v2) from `sock`.
fn read_header(sock: &mut impl Read, peer: IpAddr) -> Result<Vec<u8>, ProxyHeaderError> {
    let malformed = |detail: &str| ProxyHeaderError::Malformed {
        peer,
        detail: detail.into(),
    };
    let mut head = [0u8; 6];
    // A connection closed before its first byte is a TCP check, not a missing header.
    if sock.read(&mut head[..1])? == 0 {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    read_exact(sock, &mut head[1..], peer)?;
    let v2 = ppp::v2::PROTOCOL_PREFIX;
    if head[..] == v2[..6] {
        let mut fixed = vec![0u8; V2_FIXED];
        fixed[..6].copy_from_slice(&head);
        read_exact(sock, &mut fixed[6..], peer)?;
        if &fixed[..v2.len()] != v2 {
            return Err(malformed("not a PROXY protocol v2 signature"));
        }
        let length = u16::from_be_bytes([fixed[14], fixed[15]]) as usize;
        if length > V2_MAX_PAYLOAD {
            return Err(malformed("v2 header longer than 1024 bytes"));
        }
        fixed.resize(V2_FIXED + length, 0);
        read_exact(sock, &mut fixed[V2_FIXED..], peer)?;
        return Ok(fixed);
    }
    if &head[..] != b"PROXY " {
        return Err(ProxyHeaderError::Missing(peer));
    }
    // v1: up to "\r\n", one byte at a time so that nothing after the header is read.
    let mut line = head.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(malformed("v1 header longer than 107 bytes"));
        }
        let mut byte = [0u8; 1];
        read_exact(sock, &mut byte, peer)?;
        line.push(byte[0]);
    }
    Ok(line)
}

fn read_exact(sock: &mut impl Read, buf: &mut [u8], peer: IpAddr) -> Result<(), ProxyHeaderError> {
    sock.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ProxyHeaderError::Missing(peer)
        } else {
            ProxyHeaderError::Io(e)
        }
    })
}

/// The source address a complete header names, `None` if it names none.
fn source_of(header: &[u8], peer: IpAddr) -> Result<Option<ClientAddr>, ProxyHeaderError> {
    // ppp's messages hold control characters ("must end in '\r\n'"): escaped, so that the
    // log line stays one line.
    let malformed = |detail: String| ProxyHeaderError::Malformed {
        peer,
        detail: detail.escape_debug().to_string(),
    };
    let addr = match ppp::HeaderResult::parse(header) {
        ppp::HeaderResult::V2(Ok(h)) => match (h.command, h.addresses) {
            (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => {
                SocketAddr::new(a.source_address.into(), a.source_port)
            }
            (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => {
                SocketAddr::new(a.source_address.into(), a.source_port)
            }
            _ => return Ok(None),
        },
        ppp::HeaderResult::V1(Ok(h)) => match h.addresses {
            ppp::v1::Addresses::Tcp4(a) => SocketAddr::new(a.source_address.into(), a.source_port),
            ppp::v1::Addresses::Tcp6(a) => SocketAddr::new(a.source_address.into(), a.source_port),
            ppp::v1::Addresses::Unknown => return Ok(None),
        },
        ppp::HeaderResult::V2(Err(e)) => return Err(malformed(e.to_string())),
        ppp::HeaderResult::V1(Err(e)) => return Err(malformed(e.to_string())),
    };
    Ok(Some(ClientAddr::socket(addr)))
}

/// Step 2: the client address after the request `headers`, given the address so far. The
/// forwarded headers count only when `so_far` is a trusted proxy; an unparsable hop ends the
/// walk at the hop right of it.
pub fn forwarded(headers: &HeaderMap, so_far: ClientAddr, trusted: &TrustedProxies) -> ClientAddr {
    if !trusted.contains(so_far.ip) {
        return so_far;
    }
    let hops = forwarded_hops(headers);
    let mut client = so_far;
    for hop in hops.iter().rev() {
        match hop {
            Some(addr) => {
                client = *addr;
                if !trusted.contains(addr.ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// The hops of `Forwarded` (its `for=` parameters) or, without it, of `X-Forwarded-For`, left
/// to right, every header line in order; `None` for a hop that is not an address (`unknown`,
/// an obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<ClientAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_hop(v.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_hop(hop.trim()))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:5`.
fn parse_hop(hop: &str) -> Option<ClientAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ClientAddr {
            ip: canonical(ip),
            port: None,
        });
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(ClientAddr::socket(addr));
    }
    let bare = hop.strip_prefix('[')?.strip_suffix(']')?;
    bare.parse::<IpAddr>().ok().map(|ip| ClientAddr {
        ip: canonical(ip),
        port: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse("10.0.0.0/8, 192.0.2.7").unwrap()
    }

    fn addr(s: &str) -> ClientAddr {
        parse_hop(s).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn trusted_proxies_parse_and_match_mapped_addresses() {
        let t = trusted();
        assert!(t.contains("10.1.2.3".parse().unwrap()));
        assert!(t.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!t.contains("192.0.2.8".parse().unwrap()));
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/33").unwrap_err(),
            "'10.0.0.0/33' is not a CIDR or an IP address (10.0.0.0/8, 192.0.2.7, ::1)"
        );
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let from_lb = addr("10.0.0.1:4000");
        assert_eq!(forwarded(&h, from_lb, &trusted()), addr("203.0.113.9"));
        let from_anyone = addr("198.51.100.1:4000");
        assert_eq!(forwarded(&h, from_anyone, &trusted()), from_anyone);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        // The client forged the first hop; the load balancers appended the rest.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.5"),
        ]);
        assert_eq!(
            forwarded(&h, addr("10.0.0.1:1"), &trusted()),
            addr("203.0.113.9")
        );
        // Every hop trusted: the leftmost is the best known.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(
            forwarded(&h, addr("10.0.0.1:1"), &trusted()),
            addr("10.9.9.9")
        );
        // An unparsable hop stops the walk: what is left of it cannot be believed.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, garbage, 10.0.0.5")]);
        assert_eq!(
            forwarded(&h, addr("10.0.0.1:1"), &trusted()),
            addr("10.0.0.5")
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=https, For="[2001:db8:cafe::17]:4711""#,
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            forwarded(&h, addr("10.0.0.1:1"), &trusted()),
            addr("[2001:db8:cafe::17]:4711")
        );
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            forwarded(&h, addr("10.0.0.1:1"), &trusted()),
            addr("10.0.0.1:1")
        );
    }

    #[test]
    fn v1_and_v2_headers_are_read_exactly() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let mut input: &[u8] = b"PROXY TCP4 203.0.113.9 10.0.0.2 51000 6080\r\nGET / HTTP/1.1\r\n";
        let header = read_header(&mut input, peer).unwrap();
        assert_eq!(
            source_of(&header, peer).unwrap(),
            Some(addr("203.0.113.9:51000"))
        );
        assert_eq!(
            input, b"GET / HTTP/1.1\r\n",
            "nothing after the header was read"
        );

        let v2 = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (
                "[2001:db8::9]:52000".parse::<SocketAddr>().unwrap(),
                "[2001:db8::1]:6080".parse::<SocketAddr>().unwrap(),
            ),
        )
        .write_tlv(ppp::v2::Type::NoOp, b"x")
        .unwrap()
        .build()
        .unwrap();
        let mut bytes = v2.clone();
        bytes.extend_from_slice(b"\x16\x03\x01");
        let mut input = &bytes[..];
        let header = read_header(&mut input, peer).unwrap();
        assert_eq!(header, v2);
        assert_eq!(
            source_of(&header, peer).unwrap(),
            Some(addr("[2001:db8::9]:52000"))
        );
        assert_eq!(input, b"\x16\x03\x01");
    }

    #[test]
    fn bad_headers_are_refused_with_a_reason() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let e = read_header(&mut &b"GET / HTTP/1.1\r\n"[..], peer).unwrap_err();
        assert!(matches!(e, ProxyHeaderError::Missing(_)), "{e}");
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(200));
        let e = read_header(&mut long.as_bytes(), peer).unwrap_err();
        assert!(e.to_string().contains("longer than 107 bytes"), "{e}");
        let e = read_header(&mut &b"PROXY TCP4 1.2.3\r\n"[..], peer)
            .and_then(|h| source_of(&h, peer))
            .unwrap_err();
        assert!(matches!(e, ProxyHeaderError::Malformed { .. }), "{e}");
        // Found by fuzz/fuzz_targets/client_address.rs: ppp's message for a v1 line with a
        // sixth field holds a CR LF, which split the log line.
        let line = b"PROXY TCP4 203.0.113.9 10.0.0.2 51000 9 10.0.0.26p80\r\n";
        let e = read_header(&mut &line[..], peer)
            .and_then(|h| source_of(&h, peer))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed PROXY protocol header from 10.0.0.1: Header must end in \\'\\r\\n\\'."
        );
    }

    #[test]
    fn a_header_without_a_client_leaves_the_proxy_as_the_client() {
        let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let unknown = read_proxy_header(&mut &b"PROXY UNKNOWN\r\n"[..], peer).unwrap();
        assert_eq!(unknown, ClientAddr::socket(peer));
        // HAProxy's health checks with check-send-proxy: v2 LOCAL.
        let local = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Local,
            ppp::v2::Protocol::Unspecified,
            ppp::v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        let check = read_proxy_header(&mut &local[..], peer).unwrap();
        assert_eq!(check, ClientAddr::socket(peer));
    }
}
