//! Reading and writing RFB fields on a blocking stream, every length checked against its
//! limit before anything is allocated. Failures are [`WireError`]s; each driver says what
//! they mean in the step it was at.

use std::io::{self, Read, Write};

use crate::reason::{reason_text, MAX_REASON_LEN};

/// Why reading or writing an RFB field failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The stream failed or ended (a timeout shows as `TimedOut`/`WouldBlock`).
    #[error(transparent)]
    Io(#[from] io::Error),

    /// A length field exceeds its limit (a broken or hostile peer).
    #[error("{what} length {len} exceeds the limit of {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The length received.
        len: u64,
        /// The limit.
        max: usize,
    },

    /// The peer sent something this step does not allow.
    #[error("{0}")]
    Unexpected(String),
}

/// Reads exactly `N` bytes.
pub fn read_array<const N: usize>(io: &mut impl Read) -> Result<[u8; N], WireError> {
    let mut buf = [0u8; N];
    io.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads one byte.
pub fn read_u8(io: &mut impl Read) -> Result<u8, WireError> {
    Ok(read_array::<1>(io)?[0])
}

/// Reads a big-endian u32.
pub fn read_u32(io: &mut impl Read) -> Result<u32, WireError> {
    Ok(u32::from_be_bytes(read_array(io)?))
}

/// Reads `count` items of `item_len` bytes each, after checking `count` against `max`
/// (`what` names the field in the error).
pub fn read_items(
    io: &mut impl Read,
    count: usize,
    item_len: usize,
    max: usize,
    what: &'static str,
) -> Result<Vec<u8>, WireError> {
    if count > max {
        return Err(WireError::TooLong {
            what,
            len: count as u64,
            max,
        });
    }
    let mut buf = vec![0u8; count * item_len];
    io.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads a failure reason: a u32 length (at most [`MAX_REASON_LEN`]) and that many bytes, as
/// safe text (see [`reason_text`]).
pub fn read_reason(io: &mut impl Read) -> Result<String, WireError> {
    let len = usize::try_from(read_u32(io)?).unwrap_or(usize::MAX);
    let bytes = read_items(io, len, 1, MAX_REASON_LEN, "failure reason")?;
    Ok(reason_text(&bytes))
}

/// Writes all of `bytes` and flushes.
pub fn write_all(io: &mut impl Write, bytes: &[u8]) -> Result<(), WireError> {
    io.write_all(bytes)?;
    Ok(io.flush()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::script;

    #[test]
    fn lengths_are_checked_before_reading() {
        let mut peer = script(b"\xff\xff\xff\xff");
        let e = read_reason(&mut peer).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failure reason length 4294967295 exceeds the limit of 4096"
        );
        let e = read_items(&mut script(b""), 33, 4, 32, "VeNCrypt subtype list").unwrap_err();
        assert_eq!(
            e.to_string(),
            "VeNCrypt subtype list length 33 exceeds the limit of 32"
        );
    }

    #[test]
    fn reasons_and_short_reads() {
        assert_eq!(
            read_reason(&mut script(b"\0\0\0\x05busy\0")).unwrap(),
            "busy"
        );
        let e = read_u32(&mut script(b"\0\0")).unwrap_err();
        assert!(
            matches!(&e, WireError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof),
            "{e:?}"
        );
    }
}
