//! The real client address behind a load balancer (`client_address`): the PROXY protocol
//! header a trusted proxy sends first (`read_proxy_header`, v1 and v2 with `ppp`), and the
//! `Forwarded` / `X-Forwarded-For` headers (`forwarded`).
//!
//! Input: byte 0 picks the parser (even: a PROXY header stream; odd: forwarded headers). For a
//! PROXY header the rest is what the proxy sends. For forwarded headers byte 1 picks the header
//! (even: `X-Forwarded-For`, odd: `Forwarded`) and whether the connection comes from a trusted
//! proxy (bit 1), and the rest, split at `\n`, is its header lines.
//!
//! Properties. PROXY: nothing after the header is read (an accepted header is exactly a v1
//! line up to its first `\r\n`, at most 107 bytes, or a v2 header of 16 bytes plus its length); at
//! most 1040 bytes are read in any case; an accepted header starts with a signature and names
//! the address that the same header, written again by `ppp`'s v2 builder or as a v1 line, gives
//! (a header that names no client gives the proxy's own address);
//! errors are one line of at most 300 bytes. Forwarded: from an untrusted address the headers
//! change nothing; a hop the client prepends (a forged header line first) never changes an
//! untrusted result, and a trusted proxy appending itself does not either.
#![no_main]

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use consolegate::client_address::{forwarded, read_proxy_header, ClientAddr, TrustedProxies};
use libfuzzer_sys::fuzz_target;

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn proxy_header(input: &[u8]) {
    let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let mut cursor = Cursor::new(input);
    let result = read_proxy_header(&mut cursor, peer);
    let consumed = cursor.position() as usize;
    assert!(consumed <= 16 + 1024, "read {consumed} bytes");
    match result {
        Ok(addr) => {
            let header = &input[..consumed];
            if header.starts_with(V2_SIGNATURE) {
                let length = u16::from_be_bytes([header[14], header[15]]) as usize;
                assert_eq!(consumed, 16 + length, "a v2 header is read exactly");
            } else {
                assert!(header.starts_with(b"PROXY "), "{header:?}");
                assert!(header.ends_with(b"\r\n") && consumed <= 107, "{header:?}");
                // The first CR LF ends it (an UNKNOWN line may hold anything before it).
                let first_crlf = header.windows(2).position(|w| w == b"\r\n");
                assert_eq!(first_crlf, Some(consumed - 2), "{header:?}");
            }
            let port = addr.port.expect("a PROXY header names a port");
            let source = SocketAddr::new(addr.ip, port);
            let destination: SocketAddr = match addr.ip {
                IpAddr::V4(_) => "10.0.0.2:6080".parse().unwrap(),
                IpAddr::V6(_) => "[fd00::2]:6080".parse().unwrap(),
            };
            let v2 = ppp::v2::Builder::with_addresses(
                ppp::v2::Version::Two | ppp::v2::Command::Proxy,
                ppp::v2::Protocol::Stream,
                (source, destination),
            )
            .build()
            .expect("a v2 header");
            let again = read_proxy_header(&mut &v2[..], peer).expect("our own v2 header");
            assert_eq!(again, addr);
            let family = if addr.ip.is_ipv4() { "TCP4" } else { "TCP6" };
            let v1 = format!(
                "PROXY {family} {} {} {port} 6080\r\n",
                addr.ip,
                destination.ip()
            );
            let again = read_proxy_header(&mut v1.as_bytes(), peer).expect("our own v1 line");
            assert_eq!(again, addr);
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.len() <= 300, "{text}");
            assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
        }
    }
}

fn forwarded_headers(choice: u8, input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let name = if choice & 1 == 0 {
        "x-forwarded-for"
    } else {
        "forwarded"
    };
    let forged = if choice & 1 == 0 {
        "198.51.100.66"
    } else {
        "for=198.51.100.66"
    };
    let appended = if choice & 1 == 0 {
        "10.9.9.9"
    } else {
        "for=10.9.9.9"
    };
    let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
    let so_far = ClientAddr::socket(if choice & 2 == 0 {
        "10.0.0.1:4000".parse().unwrap()
    } else {
        "192.0.2.1:4000".parse().unwrap()
    });
    let headers = |first: Option<&str>, last: Option<&str>| {
        let mut map = http::HeaderMap::new();
        let lines = first.into_iter().chain(text.split('\n')).chain(last);
        for line in lines {
            if let Ok(value) = http::HeaderValue::from_str(line) {
                map.append(http::HeaderName::from_static(name), value);
            }
        }
        map
    };
    let client = forwarded(&headers(None, None), so_far, &trusted);
    if !trusted.contains(so_far.ip) {
        assert_eq!(
            client, so_far,
            "an untrusted peer's headers changed the client"
        );
        return;
    }
    if !trusted.contains(client.ip) {
        let with_forged = forwarded(&headers(Some(forged), None), so_far, &trusted);
        assert_eq!(with_forged, client, "a prepended hop changed the client");
        let with_proxy = forwarded(&headers(None, Some(appended)), so_far, &trusted);
        assert_eq!(
            with_proxy, client,
            "a trusted hop appended changed the client"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match data {
        [mode, rest @ ..] if mode & 1 == 0 => proxy_header(rest),
        [_, choice, rest @ ..] => forwarded_headers(*choice, rest),
        _ => {}
    }
});
