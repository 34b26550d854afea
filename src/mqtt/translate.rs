//! MQTT PUBLISH <-> core `Message`, once per publish and once per delivery. Properties that
//! have a protocol-neutral meaning go into `message::Properties`; the payload is never copied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferromq_mqtt::{Properties as WireProperties, Publish};

use super::session::Outgoing;
use crate::broker::message::{AmqpProperties, HeaderValue, Message, Origin, Properties};
use crate::broker::routing_key;

/// A client's PUBLISH (topic already resolved from any alias) as a core message published to
/// `exchange` (the MQTT exchange).
pub fn to_message(
    publish: Publish,
    client_id: &Arc<str>,
    exchange: &Arc<str>,
    now: Instant,
) -> Message {
    let p = publish.properties;
    Message {
        exchange: Arc::clone(exchange),
        topic: publish.topic,
        body: publish.payload,
        qos: publish.qos as u8,
        retain: publish.retain,
        expires_at: p
            .message_expiry_interval
            .map(|secs| now + Duration::from_secs(u64::from(secs))),
        properties: Properties {
            payload_is_utf8: p.payload_format_indicator == Some(1),
            content_type: p.content_type,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
            amqp: None,
        },
        origin: Origin {
            client_id: Some(Arc::clone(client_id)),
        },
    }
}

/// A will message as a core message (MQTT 3.1.2.5 / v5 3.1.3.2).
pub fn will_to_message(
    will: ferromq_mqtt::Will,
    client_id: &Arc<str>,
    exchange: &Arc<str>,
    now: Instant,
) -> Message {
    to_message(
        Publish {
            dup: false,
            qos: will.qos,
            retain: will.retain,
            topic: will.topic,
            packet_id: None,
            properties: will.properties,
            payload: will.payload,
        },
        client_id,
        exchange,
        now,
    )
}

/// The v5 PUBLISH properties to send a queued message with; `None` when it has none (the
/// common case: then nothing is built per delivery). The Message Expiry Interval is what is
/// left of it [MQTT-3.3.2-6].
pub fn wire_properties(outgoing: &Outgoing, now: Instant) -> Option<WireProperties> {
    let m = &outgoing.message;
    let p = &m.properties;
    let expiry = m.remaining_expiry_secs(now);
    if !p.payload_is_utf8
        && expiry.is_none()
        && p.content_type.is_none()
        && p.response_topic.is_none()
        && p.correlation_data.is_none()
        && p.user_properties.is_empty()
        && p.amqp.is_none()
        && outgoing.subscription_ids.is_empty()
    {
        return None;
    }
    let mut properties = WireProperties {
        payload_format_indicator: p.payload_is_utf8.then_some(1),
        message_expiry_interval: expiry,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        subscription_identifiers: outgoing.subscription_ids.clone(),
        user_properties: p.user_properties.clone(),
        ..WireProperties::default()
    };
    if let Some(amqp) = p.amqp.as_deref() {
        from_amqp(amqp, &mut properties);
    }
    Some(properties)
}

/// Properties of a message published by AMQP, as an MQTT 5 subscriber sees them (README, "MQTT
/// and AMQP on one core"): `correlation_id` becomes Correlation Data, `reply_to` the Response
/// Topic (in MQTT spelling), headers with a scalar value become User Properties in order (text
/// as is, numbers and booleans in decimal / `true` / `false`); headers holding tables, arrays,
/// byte arrays or void have no MQTT form and are left out (the message itself is delivered).
/// `expiration` already set the message's expiry, sent as the Message Expiry Interval.
/// The headers that carry what an AMQP short string could not (`x-mqtt-correlation-data`,
/// `x-mqtt-response-topic`, see `amqp::translate`) become those properties again when the
/// short-string property is absent, so an AMQP server echoing them answers an MQTT 5
/// requester whatever the size of its Correlation Data.
fn from_amqp(a: &AmqpProperties, out: &mut WireProperties) {
    if let Some(id) = &a.correlation_id {
        out.correlation_data = Some(id.clone());
    }
    if let Some(reply_to) = &a.reply_to {
        let key = String::from_utf8_lossy(reply_to);
        out.response_topic = Some(routing_key::amqp_key_to_mqtt_topic(&key).into_owned());
    }
    let Some(headers) = &a.headers else { return };
    for (k, v) in &headers.0 {
        match (k.as_str(), v) {
            ("x-mqtt-correlation-data", HeaderValue::ByteArray(b) | HeaderValue::LongString(b)) => {
                if out.correlation_data.is_none() {
                    out.correlation_data = Some(b.clone());
                }
            }
            ("x-mqtt-response-topic", HeaderValue::LongString(b)) => {
                if out.response_topic.is_none() {
                    let key = String::from_utf8_lossy(b);
                    let topic = routing_key::amqp_key_to_mqtt_topic(&key).into_owned();
                    out.response_topic = Some(topic);
                }
            }
            _ => {
                if let Some(text) = scalar_text(v) {
                    out.user_properties.push((k.clone(), text));
                }
            }
        }
    }
}

fn scalar_text(v: &HeaderValue) -> Option<String> {
    Some(match v {
        HeaderValue::LongString(b) => std::str::from_utf8(b).ok()?.to_string(),
        HeaderValue::Bool(b) => b.to_string(),
        HeaderValue::F32(f) => f.to_string(),
        HeaderValue::F64(f) => f.to_string(),
        HeaderValue::Timestamp(t) => t.to_string(),
        HeaderValue::Decimal { scale, value } => {
            let digits = value.to_string();
            let scale = usize::from(*scale);
            if scale == 0 {
                digits
            } else {
                let padded = format!("{digits:0>width$}", width = scale + 1);
                let (int, frac) = padded.split_at(padded.len() - scale);
                format!("{int}.{frac}")
            }
        }
        other => other.as_i64()?.to_string(),
    })
}
