//! The protocol-neutral message: a shared body plus normalized properties and annotations.
//! Adapters convert to and from it once per publish and once per delivery; the body is `Bytes`,
//! so fan-out clones a pointer, never the payload.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

/// A routed message. Held as `Arc<Message>` from the publisher to every destination.
#[derive(Debug, Clone)]
pub struct Message {
    /// The routing key in MQTT topic form (levels joined by `/`); see `routing_key`.
    pub topic: String,
    /// The payload.
    pub body: Bytes,
    /// Delivery guarantee asked for by the publisher: 0, 1 or 2 (MQTT QoS; AMQP persistent = 1).
    pub qos: u8,
    /// Published with the retain flag.
    pub retain: bool,
    /// When the message expires (MQTT Message Expiry Interval / AMQP expiration).
    pub expires_at: Option<Instant>,
    /// Normalized properties.
    pub properties: Properties,
    /// Who published it.
    pub origin: Origin,
}

/// Normalized message properties shared by MQTT 5 and AMQP.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    /// MQTT Payload Format Indicator 1: the payload is UTF-8.
    pub payload_is_utf8: bool,
    /// MQTT Content Type / AMQP content_type.
    pub content_type: Option<String>,
    /// MQTT Response Topic (MQTT form) / AMQP reply_to.
    pub response_topic: Option<String>,
    /// MQTT Correlation Data / AMQP correlation_id.
    pub correlation_data: Option<Bytes>,
    /// MQTT User Properties / AMQP headers (string values), in order.
    pub user_properties: Vec<(String, String)>,
}

/// Where a message came from, for No Local and logging.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The publishing session's identity (MQTT client id), if any.
    pub client_id: Option<Arc<str>>,
}

impl Message {
    /// True once the expiry instant has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whole seconds left before expiry, rounded up, for the Message Expiry Interval a
    /// receiver sees [MQTT-3.3.2-6]; `None` when the message never expires.
    pub fn remaining_expiry_secs(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}
