//! Bounds-checked reads of the AMQP 0-9-1 domains (spec 4.2.5) from one frame payload. Every
//! read fails with `SyntaxError::Truncated` instead of panicking, and declared lengths are
//! compared with the bytes left before anything is sliced or allocated. Short strings, long
//! strings and byte arrays come out as zero-copy slices of the payload.

use bytes::{Buf, Bytes};

use crate::error::SyntaxError;
use crate::field::{self, FieldTable};
use crate::short_string::ShortString;

/// A cursor over one frame payload (or one field table inside it).
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails unless every byte has been read: extra bytes after the last field are a syntax
    /// error rather than something to skip silently.
    pub(crate) fn finish(&self) -> Result<(), SyntaxError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(SyntaxError::TrailingBytes)
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SyntaxError> {
        if self.buf.is_empty() {
            return Err(SyntaxError::Truncated);
        }
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, SyntaxError> {
        if self.buf.len() < 2 {
            return Err(SyntaxError::Truncated);
        }
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SyntaxError> {
        if self.buf.len() < 4 {
            return Err(SyntaxError::Truncated);
        }
        Ok(self.buf.get_u32())
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SyntaxError> {
        if self.buf.len() < 8 {
            return Err(SyntaxError::Truncated);
        }
        Ok(self.buf.get_u64())
    }

    /// An octet of packed bit fields (spec 4.2.5.2: low bit first). Bits beyond those the
    /// method defines are ignored, as RabbitMQ does.
    pub(crate) fn bits(&mut self) -> Result<u8, SyntaxError> {
        self.u8()
    }

    /// The next `n` bytes, zero-copy. `n` is checked against what is left first.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, SyntaxError> {
        if self.buf.len() < n {
            return Err(SyntaxError::Truncated);
        }
        Ok(self.buf.split_to(n))
    }

    /// `shortstr`: one length octet, then that many bytes.
    pub(crate) fn short_string(&mut self) -> Result<ShortString, SyntaxError> {
        let len = self.u8()?;
        self.take(usize::from(len))
            .map(ShortString::from_bytes_unchecked)
    }

    /// `longstr`: a 32-bit length, then that many bytes.
    pub(crate) fn long_string(&mut self) -> Result<Bytes, SyntaxError> {
        let len = self.u32()?;
        // A u32 always fits usize on the 32- and 64-bit targets this crate builds for; on a
        // 16-bit one the length could not be in memory anyway.
        let len = usize::try_from(len).map_err(|_| SyntaxError::Truncated)?;
        self.take(len)
    }

    /// A top-level field table (method argument or the headers property).
    pub(crate) fn table(&mut self) -> Result<FieldTable, SyntaxError> {
        field::read_table(self, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0, 9, 1, 2]));
        assert_eq!(r.long_string(), Err(SyntaxError::Truncated));
        let mut r = Reader::new(Bytes::from_static(&[3, b'a']));
        assert_eq!(r.short_string(), Err(SyntaxError::Truncated));
        let mut r = Reader::new(Bytes::from_static(&[1]));
        assert_eq!(r.u16(), Err(SyntaxError::Truncated));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u64(), Err(SyntaxError::Truncated));
        assert!(r.finish().is_ok());
    }
}
