//! The few MQTT 3.1.1 packets a load generator needs, encoded into and parsed from caller
//! buffers. Written here rather than taken from `ferromq-mqtt` because the bench must spend as
//! little CPU per message as possible (it shares two cores with the broker it measures): it
//! parses a PUBLISH in place as borrowed slices, with no `String` topic, no properties and no
//! allocation, and it must not trust the codec of the broker it is measuring.

use anyhow::{bail, Result};
use bytes::{BufMut, BytesMut};

/// PINGREQ [MQTT 3.1.1 §3.12].
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];

/// A packet received from the broker, borrowing from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// CONNACK with its return code (0 = accepted) [§3.2.2.3].
    ConnAck { code: u8 },
    /// SUBACK with the first granted QoS (0x80 = failure) [§3.9.3].
    SubAck { packet_id: u16, granted: u8 },
    /// PUBLISH: QoS, packet id (0 for QoS 0) and payload.
    Publish {
        qos: u8,
        packet_id: u16,
        payload: &'a [u8],
    },
    /// PUBACK [§3.4].
    PubAck { packet_id: u16 },
    /// PINGRESP [§3.13].
    PingResp,
    /// Anything else, by packet type; callers ignore or reject it.
    Other(u8),
}

/// Appends a CONNECT (protocol level 4, clean session, no will, no credentials) [§3.1].
pub fn connect(buf: &mut BytesMut, client_id: &str, keep_alive: u16) {
    let len = 10 + 2 + client_id.len();
    buf.put_u8(0x10);
    put_remaining_length(buf, len);
    buf.put_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02]);
    buf.put_u16(keep_alive);
    put_str(buf, client_id);
}

/// Appends a SUBSCRIBE for one filter [§3.8].
pub fn subscribe(buf: &mut BytesMut, packet_id: u16, filter: &str, qos: u8) {
    // Fixed header flags 0b0010 are mandatory [MQTT-3.8.1-1].
    buf.put_u8(0x82);
    put_remaining_length(buf, 2 + 2 + filter.len() + 1);
    buf.put_u16(packet_id);
    put_str(buf, filter);
    buf.put_u8(qos);
}

/// Appends a PUBLISH; `packet_id` is ignored for QoS 0 [§3.3].
pub fn publish(buf: &mut BytesMut, topic: &str, qos: u8, packet_id: u16, payload: &[u8]) {
    let id_len = if qos > 0 { 2 } else { 0 };
    buf.put_u8(0x30 | (qos << 1));
    put_remaining_length(buf, 2 + topic.len() + id_len + payload.len());
    put_str(buf, topic);
    if qos > 0 {
        buf.put_u16(packet_id);
    }
    buf.put_slice(payload);
}

/// Appends a PUBACK [§3.4].
pub fn puback(buf: &mut BytesMut, packet_id: u16) {
    buf.put_slice(&[0x40, 0x02]);
    buf.put_u16(packet_id);
}

/// Parses one packet from the front of `buf`: `Ok(None)` if incomplete, else the packet and
/// the number of bytes it used. Errors on input no MQTT 3.1.1 server may send.
pub fn parse(buf: &[u8]) -> Result<Option<(Incoming<'_>, usize)>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut pos = 1;
    loop {
        let Some(&b) = buf.get(pos) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * (pos - 1));
        pos += 1;
        if b & 0x80 == 0 {
            break;
        }
        if pos > 4 {
            bail!("malformed remaining length");
        }
    }
    let Some(body) = buf.get(pos..pos + len) else {
        return Ok(None);
    };
    let used = pos + len;
    let u16_at = |i: usize| -> Result<u16> {
        match body.get(i..i + 2) {
            Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
            None => bail!("packet type {} too short", first >> 4),
        }
    };
    let packet = match first >> 4 {
        2 => Incoming::ConnAck {
            code: *body.get(1).unwrap_or(&0xff),
        },
        3 => {
            let qos = (first >> 1) & 0x03;
            let topic_len = usize::from(u16_at(0)?);
            let mut at = 2 + topic_len;
            let packet_id = if qos > 0 {
                let id = u16_at(at)?;
                at += 2;
                id
            } else {
                0
            };
            let Some(payload) = body.get(at..) else {
                bail!("PUBLISH shorter than its topic");
            };
            Incoming::Publish {
                qos,
                packet_id,
                payload,
            }
        }
        4 => Incoming::PubAck {
            packet_id: u16_at(0)?,
        },
        9 => Incoming::SubAck {
            packet_id: u16_at(0)?,
            granted: *body.get(2).unwrap_or(&0x80),
        },
        13 => Incoming::PingResp,
        other => Incoming::Other(other),
    };
    Ok(Some((packet, used)))
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

fn put_remaining_length(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        buf.put_u8(b);
        if len == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_matches_the_spec_example_layout() {
        let mut b = BytesMut::new();
        connect(&mut b, "ab", 60);
        assert_eq!(
            &b[..],
            &[0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'a', b'b']
        );
    }

    #[test]
    fn publish_round_trips_at_every_split() {
        let payload = vec![7u8; 300]; // two-byte remaining length
        let mut b = BytesMut::new();
        publish(&mut b, "a/b", 1, 513, &payload);
        puback(&mut b, 9);
        let first_len = b.len() - 4;
        for cut in 0..first_len {
            assert_eq!(parse(&b[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (p, used) = parse(&b).unwrap().unwrap();
        assert_eq!(used, first_len);
        assert_eq!(
            p,
            Incoming::Publish {
                qos: 1,
                packet_id: 513,
                payload: &payload
            }
        );
        let (p, used) = parse(&b[first_len..]).unwrap().unwrap();
        assert_eq!((p, used), (Incoming::PubAck { packet_id: 9 }, 4));
    }

    #[test]
    fn qos0_publish_has_no_packet_id() {
        let mut b = BytesMut::new();
        publish(&mut b, "t", 0, 77, b"xy");
        assert_eq!(&b[..], &[0x30, 5, 0, 1, b't', b'x', b'y']);
    }

    #[test]
    fn acks_and_errors() {
        assert_eq!(
            parse(&[0x20, 2, 0, 5]).unwrap().unwrap().0,
            Incoming::ConnAck { code: 5 }
        );
        assert_eq!(
            parse(&[0x90, 3, 0, 1, 0x80]).unwrap().unwrap().0,
            Incoming::SubAck {
                packet_id: 1,
                granted: 0x80
            }
        );
        assert_eq!(parse(&[0xD0, 0]).unwrap().unwrap().0, Incoming::PingResp);
        assert!(parse(&[0x30, 0xff, 0xff, 0xff, 0xff, 1]).is_err());
        assert!(parse(&[0x32, 3, 0, 9, b'x']).is_err());
    }

    #[test]
    fn subscribe_sets_the_reserved_flags() {
        let mut b = BytesMut::new();
        subscribe(&mut b, 1, "x/#", 1);
        assert_eq!(&b[..], &[0x82, 8, 0, 1, 0, 3, b'x', b'/', b'#', 1]);
    }
}
