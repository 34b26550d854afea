//! `Packet` -> bytes. Every packet is sized first (which also validates string lengths, so
//! nothing is written on error), then written after one `reserve`. `encoded_len` runs the same
//! sizing without writing, so the broker can honour a client's Maximum Packet Size cheaply.
//! Per-packet layouts live in the submodules; this file owns the fixed header and the MQTT
//! data-type writers.

mod connect;
mod props;
mod subscribe;

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::packet::{Auth, Disconnect, Packet, ProtocolVersion, PubResponse, PublishRef, QoS};
use crate::properties::Properties;
use crate::reason::ReasonCode;

use props::{properties_len, put_properties, section_len};

/// Appends exactly one encoded packet to `out`.
///
/// `version` selects the wire format, except for CONNECT, which is written in the version named
/// by its own `protocol` field. Before 5.0, properties and other 5.0-only fields are omitted and
/// CONNACK codes are mapped with `ReasonCode::to_v3_connack`. On error `out` is unchanged.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let layout = layout(packet, version)?;
    out.reserve(layout.packet_size());
    out.put_u8(first_byte(packet));
    put_var_int(out, layout.remaining);
    write_body(packet, version, &layout, out);
    Ok(())
}

/// `encode` for a PUBLISH given by its parts (see `PublishRef`); the same bytes as encoding
/// the equivalent `Packet::Publish`.
pub fn encode_publish(
    publish: &PublishRef<'_>,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let layout = publish_layout(publish, version.is_v5())?;
    out.reserve(layout.packet_size());
    out.put_u8(publish_first_byte(publish));
    put_var_int(out, layout.remaining);
    put_publish(publish, &layout, out);
    Ok(())
}

/// `encoded_len` for a PUBLISH given by its parts.
pub fn encoded_publish_len(
    publish: &PublishRef<'_>,
    version: ProtocolVersion,
) -> Result<usize, EncodeError> {
    Ok(publish_layout(publish, version.is_v5())?.packet_size())
}

/// The size `encode` would produce for `packet`, fixed header included, without allocating.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    Ok(layout(packet, version)?.packet_size())
}

/// Largest value of a Variable Byte Integer, hence of the remaining length (section 2.2.3).
pub(crate) const MAX_VAR_INT: u32 = 268_435_455;

/// The sizes `encode` needs, computed once.
struct Layout {
    /// Remaining Length of the fixed header.
    remaining: usize,
    /// Bytes of the packet's properties, or `None` when no Property Length is written
    /// (before 5.0, and the 5.0 short forms).
    props: Option<usize>,
    /// The same for the will properties of CONNECT.
    will_props: Option<usize>,
    /// Whether a 5.0 reason code byte is written (acks, DISCONNECT, AUTH short forms).
    reason: bool,
}

impl Layout {
    fn new(remaining: usize) -> Layout {
        Layout {
            remaining,
            props: None,
            will_props: None,
            reason: false,
        }
    }

    fn packet_size(&self) -> usize {
        1 + var_int_len(self.remaining) + self.remaining
    }
}

fn layout(packet: &Packet, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    let v5 = version.is_v5();
    let layout = match packet {
        Packet::Connect(c) => connect::connect_layout(c)?,
        Packet::ConnAck(c) => connect::connack_layout(c, v5)?,
        Packet::Publish(p) => publish_layout(&p.as_publish_ref(), v5)?,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            pub_response_layout(r, v5)?
        }
        Packet::Subscribe(s) => subscribe::subscribe_layout(s, v5)?,
        Packet::SubAck(s) => subscribe::suback_layout(s, v5)?,
        Packet::Unsubscribe(u) => subscribe::unsubscribe_layout(u, v5)?,
        Packet::UnsubAck(u) => subscribe::unsuback_layout(u, v5)?,
        Packet::PingReq | Packet::PingResp => Layout::new(0),
        Packet::Disconnect(d) => disconnect_layout(d, v5)?,
        Packet::Auth(a) => auth_layout(a, v5)?,
    };
    if layout.remaining > MAX_VAR_INT as usize {
        return Err(EncodeError::PacketTooLarge {
            size: layout.remaining,
        });
    }
    Ok(layout)
}

fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => 0x10,
        Packet::ConnAck(_) => 0x20,
        Packet::Publish(p) => publish_first_byte(&p.as_publish_ref()),
        Packet::PubAck(_) => 0x40,
        Packet::PubRec(_) => 0x50,
        // [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]: flags 0010.
        Packet::PubRel(_) => 0x62,
        Packet::PubComp(_) => 0x70,
        Packet::Subscribe(_) => 0x82,
        Packet::SubAck(_) => 0x90,
        Packet::Unsubscribe(_) => 0xA2,
        Packet::UnsubAck(_) => 0xB0,
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(_) => 0xE0,
        Packet::Auth(_) => 0xF0,
    }
}

fn write_body(packet: &Packet, version: ProtocolVersion, layout: &Layout, out: &mut BytesMut) {
    match packet {
        Packet::Connect(c) => connect::put_connect(c, layout, out),
        Packet::ConnAck(c) => connect::put_connack(c, version, layout, out),
        Packet::Publish(p) => put_publish(&p.as_publish_ref(), layout, out),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            out.put_u16(r.packet_id.get());
            put_reason_and_props(out, r.reason, &r.properties, layout);
        }
        Packet::Subscribe(s) => subscribe::put_subscribe(s, version.is_v5(), layout, out),
        Packet::SubAck(s) => subscribe::put_suback(s, layout, out),
        Packet::Unsubscribe(u) => subscribe::put_unsubscribe(u, layout, out),
        Packet::UnsubAck(u) => subscribe::put_unsuback(u, layout, out),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => put_reason_and_props(out, d.reason, &d.properties, layout),
        Packet::Auth(a) => put_reason_and_props(out, a.reason, &a.properties, layout),
    }
}

fn publish_first_byte(p: &PublishRef<'_>) -> u8 {
    0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
}

fn publish_layout(p: &PublishRef<'_>, v5: bool) -> Result<Layout, EncodeError> {
    let mut remaining = str_len(p.topic, "topic name")? + p.payload.len();
    match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, None) => {}
        (QoS::AtMostOnce, Some(_)) => return Err(EncodeError::UnexpectedPacketId),
        (_, Some(_)) => remaining += 2,
        (_, None) => return Err(EncodeError::MissingPacketId),
    }
    let mut layout = Layout::new(0);
    if v5 {
        let props = properties_len(p.properties)?;
        remaining += section_len(props);
        layout.props = Some(props);
    }
    layout.remaining = remaining;
    Ok(layout)
}

fn put_publish(p: &PublishRef<'_>, layout: &Layout, out: &mut BytesMut) {
    put_str(out, p.topic);
    if let Some(id) = p.packet_id {
        out.put_u16(id.get());
    }
    if let Some(len) = layout.props {
        put_properties(out, p.properties, len);
    }
    out.put_slice(p.payload);
}

/// PUBACK family: 5.0 drops Success-without-properties to the 2-byte form and writes no
/// Property Length when there are no properties (3.4.2.1, 3.4.2.2.1).
fn pub_response_layout(r: &PubResponse, v5: bool) -> Result<Layout, EncodeError> {
    let mut layout = Layout::new(2);
    if v5 {
        reason_and_props_layout(&mut layout, r.reason, &r.properties, ReasonCode::SUCCESS)?;
    }
    Ok(layout)
}

/// DISCONNECT: `e0 00` before 5.0, and in 5.0 for a Normal Disconnection without properties.
fn disconnect_layout(d: &Disconnect, v5: bool) -> Result<Layout, EncodeError> {
    let mut layout = Layout::new(0);
    if v5 {
        let normal = ReasonCode::NORMAL_DISCONNECTION;
        reason_and_props_layout(&mut layout, d.reason, &d.properties, normal)?;
    }
    Ok(layout)
}

/// AUTH (5.0 only): `f0 00` for Success without properties, otherwise reason code and a
/// Property Length (a lone reason code is not an allowed form, 3.15.2.1).
fn auth_layout(a: &Auth, v5: bool) -> Result<Layout, EncodeError> {
    if !v5 {
        return Err(EncodeError::UnsupportedInVersion("AUTH"));
    }
    let props = properties_len(&a.properties)?;
    let mut layout = Layout::new(0);
    if a.reason != ReasonCode::SUCCESS || props > 0 {
        layout.reason = true;
        layout.props = Some(props);
        layout.remaining = 1 + section_len(props);
    }
    Ok(layout)
}

/// Adds the optional 5.0 reason code and properties: both omitted for `default` without
/// properties, the Property Length omitted when there are no properties.
fn reason_and_props_layout(
    layout: &mut Layout,
    reason: ReasonCode,
    properties: &Properties,
    default: ReasonCode,
) -> Result<(), EncodeError> {
    let props = properties_len(properties)?;
    if props > 0 {
        layout.reason = true;
        layout.props = Some(props);
        layout.remaining += 1 + section_len(props);
    } else if reason != default {
        layout.reason = true;
        layout.remaining += 1;
    }
    Ok(())
}

fn put_reason_and_props(
    out: &mut BytesMut,
    reason: ReasonCode,
    properties: &Properties,
    layout: &Layout,
) {
    if layout.reason {
        out.put_u8(reason.0);
    }
    if let Some(len) = layout.props {
        put_properties(out, properties, len);
    }
}

/// Size of a UTF-8 Encoded String field: 2-byte length + bytes; over 65,535 bytes is an error.
pub(crate) fn str_len(s: &str, field: &'static str) -> Result<usize, EncodeError> {
    binary_len(s.as_bytes(), field)
}

/// Size of a Binary Data field; over 65,535 bytes is an error, never a truncation.
pub(crate) fn binary_len(b: &[u8], field: &'static str) -> Result<usize, EncodeError> {
    if b.len() > usize::from(u16::MAX) {
        return Err(EncodeError::StringTooLong {
            field,
            len: b.len(),
        });
    }
    Ok(2 + b.len())
}

/// Writes a string already checked by `str_len`.
pub(crate) fn put_str(out: &mut BytesMut, s: &str) {
    put_binary(out, s.as_bytes());
}

/// Writes binary data already checked by `binary_len`.
pub(crate) fn put_binary(out: &mut BytesMut, b: &[u8]) {
    // Lengths were validated while sizing the packet; the cast cannot truncate.
    out.put_u16(b.len() as u16);
    out.put_slice(b);
}

/// Bytes a Variable Byte Integer takes (values are at most `MAX_VAR_INT` by then).
pub(crate) fn var_int_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a Variable Byte Integer (section 1.5.5), minimally encoded.
pub(crate) fn put_var_int(out: &mut BytesMut, mut v: usize) {
    loop {
        let byte = (v % 128) as u8;
        v /= 128;
        if v == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_int_round_trip_sizes() {
        for (v, bytes) in [
            (0usize, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = BytesMut::new();
            put_var_int(&mut out, v);
            assert_eq!(&out[..], bytes, "{v}");
            assert_eq!(var_int_len(v), bytes.len(), "{v}");
        }
    }
}
