//! `ShortString`: the AMQP `shortstr` domain (spec 4.2.5.3), at most 255 octets. Backed by
//! `Bytes` so decoding one is a slice of the frame payload (a reference-count increment, no
//! allocation) and cloning one into a routing table or a delivery costs the same. The octets are
//! not required to be UTF-8: the spec says octets, and the broker decides where it insists on
//! UTF-8 (RabbitMQ checks queue names, consumer tags and a few others).

use std::borrow::Borrow;
use std::fmt;
use std::str::Utf8Error;

use bytes::Bytes;

use crate::error::EncodeError;

/// An AMQP short string: up to 255 bytes. The bound is checked on construction, so encoding a
/// `ShortString` never fails.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortString(Bytes);

impl ShortString {
    /// The most bytes a short string holds (its length prefix is one octet).
    pub const MAX_LEN: usize = 255;

    /// The empty short string.
    pub const fn new() -> ShortString {
        ShortString(Bytes::new())
    }

    /// A short string from a literal.
    ///
    /// # Panics
    /// If `s` is longer than 255 bytes (at compile time when used in a `const`).
    pub const fn from_static(s: &'static str) -> ShortString {
        assert!(
            s.len() <= Self::MAX_LEN,
            "short string longer than 255 bytes"
        );
        ShortString(Bytes::from_static(s.as_bytes()))
    }

    /// A short string sharing `bytes`, or an error if it is longer than 255 bytes.
    pub fn from_bytes(bytes: Bytes) -> Result<ShortString, EncodeError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(EncodeError::ShortStringTooLong { len: bytes.len() });
        }
        Ok(ShortString(bytes))
    }

    /// Copies `s`, cutting it to at most 255 bytes at a character boundary. For texts we write
    /// ourselves and would rather shorten than fail on, such as reply-text.
    pub fn truncating(s: &str) -> ShortString {
        let mut end = s.len().min(Self::MAX_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        ShortString(Bytes::copy_from_slice(&s.as_bytes()[..end]))
    }

    /// Wraps bytes already known to be at most 255 long (read behind a one-octet length).
    pub(crate) fn from_bytes_unchecked(bytes: Bytes) -> ShortString {
        debug_assert!(bytes.len() <= Self::MAX_LEN);
        ShortString(bytes)
    }

    /// The raw octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The octets as UTF-8, or why they are not.
    pub fn to_str(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(&self.0)
    }

    /// The shared buffer behind this string (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes (0..=255).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ShortString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Ok(s) => fmt::Debug::fmt(s, f),
            Err(_) => write!(f, "b{:?}", self.0),
        }
    }
}

/// Lossy: invalid UTF-8 shows as U+FFFD, for logs and error texts.
impl fmt::Display for ShortString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&String::from_utf8_lossy(&self.0), f)
    }
}

impl AsRef<[u8]> for ShortString {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// `Hash` of `Bytes` is the hash of its slice, so maps keyed by `ShortString` can be queried
/// with `&[u8]`.
impl Borrow<[u8]> for ShortString {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<&str> for ShortString {
    type Error = EncodeError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        ShortString::try_from(s.as_bytes())
    }
}

impl TryFrom<String> for ShortString {
    type Error = EncodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ShortString::from_bytes(Bytes::from(s))
    }
}

impl TryFrom<&[u8]> for ShortString {
    type Error = EncodeError;
    fn try_from(b: &[u8]) -> Result<Self, Self::Error> {
        if b.len() > Self::MAX_LEN {
            return Err(EncodeError::ShortStringTooLong { len: b.len() });
        }
        Ok(ShortString(Bytes::copy_from_slice(b)))
    }
}

impl TryFrom<Vec<u8>> for ShortString {
    type Error = EncodeError;
    fn try_from(b: Vec<u8>) -> Result<Self, Self::Error> {
        ShortString::from_bytes(Bytes::from(b))
    }
}

impl TryFrom<Bytes> for ShortString {
    type Error = EncodeError;
    fn try_from(b: Bytes) -> Result<Self, Self::Error> {
        ShortString::from_bytes(b)
    }
}

impl From<ShortString> for Bytes {
    fn from(s: ShortString) -> Bytes {
        s.0
    }
}

impl PartialEq<str> for ShortString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for ShortString {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<[u8]> for ShortString {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(ShortString::try_from("x".repeat(255).as_str()).is_ok());
        assert_eq!(
            ShortString::try_from("x".repeat(256)),
            Err(EncodeError::ShortStringTooLong { len: 256 })
        );
        assert_eq!(ShortString::from_static("abc"), "abc");
    }

    #[test]
    fn truncating_keeps_char_boundaries() {
        let s = "é".repeat(200); // 400 bytes
        let t = ShortString::truncating(&s);
        assert_eq!(t.len(), 254);
        assert!(t.to_str().is_ok());
        assert_eq!(ShortString::truncating("short"), "short");
    }

    #[test]
    fn debug_shows_text_or_bytes() {
        assert_eq!(format!("{:?}", ShortString::from_static("q")), "\"q\"");
        let raw = ShortString::try_from(&[0xff_u8][..]).unwrap();
        assert!(format!("{raw:?}").starts_with('b'));
        assert_eq!(raw.to_string(), "\u{fffd}");
    }
}
