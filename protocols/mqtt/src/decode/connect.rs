//! CONNECT and CONNACK bodies (3.1.1 sections 3.1-3.2, 5.0 sections 3.1-3.2). CONNECT carries its
//! own protocol version; CONNACK is read in the version the connection negotiated.

use crate::error::DecodeError;
use crate::packet::{ConnAck, Connect, ProtocolVersion, Will};
use crate::reason::ReasonCode;
use crate::topic::check_topic_name;

use super::props::{read_properties, PropCtx};
use super::qos_from_bits;
use super::reader::Reader;

/// Maps protocol name + level to a version: `MQIsdp`/3, `MQTT`/4, `MQTT`/5.
pub(crate) fn protocol_version(name: &[u8], level: u8) -> Result<ProtocolVersion, DecodeError> {
    match (name, level) {
        (b"MQIsdp", 3) => Ok(ProtocolVersion::V31),
        (b"MQTT", 4) => Ok(ProtocolVersion::V311),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQIsdp" | b"MQTT", other) => Err(DecodeError::UnsupportedProtocolVersion(other)),
        _ => Err(DecodeError::InvalidProtocolName),
    }
}

const RESERVED: u8 = 0b0000_0001;
const CLEAN_START: u8 = 0b0000_0010;
const WILL: u8 = 0b0000_0100;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0b0010_0000;
const PASSWORD: u8 = 0b0100_0000;
const USERNAME: u8 = 0b1000_0000;

pub(super) fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.raw_str()?;
    let level = r.u8()?;
    let protocol = protocol_version(&name, level)?;
    let v5 = protocol.is_v5();

    let flags = r.u8()?;
    // [MQTT-3.1.2-3]; MQTT 3.1 left the bit unspecified.
    if flags & RESERVED != 0 && protocol != ProtocolVersion::V31 {
        return Err(DecodeError::Malformed("CONNECT reserved flag set"));
    }
    let has_will = flags & WILL != 0;
    let will_qos_bits = (flags >> WILL_QOS_SHIFT) & 0b11;
    let will_retain = flags & WILL_RETAIN != 0;
    if !has_will && (will_qos_bits != 0 || will_retain) {
        // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
        return Err(DecodeError::Malformed(
            "will QoS or retain set without a will",
        ));
    }
    // [MQTT-3.1.2-14]
    let will_qos = qos_from_bits(will_qos_bits)?;
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    // [MQTT-3.1.2-22]; 5.0 allows a password without a user name.
    if has_password && !has_username && !v5 {
        return Err(DecodeError::Malformed("password without user name"));
    }

    let keep_alive = r.u16()?;
    let properties = if v5 {
        read_properties(r, PropCtx::Connect)?
    } else {
        Default::default()
    };
    let client_id = r.string()?;
    let will = if has_will {
        let properties = if v5 {
            read_properties(r, PropCtx::Will)?
        } else {
            Default::default()
        };
        let topic = r.string()?;
        check_topic_name(&topic).map_err(DecodeError::TopicNameInvalid)?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

pub(super) fn decode_connack(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<ConnAck, DecodeError> {
    let ack_flags = r.u8()?;
    let session_present = match version {
        // MQTT 3.1: the first byte is unused, there is no Session Present flag.
        ProtocolVersion::V31 => false,
        // [MQTT-3.2.2-1] 3.1.1 / 3.2.2.1 5.0: bits 7-1 are reserved.
        _ if ack_flags & 0xFE != 0 => {
            return Err(DecodeError::Malformed("CONNACK reserved flags set"))
        }
        _ => ack_flags & 1 != 0,
    };
    let raw_code = r.u8()?;
    let (code, properties) = if version.is_v5() {
        (ReasonCode(raw_code), read_properties(r, PropCtx::ConnAck)?)
    } else {
        let code = ReasonCode::from_v3_connack(raw_code)
            .ok_or(DecodeError::Malformed("reserved CONNACK return code"))?;
        (code, Default::default())
    };
    // [MQTT-3.2.2-4] 3.1.1, [MQTT-3.2.2-6] 5.0.
    if session_present && code != ReasonCode::SUCCESS {
        return Err(DecodeError::ProtocolError(
            "session present with a refusing CONNACK",
        ));
    }
    Ok(ConnAck {
        session_present,
        code,
        properties,
    })
}
