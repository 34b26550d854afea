//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK bodies (3.1.1 sections 3.8-3.11, 5.0 sections
//! 3.8-3.11). Topic filters are validated here, `$share/` shape included.

use crate::error::DecodeError;
use crate::packet::{
    RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use crate::reason::ReasonCode;
use crate::topic::{check_topic_filter, parse_shared};

use super::props::{read_properties, PropCtx};
use super::qos_from_bits;
use super::reader::Reader;

pub(super) fn decode_subscribe(r: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = if v5 {
        read_properties(r, PropCtx::Subscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = read_filter(r)?;
        let options = subscription_options(r.u8()?, v5)?;
        // [MQTT-3.8.3-4] 5.0: No Local on a shared subscription is a Protocol Error.
        if options.no_local && parse_shared(&filter).is_some() {
            return Err(DecodeError::ProtocolError(
                "no local on a shared subscription",
            ));
        }
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        // [MQTT-3.8.3-3] 3.1.1 and 5.0.
        return Err(DecodeError::ProtocolError(
            "SUBSCRIBE without topic filters",
        ));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

fn subscription_options(byte: u8, v5: bool) -> Result<SubscriptionOptions, DecodeError> {
    if !v5 {
        // [MQTT-3.8.3-4] 3.1.1: the upper six bits of the requested QoS byte are reserved.
        if byte & 0xFC != 0 {
            return Err(DecodeError::Malformed("reserved bits in requested QoS"));
        }
        return Ok(SubscriptionOptions::with_qos(qos_from_bits(byte)?));
    }
    // [MQTT-3.8.3-5] 5.0: bits 6 and 7 are reserved.
    if byte & 0xC0 != 0 {
        return Err(DecodeError::Malformed(
            "reserved subscription option bits set",
        ));
    }
    let retain_handling = match (byte >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::ProtocolError("retain handling 3")),
    };
    Ok(SubscriptionOptions {
        qos: qos_from_bits(byte & 0b11)?,
        no_local: byte & 0b0100 != 0,
        retain_as_published: byte & 0b1000 != 0,
        retain_handling,
    })
}

pub(super) fn decode_suback(r: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = if v5 {
        read_properties(r, PropCtx::SubAck)?
    } else {
        Default::default()
    };
    let reasons = read_reasons(r)?;
    // [MQTT-3.9.3-2] 3.1.1: only 0x00, 0x01, 0x02 and 0x80 are defined.
    if !v5 && reasons.iter().any(|c| !matches!(c.0, 0x00..=0x02 | 0x80)) {
        return Err(DecodeError::Malformed("reserved SUBACK return code"));
    }
    Ok(SubAck {
        packet_id,
        reasons,
        properties,
    })
}

pub(super) fn decode_unsubscribe(r: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = if v5 {
        read_properties(r, PropCtx::Unsubscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(read_filter(r)?);
    }
    if filters.is_empty() {
        // [MQTT-3.10.3-2]
        return Err(DecodeError::ProtocolError(
            "UNSUBSCRIBE without topic filters",
        ));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

/// UNSUBACK: just the packet identifier before 5.0; 5.0 adds properties and one reason code
/// per topic filter.
pub(super) fn decode_unsuback(r: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    if !v5 {
        return Ok(UnsubAck {
            packet_id,
            reasons: Vec::new(),
            properties: Default::default(),
        });
    }
    let properties = read_properties(r, PropCtx::UnsubAck)?;
    let reasons = read_reasons(r)?;
    Ok(UnsubAck {
        packet_id,
        reasons,
        properties,
    })
}

fn read_filter(r: &mut Reader) -> Result<String, DecodeError> {
    let filter = r.string()?;
    check_topic_filter(&filter).map_err(DecodeError::TopicFilterInvalid)?;
    Ok(filter)
}

/// The rest of the packet as reason codes, one per filter of the request (so at least one).
fn read_reasons(r: &mut Reader) -> Result<Vec<ReasonCode>, DecodeError> {
    if r.is_empty() {
        return Err(DecodeError::ProtocolError(
            "acknowledgement without reason codes",
        ));
    }
    Ok(r.rest().iter().map(|&b| ReasonCode(b)).collect())
}
