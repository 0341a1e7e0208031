//! Reading and writing RFB fields with each I/O failure turned into the [`VencryptError`] it
//! means in its [`Phase`], and every length checked against its limit.

use std::io::{Read, Write};

use crate::error::{Phase, VencryptError};
use crate::rfb::{reason_text, MAX_REASON_LEN};

/// Reads exactly `N` bytes.
pub(crate) fn read_array<const N: usize>(
    io: &mut impl Read,
    phase: Phase,
) -> Result<[u8; N], VencryptError> {
    let mut buf = [0u8; N];
    io.read_exact(&mut buf)
        .map_err(|e| VencryptError::from_io(e, phase))?;
    Ok(buf)
}

/// Reads one byte.
pub(crate) fn read_u8(io: &mut impl Read, phase: Phase) -> Result<u8, VencryptError> {
    Ok(read_array::<1>(io, phase)?[0])
}

/// Reads a big-endian u32.
pub(crate) fn read_u32(io: &mut impl Read, phase: Phase) -> Result<u32, VencryptError> {
    Ok(u32::from_be_bytes(read_array(io, phase)?))
}

/// Reads `len` bytes, after checking `len` against `max` (`what` names the field).
pub(crate) fn read_vec(
    io: &mut impl Read,
    len: usize,
    max: usize,
    what: &'static str,
    phase: Phase,
) -> Result<Vec<u8>, VencryptError> {
    if len > max {
        return Err(VencryptError::LengthTooLarge {
            what,
            len: len as u64,
            max,
        });
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf)
        .map_err(|e| VencryptError::from_io(e, phase))?;
    Ok(buf)
}

/// Reads a failure reason: u32 length (at most [`MAX_REASON_LEN`]) and that many bytes, as
/// text (see [`reason_text`]).
pub(crate) fn read_reason(io: &mut impl Read) -> Result<String, VencryptError> {
    let len = read_u32(io, Phase::FailureReason)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let bytes = read_vec(
        io,
        len,
        MAX_REASON_LEN,
        "failure reason",
        Phase::FailureReason,
    )?;
    Ok(reason_text(&bytes))
}

/// Writes all of `bytes` and flushes.
pub(crate) fn write_all(
    io: &mut impl Write,
    bytes: &[u8],
    phase: Phase,
) -> Result<(), VencryptError> {
    io.write_all(bytes)
        .and_then(|()| io.flush())
        .map_err(|e| VencryptError::from_io(e, phase))
}

/// `prefix`, then `reason` as a u32 length and its bytes (cut to [`MAX_REASON_LEN`]).
pub(crate) fn with_reason(prefix: &[u8], reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = prefix.to_vec();
    // cut <= MAX_REASON_LEN, which fits in a u32.
    out.extend_from_slice(&(cut as u32).to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..cut]);
    out
}
