//! VNC authentication (RFC 6143 §7.2.2): DES-ECB of the 16-byte challenge, keyed by the
//! password's first 8 bytes (NUL-padded) with the bits of each byte reversed.

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;

use consolegate_rfb::security::VNC_CHALLENGE_LEN;

/// The response to `challenge` for `password`. Only the first 8 bytes of the password count
/// (longer passwords are truncated, as every VNC server does).
pub fn response(password: &str, challenge: &[u8; VNC_CHALLENGE_LEN]) -> [u8; VNC_CHALLENGE_LEN] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password.as_bytes()) {
        *k = p.reverse_bits();
    }
    let des = Des::new(GenericArray::from_slice(&key));
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        des.encrypt_block(GenericArray::from_mut_slice(block));
    }
    key.fill(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn bytes(hex: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// Outputs of `vncauth_response` in /work/shared/peers/vencrypt_probe.py (pure-Python DES,
    /// checked against FIPS 46 and pycryptodome).
    #[test]
    fn matches_the_reference_implementation() {
        let counting: [u8; 16] = std::array::from_fn(|i| i as u8);
        let cases = [
            ("pw", counting, "858600d9af143c9e6541d3dd92a835d0"),
            ("pw12345678", counting, "eb1a2eb301f24a28083659fc5ef60081"),
            ("", [0xff; 16], "355550b2150e2451355550b2150e2451"),
            (
                "Secret!",
                bytes("0123456789abcdeffedcba9876543210"),
                "b358249fb29536dbd8469823ee3d150d",
            ),
        ];
        for (password, challenge, want) in cases {
            assert_eq!(hex(&response(password, &challenge)), want, "{password:?}");
        }
    }

    #[test]
    fn only_eight_characters_count() {
        let c = [7u8; 16];
        assert_eq!(response("pw123456", &c), response("pw12345678", &c));
    }

    /// FIPS 46 worked example: the `des` crate is plain DES.
    #[test]
    fn des_known_answer() {
        let des = Des::new(GenericArray::from_slice(&[
            0x13, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1,
        ]));
        let mut block = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        des.encrypt_block(GenericArray::from_mut_slice(&mut block));
        assert_eq!(hex(&block), "85e813540f0ab405");
    }
}
