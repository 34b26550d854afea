//! Shared helpers for the codec tests: hex literals, packet builders, and the resumability
//! checks every golden decode goes through (split at every byte, two packets glued together,
//! the size limit at the exact packet size).
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use ferromq_mqtt::{
    decode, encode, encoded_len, DecodeError, Packet, PacketId, ProtocolVersion, QoS,
    SubscribeFilter, SubscriptionOptions,
};

/// Parses `"10 0f 00 04"`-style hex (whitespace ignored).
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

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

pub fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

pub fn filter(f: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter {
        filter: f.to_owned(),
        options: SubscriptionOptions::with_qos(qos),
    }
}

/// A generous limit for tests that are not about the size limit.
pub const MAX: usize = 1 << 20;

/// Decodes `bytes` as one whole packet and nothing else.
pub fn decode_all(bytes: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, version, MAX)?.expect("a complete packet");
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    Ok(packet)
}

/// The error `bytes` decode to (asserting it is an error, not a packet or `Ok(None)`).
pub fn decode_err(bytes: &[u8], version: ProtocolVersion) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, version, MAX) {
        Err(e) => e,
        Ok(other) => panic!("expected an error for {bytes:02x?} ({version:?}), got {other:?}"),
    }
}

/// Asserts that `bytes` decode to `expected`, and that this holds however the bytes arrive:
/// - fed one byte at a time, every proper prefix gives `Ok(None)` and leaves the buffer as is;
/// - split once at every offset, the first part gives `Ok(None)`, the whole the packet;
/// - glued to a copy of itself and to a PINGREQ, packets come out in order with nothing left;
/// - a limit of exactly the packet size passes, one byte less is `PacketTooLarge`.
pub fn check_decode(bytes: &[u8], version: ProtocolVersion, expected: &Packet) {
    assert_eq!(
        decode_all(bytes, version).as_ref(),
        Ok(expected),
        "{bytes:02x?}"
    );

    let mut buf = BytesMut::new();
    for (i, &byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        let before = buf.clone();
        let got = decode(&mut buf, version, MAX);
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
        assert_eq!(decode(&mut buf, version, MAX), Ok(None), "split at {split}");
        assert_eq!(&buf[..], &bytes[..split]);
        buf.extend_from_slice(&bytes[split..]);
        let got = decode(&mut buf, version, MAX)
            .expect("decodes")
            .expect("complete");
        assert_eq!(&got, expected, "split at {split}");
        assert!(buf.is_empty());
    }

    let mut glued = BytesMut::new();
    glued.extend_from_slice(bytes);
    glued.extend_from_slice(bytes);
    glued.extend_from_slice(&[0xC0, 0x00]);
    for want in [expected, expected, &Packet::PingReq] {
        let got = decode(&mut glued, version, MAX)
            .expect("decodes")
            .expect("complete");
        assert_eq!(&got, want);
    }
    assert!(glued.is_empty());
    assert_eq!(decode(&mut glued, version, MAX), Ok(None));

    let mut exact = BytesMut::from(bytes);
    assert!(decode(&mut exact, version, bytes.len())
        .expect("at the limit")
        .is_some());
    let mut over = BytesMut::from(bytes);
    assert_eq!(
        decode(&mut over, version, bytes.len() - 1),
        Err(DecodeError::PacketTooLarge {
            size: bytes.len(),
            max: bytes.len() - 1
        })
    );
}

/// Asserts that `packet` encodes to exactly `bytes` and that `encoded_len` agrees.
pub fn check_encode(packet: &Packet, version: ProtocolVersion, bytes: &[u8]) {
    let mut out = BytesMut::from(&b"prefix"[..]);
    encode(packet, version, &mut out).expect("encodes");
    assert_eq!(&out[..6], b"prefix", "encode must append");
    assert_eq!(&out[6..], bytes, "{packet:?} in {version:?}");
    assert_eq!(encoded_len(packet, version), Ok(bytes.len()));
}

/// Both directions: the canonical encoding of a packet.
pub fn golden(hex_bytes: &str, version: ProtocolVersion, packet: Packet) {
    let bytes = hex(hex_bytes);
    check_decode(&bytes, version, &packet);
    check_encode(&packet, version, &bytes);
}
