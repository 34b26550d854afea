//! PUBLISH body (3.1.1 section 3.3, 5.0 section 3.3). The fixed-header flags were checked by the
//! framing code; here come topic name, packet identifier, properties and the zero-copy payload.

use crate::error::DecodeError;
use crate::packet::{Packet, ProtocolVersion, Publish, QoS};
use crate::topic::check_topic_name;

use super::props::{read_properties, PropCtx};
use super::qos_from_bits;
use super::reader::Reader;

/// Returns `decode`'s final value directly, so the packet is built once, in place.
#[inline]
pub(super) fn decode_publish(
    r: &mut Reader,
    flags: u8,
    version: ProtocolVersion,
) -> Result<Option<Packet>, DecodeError> {
    let qos = qos_from_bits((flags >> 1) & 0b11)?;
    let topic = r.string()?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(r.packet_id()?),
    };
    let properties = if version.is_v5() {
        read_properties(r, PropCtx::Publish)?
    } else {
        Default::default()
    };
    if topic.is_empty() && version.is_v5() {
        // 5.0 3.3.2.1: an empty topic name is only allowed together with a Topic Alias.
        if properties.topic_alias.is_none() {
            return Err(DecodeError::ProtocolError(
                "empty topic name without a topic alias",
            ));
        }
    } else {
        // [MQTT-3.3.2-2] no wildcards, [MQTT-4.7.3-1] not empty.
        check_topic_name(&topic).map_err(DecodeError::TopicNameInvalid)?;
    }
    // Moving a finished `Packet` between wrappers cost a quarter of the decode time.
    Ok(Some(Packet::Publish(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 1 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })))
}
