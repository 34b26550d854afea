//! Record framing, shared by the segment log and the definitions log:
//!
//! ```text
//! [len: u32 LE][crc: u32 LE][kind: u8][payload: len - 1 bytes]
//! ```
//!
//! `len` counts the kind byte and the payload; `crc` is CRC-32 (IEEE, `crc32fast`, hardware
//! accelerated where the CPU has it) over the same bytes. A reader trusts a record only when its
//! whole length is present and its CRC matches: anything else at the end of a file is a torn
//! write, anything else in the middle is corruption, and either way the file is only good up to
//! the record before (see `segment::scan`).

/// Bytes before the kind byte: length and CRC.
pub const HEADER: usize = 8;

/// Largest record accepted when reading (checked before allocating): a message body is bounded
/// far below this by the protocols' frame and packet limits.
pub const MAX_RECORD: usize = 1 << 30;

/// Appends one record of `kind` to `out`; `payload` writes the payload into `out`.
pub fn frame(out: &mut Vec<u8>, kind: u8, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.push(kind);
    payload(out);
    let body = &out[start + HEADER..];
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, intact record; `size` is its length including the header.
    Record {
        /// The kind byte.
        kind: u8,
        /// The payload.
        payload: &'a [u8],
        /// Bytes the record takes.
        size: usize,
    },
    /// The buffer is empty: a clean end.
    End,
    /// The bytes cannot be a record (why, for the log line).
    Bad(&'static str),
}

/// Reads the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    if buf.is_empty() {
        return Decoded::End;
    }
    if buf.len() < HEADER {
        return Decoded::Bad("truncated record header");
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 || len > MAX_RECORD {
        return Decoded::Bad("invalid record length");
    }
    let Some(body) = buf.get(HEADER..HEADER + len) else {
        return Decoded::Bad("truncated record");
    };
    if crc32fast::hash(body) != crc {
        return Decoded::Bad("record checksum mismatch");
    }
    Decoded::Record {
        kind: body[0],
        payload: &body[1..],
        size: HEADER + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame(&mut out, kind, |o| o.extend_from_slice(payload));
        out
    }

    #[test]
    fn a_record_reads_back() {
        let buf = one(7, b"hello");
        assert_eq!(
            decode(&buf),
            Decoded::Record {
                kind: 7,
                payload: b"hello",
                size: buf.len()
            }
        );
        assert_eq!(decode(&[]), Decoded::End);
    }

    #[test]
    fn every_truncation_is_bad_never_a_record() {
        let buf = one(1, b"some payload");
        for cut in 1..buf.len() {
            assert!(
                matches!(decode(&buf[..cut]), Decoded::Bad(_)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let buf = one(1, b"payload bytes");
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                assert!(
                    !matches!(decode(&b), Decoded::Record { size, .. } if size == buf.len()),
                    "flip at byte {i} bit {bit} went unnoticed"
                );
            }
        }
    }
}
