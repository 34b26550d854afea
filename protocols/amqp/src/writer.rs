//! Writes of the AMQP 0-9-1 domains into a `BytesMut`. Variable-length values whose size is not
//! known up front (tables, arrays, frame payloads) get a placeholder length that is patched
//! once the contents are written, so each value is walked once.

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::field::{self, FieldTable};
use crate::short_string::ShortString;

/// `shortstr`; the 255-byte bound is a `ShortString` invariant, so this cannot fail.
pub(crate) fn short_string(out: &mut BytesMut, s: &ShortString) {
    // Length fits: ShortString is at most 255 bytes by construction.
    out.put_u8(s.len() as u8);
    out.put_slice(s.as_bytes());
}

/// The empty `shortstr`, for reserved fields.
pub(crate) fn empty_short_string(out: &mut BytesMut) {
    out.put_u8(0);
}

/// `longstr`: a 32-bit length, then the bytes.
pub(crate) fn long_string(out: &mut BytesMut, b: &[u8]) -> Result<(), EncodeError> {
    out.put_u32(len_u32(b.len(), "long string")?);
    out.put_slice(b);
    Ok(())
}

/// A top-level field table.
pub(crate) fn table(out: &mut BytesMut, t: &FieldTable) -> Result<(), EncodeError> {
    field::write_table(out, t, 1)
}

/// Packs up to eight consecutive bit fields into one octet, low bit first (spec 4.2.5.2).
pub(crate) fn bits(out: &mut BytesMut, bits: &[bool]) {
    debug_assert!(bits.len() <= 8);
    let octet = bits
        .iter()
        .enumerate()
        .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << i));
    out.put_u8(octet);
}

/// Reads bit `i` of a packed octet.
pub(crate) fn bit(octet: u8, i: u8) -> bool {
    octet & (1 << i) != 0
}

/// A length for a 32-bit length prefix.
pub(crate) fn len_u32(len: usize, what: &'static str) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::TooLong { what, len })
}

/// Writes a zero 32-bit length and returns where it is, for `patch_len`.
pub(crate) fn placeholder_u32(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_u32(0);
    at
}

/// Fills the placeholder at `at` with the number of bytes written after it.
pub(crate) fn patch_len(
    out: &mut BytesMut,
    at: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = len_u32(out.len() - at - 4, what)?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
