//! Shared helpers for the codec tests: hex literals, short-string and table builders, and the
//! resumability checks every golden decode goes through (split at every byte, two frames glued
//! together, frame-max at the exact frame size).
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use ferromq_amqp::{
    decode_frame, encode_frame, DecodeError, FieldTable, FieldValue, Frame, ShortString,
};

/// Parses `"01 00 0a"`-style hex (whitespace ignored).
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(digits.len() % 2, 0, "odd hex literal {s:?}");
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(s, 16).expect("hex digit")
        })
        .collect()
}

/// A short string from a literal.
pub fn ss(s: &'static str) -> ShortString {
    ShortString::from_static(s)
}

/// `Bytes` from a literal.
pub fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// A table from `(name, value)` pairs, in order.
pub fn table(entries: Vec<(&'static str, FieldValue)>) -> FieldTable {
    entries.into_iter().map(|(k, v)| (ss(k), v)).collect()
}

/// A generous frame-max for tests that are not about the limit.
pub const MAX: u32 = 1 << 20;

/// The heartbeat frame, to glue after other frames.
pub const HEARTBEAT: [u8; 8] = [8, 0, 0, 0, 0, 0, 0, 0xCE];

/// Decodes `bytes` as one whole frame and nothing else.
pub fn decode_one(bytes: &[u8]) -> Result<Frame, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let frame = decode_frame(&mut buf, MAX)?.expect("a complete frame");
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    Ok(frame)
}

/// The error `bytes` decode to (asserting it is an error, not a frame or `Ok(None)`).
pub fn decode_err(bytes: &[u8]) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode_frame(&mut buf, MAX) {
        Err(e) => e,
        Ok(other) => panic!("expected an error for {bytes:02x?}, got {other:?}"),
    }
}

/// Decodes every frame in `bytes`, asserting nothing is left over.
pub fn decode_all(bytes: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(f) = decode_frame(&mut buf, MAX).expect("decodes") {
        frames.push(f);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    frames
}

/// Asserts that `bytes` (one frame) decode to `expected`, however the bytes arrive:
/// - fed one byte at a time, every proper prefix gives `Ok(None)` and leaves the buffer as is;
/// - split once at every offset, the first part gives `Ok(None)`, the whole the frame;
/// - glued to a copy of itself and to a heartbeat, frames come out in order with nothing left;
/// - a frame-max of exactly the frame size passes; one less fails from the 7-byte header alone.
pub fn check_decode(bytes: &[u8], expected: &Frame) {
    assert_eq!(decode_one(bytes).as_ref(), Ok(expected), "{bytes:02x?}");

    let mut buf = BytesMut::new();
    for (i, &byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        let before = buf.clone();
        let got = decode_frame(&mut buf, MAX);
        if i + 1 < bytes.len() {
            assert_eq!(got, Ok(None), "prefix of {} bytes of {bytes:02x?}", i + 1);
            assert_eq!(buf, before, "Ok(None) must leave the buffer untouched");
        } else {
            assert_eq!(got.as_ref().map(Option::as_ref), Ok(Some(expected)));
            assert!(buf.is_empty());
        }
    }

    for split in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..split]);
        assert_eq!(decode_frame(&mut buf, MAX), Ok(None), "split at {split}");
        assert_eq!(&buf[..], &bytes[..split]);
        buf.extend_from_slice(&bytes[split..]);
        let got = decode_frame(&mut buf, MAX)
            .expect("decodes")
            .expect("complete");
        assert_eq!(&got, expected, "split at {split}");
        assert!(buf.is_empty());
    }

    let mut glued = BytesMut::new();
    glued.extend_from_slice(bytes);
    glued.extend_from_slice(bytes);
    glued.extend_from_slice(&HEARTBEAT);
    for want in [expected, expected, &Frame::heartbeat()] {
        let got = decode_frame(&mut glued, MAX)
            .expect("decodes")
            .expect("complete");
        assert_eq!(&got, want);
    }
    assert!(glued.is_empty());
    assert_eq!(decode_frame(&mut glued, MAX), Ok(None));

    let size = u32::try_from(bytes.len()).expect("small frame");
    let mut exact = BytesMut::from(bytes);
    assert!(decode_frame(&mut exact, size)
        .expect("at the limit")
        .is_some());
    let mut header_only = BytesMut::from(&bytes[..7]);
    assert_eq!(
        decode_frame(&mut header_only, size - 1),
        Err(DecodeError::FrameTooLarge {
            size: u64::from(size),
            max: size - 1
        })
    );
}

/// Asserts that `frame` encodes to exactly `bytes`, appended after what `out` held.
pub fn check_encode(frame: &Frame, bytes: &[u8]) {
    let mut out = BytesMut::from(&b"prefix"[..]);
    encode_frame(frame, &mut out).expect("encodes");
    assert_eq!(&out[..6], b"prefix", "encode must append");
    assert_eq!(&out[6..], bytes, "{frame:?}");
}

/// Both directions: the canonical encoding of one frame.
pub fn golden(hex_bytes: &str, frame: Frame) {
    let bytes = hex(hex_bytes);
    check_decode(&bytes, &frame);
    check_encode(&frame, &bytes);
}

/// Encodes a frame into fresh bytes.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(frame, &mut out).expect("encodes");
    out.to_vec()
}
