//! Bytes -> `Packet`. Resumable: `decode` reads at most one packet from the front of the read
//! buffer and returns `Ok(None)`, leaving the buffer untouched, until the whole packet is there.
//! The size limit is checked from the fixed header before the body is waited for, and payloads
//! are zero-copy slices of the buffer. Per-packet parsing lives in the submodules; this file
//! owns framing (fixed header, flags, size limit) and dispatch.

mod connect;
mod props;
mod publish;
mod reader;
mod subscribe;

use bytes::{Buf, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Auth, Disconnect, Packet, ProtocolVersion, PubResponse, QoS};
use crate::reason::ReasonCode;

use props::{read_properties, PropCtx};
use reader::{parse_var_int, Reader};

/// Decodes one packet from the front of `buf` and advances `buf` past it.
///
/// `version` selects the 3.1 / 3.1.1 / 5.0 format of every packet except CONNECT, which
/// announces its own version (protocol name and level) and may be decoded with any `version`.
/// `max_packet_size` bounds the whole packet including the fixed header; it is enforced as soon
/// as the fixed header is readable.
///
/// Returns `Ok(None)`, with `buf` unchanged, while the packet is incomplete. On `Err` the
/// connection must be closed; how much of `buf` was consumed is then unspecified.
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = FixedHeader::parse(buf, version)? else {
        return Ok(None);
    };
    let size = header.packet_size();
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        return Ok(None);
    }
    let mut body = buf.split_to(size).freeze();
    body.advance(header.header_len);
    let mut r = Reader::new(body);
    decode_body(&header, &mut r, version)
}

/// Peeks at a CONNECT at the front of `buf` and returns the protocol version it announces,
/// without consuming anything or validating the rest of the packet.
///
/// Lets a server learn which CONNACK format to answer with before calling `decode` (whose
/// errors may leave `buf` partly consumed). `Ok(None)` until the protocol level byte has
/// arrived; `Err` if the first packet is not a CONNECT (`ProtocolError`), has reserved flags set
/// (`Malformed`), or names an unknown protocol or level.
pub fn decode_connect_version(buf: &[u8]) -> Result<Option<ProtocolVersion>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first >> 4 != 1 {
        return Err(DecodeError::ProtocolError("first packet is not CONNECT"));
    }
    check_flags(1, first & 0x0F, ProtocolVersion::V311)?;
    let Some(rl) = parse_var_int(&buf[1..])? else {
        return Ok(None);
    };
    let rest = &buf[1 + rl.len..];
    let Some(name_len) = rest
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return Ok(None);
    };
    let (Some(name), Some(&level)) = (rest.get(2..2 + name_len), rest.get(2 + name_len)) else {
        return Ok(None);
    };
    connect::protocol_version(name, level).map(Some)
}

/// The fixed header (section 2.1): packet type, flags and remaining length.
struct FixedHeader {
    packet_type: u8,
    flags: u8,
    /// 1 + the bytes of the Remaining Length field.
    header_len: usize,
    remaining_len: usize,
    /// False if the remaining length was not minimally encoded (malformed in 5.0).
    minimal: bool,
}

impl FixedHeader {
    /// `Ok(None)` until the whole fixed header has arrived. The first byte is checked at once,
    /// so garbage is rejected without waiting for a remaining length.
    fn parse(buf: &[u8], version: ProtocolVersion) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let (packet_type, flags) = (first >> 4, first & 0x0F);
        check_flags(packet_type, flags, version)?;
        let Some(rl) = parse_var_int(&buf[1..])? else {
            return Ok(None);
        };
        Ok(Some(FixedHeader {
            packet_type,
            flags,
            header_len: 1 + rl.len,
            remaining_len: rl.value as usize,
            minimal: rl.minimal,
        }))
    }

    fn packet_size(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Packet type and fixed-header flag rules (section 2.1.3, [MQTT-2.1.3-1], [MQTT-2.2.2-2]).
fn check_flags(packet_type: u8, flags: u8, version: ProtocolVersion) -> Result<(), DecodeError> {
    match packet_type {
        0 => Err(DecodeError::Malformed("reserved packet type 0")),
        15 if !version.is_v5() => Err(DecodeError::Malformed("packet type 15 before MQTT 5")),
        3 => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                // [MQTT-3.3.1-4]
                return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
            }
            // [MQTT-3.3.1-2]; MQTT 3.1 did not require it.
            if qos == 0 && flags & 0b1000 != 0 && version != ProtocolVersion::V31 {
                return Err(DecodeError::Malformed("DUP set on a QoS 0 PUBLISH"));
            }
            Ok(())
        }
        // PUBREL, SUBSCRIBE, UNSUBSCRIBE. MQTT 3.1 also let a resend set DUP.
        6 | 8 | 10 => match flags {
            0b0010 => Ok(()),
            0b1010 if version == ProtocolVersion::V31 => Ok(()),
            _ => Err(DecodeError::Malformed("fixed header flags must be 0010")),
        },
        _ if flags != 0 => Err(DecodeError::Malformed("reserved fixed header flags set")),
        _ => Ok(()),
    }
}

/// Parses the body and checks that nothing trails the packet's contents. PUBLISH returns its
/// packet untouched (see `decode_publish`): a `Packet` is large and copies of it dominated the
/// PUBLISH decode profile.
#[inline]
fn decode_body(
    header: &FixedHeader,
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Option<Packet>, DecodeError> {
    // [MQTT-1.5.5-1] for the remaining length; CONNECT announces its own version.
    let non_minimal_v5 = |v: ProtocolVersion| {
        if v.is_v5() && !header.minimal {
            Err(DecodeError::Malformed(
                "remaining length not minimally encoded",
            ))
        } else {
            Ok(())
        }
    };
    if header.packet_type != 1 {
        non_minimal_v5(version)?;
    }
    let v5 = version.is_v5();
    if header.packet_type == 3 {
        // The hot path. The payload is the rest of the body, so nothing can trail it.
        return publish::decode_publish(r, header.flags, version);
    }
    let packet = match header.packet_type {
        1 => {
            let c = connect::decode_connect(r)?;
            non_minimal_v5(c.protocol)?;
            Packet::Connect(Box::new(c))
        }
        2 => Packet::ConnAck(connect::decode_connack(r, version)?),
        4 => Packet::PubAck(decode_pub_response(r, v5)?),
        5 => Packet::PubRec(decode_pub_response(r, v5)?),
        6 => Packet::PubRel(decode_pub_response(r, v5)?),
        7 => Packet::PubComp(decode_pub_response(r, v5)?),
        8 => Packet::Subscribe(subscribe::decode_subscribe(r, v5)?),
        9 => Packet::SubAck(subscribe::decode_suback(r, v5)?),
        10 => Packet::Unsubscribe(subscribe::decode_unsubscribe(r, v5)?),
        11 => Packet::UnsubAck(subscribe::decode_unsuback(r, v5)?),
        12 => Packet::PingReq,
        13 => Packet::PingResp,
        14 => Packet::Disconnect(decode_disconnect(r, v5)?),
        15 => Packet::Auth(decode_auth(r)?),
        _ => return Err(DecodeError::Malformed("unknown packet type")),
    };
    r.finish()?;
    Ok(Some(packet))
}

/// PUBACK / PUBREC / PUBREL / PUBCOMP. In 5.0 a remaining length of 2 means Success with no
/// properties and 3 means a reason code without properties (3.4.2.1, 3.4.2.2.1).
fn decode_pub_response(r: &mut Reader, v5: bool) -> Result<PubResponse, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut resp = PubResponse {
        packet_id,
        reason: ReasonCode::SUCCESS,
        properties: Default::default(),
    };
    if v5 && !r.is_empty() {
        resp.reason = ReasonCode(r.u8()?);
        if !r.is_empty() {
            resp.properties = read_properties(r, PropCtx::PubResponse)?;
        }
    }
    Ok(resp)
}

/// DISCONNECT: no variable header before 5.0; in 5.0 `e0 00` is a Normal Disconnection and a
/// lone reason code has no properties (3.14.2.1, 3.14.2.2.1).
fn decode_disconnect(r: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    let mut d = Disconnect {
        reason: ReasonCode::NORMAL_DISCONNECTION,
        properties: Default::default(),
    };
    if v5 && !r.is_empty() {
        d.reason = ReasonCode(r.u8()?);
        if !r.is_empty() {
            d.properties = read_properties(r, PropCtx::Disconnect)?;
        }
    }
    Ok(d)
}

/// AUTH (5.0 only): `f0 00` means Success with no properties; otherwise reason code and
/// property length are both present (3.15.2.1).
fn decode_auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    if r.is_empty() {
        return Ok(Auth {
            reason: ReasonCode::SUCCESS,
            properties: Default::default(),
        });
    }
    let reason = ReasonCode(r.u8()?);
    let properties = read_properties(r, PropCtx::Auth)?;
    Ok(Auth { reason, properties })
}

/// QoS bits of a PUBLISH fixed header or a subscription option byte; 3 is malformed.
fn qos_from_bits(bits: u8) -> Result<QoS, DecodeError> {
    QoS::from_u8(bits).ok_or(DecodeError::Malformed("QoS 3"))
}
