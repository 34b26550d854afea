//! Bounds-checked reads of MQTT data types (section 1.5) from one packet's body. Every read
//! fails with `Malformed` instead of panicking when the body is too short; binary data and
//! payloads are zero-copy `Bytes` slices.

use bytes::{Buf, Bytes};

use crate::error::DecodeError;
use crate::packet::PacketId;

const TRUNCATED: DecodeError = DecodeError::Malformed("field runs past the end of the packet");

/// A cursor over the body of one packet (everything after the fixed header).
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails unless every byte has been consumed: trailing bytes make a packet malformed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "trailing bytes after the packet's contents",
            ))
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(TRUNCATED);
        }
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        if self.buf.len() < 2 {
            return Err(TRUNCATED);
        }
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        if self.buf.len() < 4 {
            return Err(TRUNCATED);
        }
        Ok(self.buf.get_u32())
    }

    /// A Variable Byte Integer (5.0 section 1.5.5): at most 4 bytes, minimally encoded
    /// [MQTT-1.5.5-1].
    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        match parse_var_int(&self.buf)? {
            Some(v) => {
                self.buf.advance(v.len);
                if !v.minimal {
                    return Err(DecodeError::Malformed(
                        "variable byte integer not minimally encoded",
                    ));
                }
                Ok(v.value)
            }
            None => Err(TRUNCATED),
        }
    }

    /// A non-zero Packet Identifier [MQTT-2.3.1-1].
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        PacketId::new(self.u16()?).ok_or(DecodeError::ProtocolError("packet identifier 0"))
    }

    /// The next `n` bytes, zero-copy.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() < n {
            return Err(TRUNCATED);
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left, zero-copy (the PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Two-byte length-prefixed Binary Data, zero-copy.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// Two-byte length-prefixed raw bytes without UTF-8 checks (the protocol name).
    pub(crate) fn raw_str(&mut self) -> Result<Bytes, DecodeError> {
        self.binary()
    }

    /// A UTF-8 Encoded String: well-formed UTF-8 (which excludes surrogates) [MQTT-1.5.4-1]
    /// without U+0000 [MQTT-1.5.4-2]. U+FEFF is kept, never stripped [MQTT-1.5.4-3].
    /// Validated in place and copied once (no intermediate `Bytes` handle).
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.buf.get(..len).ok_or(TRUNCATED)?;
        let s = std::str::from_utf8(raw)
            .map_err(|_| DecodeError::Malformed("string is not well-formed UTF-8"))?;
        if contains_nul(raw) {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        let owned = s.to_owned();
        self.buf.advance(len);
        Ok(owned)
    }
}

/// NUL search for short strings (topics, property values): 16 bytes per branch-free step, which
/// the compiler vectorises; cheaper than `memchr`'s setup for strings of a few dozen bytes.
fn contains_nul(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |acc, &b| acc | (b == 0)) {
            return true;
        }
    }
    chunks.remainder().contains(&0)
}

/// A Variable Byte Integer read from the front of a buffer.
pub(crate) struct VarInt {
    pub(crate) value: u32,
    /// Bytes it occupies (1..=4).
    pub(crate) len: usize,
    /// False for a non-minimal encoding such as `80 00`.
    pub(crate) minimal: bool,
}

/// Parses a Variable Byte Integer; `Ok(None)` if `buf` ends before its last byte. A fourth byte
/// with the continuation bit set is malformed (the value would need a fifth byte).
pub(crate) fn parse_var_int(buf: &[u8]) -> Result<Option<VarInt>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some(VarInt {
                value,
                len: i + 1,
                minimal: i == 0 || byte != 0,
            }));
        }
    }
    Err(DecodeError::Malformed(
        "variable byte integer longer than 4 bytes",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vi(bytes: &[u8]) -> Result<Option<(u32, usize, bool)>, DecodeError> {
        parse_var_int(bytes).map(|o| o.map(|v| (v.value, v.len, v.minimal)))
    }

    #[test]
    fn var_int_boundaries() {
        // 5.0 table 1-1.
        assert_eq!(vi(&[0x00]), Ok(Some((0, 1, true))));
        assert_eq!(vi(&[0x7F]), Ok(Some((127, 1, true))));
        assert_eq!(vi(&[0x80, 0x01]), Ok(Some((128, 2, true))));
        assert_eq!(vi(&[0xFF, 0x7F]), Ok(Some((16_383, 2, true))));
        assert_eq!(vi(&[0x80, 0x80, 0x01]), Ok(Some((16_384, 3, true))));
        assert_eq!(vi(&[0xFF, 0xFF, 0x7F]), Ok(Some((2_097_151, 3, true))));
        assert_eq!(
            vi(&[0x80, 0x80, 0x80, 0x01]),
            Ok(Some((2_097_152, 4, true)))
        );
        assert_eq!(
            vi(&[0xFF, 0xFF, 0xFF, 0x7F]),
            Ok(Some((268_435_455, 4, true)))
        );
    }

    #[test]
    fn var_int_incomplete_overlong_and_non_minimal() {
        assert_eq!(vi(&[]), Ok(None));
        assert_eq!(vi(&[0x80]), Ok(None));
        assert_eq!(vi(&[0xFF, 0xFF, 0xFF]), Ok(None));
        assert!(matches!(
            vi(&[0xFF, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            vi(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(vi(&[0x80, 0x00]), Ok(Some((0, 2, false))));
        let mut r = Reader::new(Bytes::from_static(&[0x81, 0x00]));
        assert!(matches!(r.var_int(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn strings() {
        let mut r = Reader::new(Bytes::from_static(b"\x00\x03a\xC3\xA9\x00\x01"));
        assert_eq!(r.string().unwrap(), "aé");
        assert!(r.string().is_err()); // length 1, nothing left
        let mut r = Reader::new(Bytes::from_static(b"\x00\x02a\x00"));
        assert_eq!(
            r.string(),
            Err(DecodeError::Malformed("string contains U+0000"))
        );
        // An encoded surrogate (U+D800) is not well-formed UTF-8 [MQTT-1.5.4-1].
        let mut r = Reader::new(Bytes::from_static(b"\x00\x03\xED\xA0\x80"));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
        let mut long = vec![0u8, 40];
        long.extend_from_slice(&[b'a'; 40]);
        for at in [2, 17, 18, 33, 41] {
            let mut bytes = long.clone();
            bytes[at] = 0;
            let mut r = Reader::new(Bytes::from(bytes));
            assert!(
                matches!(r.string(), Err(DecodeError::Malformed(_))),
                "NUL at {at}"
            );
        }
        // U+FEFF survives [MQTT-1.5.4-3].
        let mut r = Reader::new(Bytes::from_static(b"\x00\x03\xEF\xBB\xBF"));
        assert_eq!(r.string().unwrap(), "\u{FEFF}");
    }
}
