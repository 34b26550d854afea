//! MQTT PUBLISH <-> core `Message`, once per publish and once per delivery. Properties that
//! have a protocol-neutral meaning go into `message::Properties`; the payload is never copied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferromq_mqtt::{PacketId, Properties as WireProperties, Publish, QoS};

use super::session::Outgoing;
use crate::broker::message::{Message, Origin, Properties};

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

/// The PUBLISH to send for a queued message. v5 properties are filled in; for v3 the encoder
/// ignores them. The Message Expiry Interval is what is left of it [MQTT-3.3.2-6].
pub fn to_publish(
    outgoing: &Outgoing,
    packet_id: Option<PacketId>,
    dup: bool,
    now: Instant,
) -> Publish {
    let m = &outgoing.message;
    let p = &m.properties;
    Publish {
        dup,
        qos: QoS::from_u8(outgoing.qos).unwrap_or(QoS::AtMostOnce),
        retain: outgoing.retain,
        topic: m.topic.clone(),
        packet_id,
        properties: WireProperties {
            payload_format_indicator: p.payload_is_utf8.then_some(1),
            message_expiry_interval: m.remaining_expiry_secs(now),
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone(),
            subscription_identifiers: outgoing.subscription_ids.clone(),
            user_properties: p.user_properties.clone(),
            ..WireProperties::default()
        },
        payload: m.body.clone(),
    }
}
