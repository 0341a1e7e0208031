//! The VNC drivers' browser side (`consolegate_rfb::browser`, which the vencrypt driver
//! runs): our ProtocolVersion, the
//! browser's, then security type None offered (`accept`) or an RFB failure with a reason
//! (`refuse`), over an in-memory browser that sends the fuzzer's bytes.
//!
//! Input: a byte picking how many bytes each read returns (1-16), a byte whose bit 0 picks
//! refuse over accept, a byte giving the reason's length, the reason, then the browser's bytes.
//! Properties: we always speak first with `RFB 003.008\n`; `accept` sends exactly what RFC 6143
//! says for the version the browser answered (3.3: type 1; 3.7: the list [None]; 3.8: the list
//! and SecurityResult OK), and only after the browser chose None where it chooses; `refuse`
//! sends the reason length-prefixed and cut to 4096 bytes; errors carry no control characters
//! (they reach the log).
#![no_main]

use consolegate_fuzz::Script;
use consolegate_rfb::browser::exchange_version;
use consolegate_rfb::{parse_version, RfbVersion, MAX_REASON_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [chunk, flags, len, rest @ ..] = data else {
        return;
    };
    let (reason, browser) = rest.split_at(usize::from(*len).min(rest.len()));
    let reason = String::from_utf8_lossy(reason).repeat(if flags & 2 == 2 { 300 } else { 1 });
    let mut io = Script::new(browser, usize::from(chunk % 16) + 1);
    let state = match exchange_version(&mut io) {
        Ok(state) => state,
        Err(e) => {
            assert_printable(&e.to_string());
            assert_eq!(io.output, b"RFB 003.008\n");
            return;
        }
    };
    let version = state.version();
    let answered = parse_version(browser[..12].try_into().unwrap()).expect("a version");
    assert_eq!(
        RfbVersion::for_client(answered.0, answered.1),
        Some(version)
    );
    io.output.clear();
    let chose_none = browser.get(12) == Some(&1);
    if flags & 1 == 0 {
        match state.accept(&mut io) {
            Ok(()) => match version {
                RfbVersion::V3_3 => assert_eq!(io.output, [0, 0, 0, 1]),
                RfbVersion::V3_7 => {
                    assert!(chose_none);
                    assert_eq!(io.output, [1, 1]);
                }
                RfbVersion::V3_8 => {
                    assert!(chose_none);
                    assert_eq!(io.output, [1, 1, 0, 0, 0, 0]);
                }
            },
            Err(e) => {
                assert!(!chose_none && version != RfbVersion::V3_3, "{e}");
                assert_eq!(io.output, [1, 1], "nothing after a bad choice");
                assert_printable(&e.to_string());
            }
        }
    } else {
        state.refuse(&mut io, &reason);
        let mut cut = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut tail = (cut as u32).to_be_bytes().to_vec();
        tail.extend_from_slice(&reason.as_bytes()[..cut]);
        let expected: Vec<u8> = match version {
            RfbVersion::V3_3 => [&[0, 0, 0, 0][..], &tail].concat(),
            RfbVersion::V3_7 => [&[0][..], &tail].concat(),
            RfbVersion::V3_8 if chose_none => [&[1, 1, 0, 0, 0, 1][..], &tail].concat(),
            RfbVersion::V3_8 => vec![1, 1],
        };
        assert_eq!(io.output, expected);
    }
});

fn assert_printable(text: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
}
