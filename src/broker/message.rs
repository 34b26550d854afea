//! The protocol-neutral message: a shared body plus normalized properties and annotations.
//! Adapters convert to and from it once per publish and once per delivery; the body is `Bytes`,
//! so fan-out clones a pointer, never the payload. AMQP basic properties are mirrored in
//! [`AmqpProperties`] so an AMQP-to-AMQP hop loses nothing; header tables live in `headers`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

pub use super::headers::{HeaderValue, Headers};

/// A routed message. Held as `Arc<Message>` from the publisher to every destination.
#[derive(Debug, Clone)]
pub struct Message {
    /// The exchange it was published to (MQTT publishes, wills and `$SYS`: the MQTT exchange).
    pub exchange: Arc<str>,
    /// The routing key in MQTT topic form (levels joined by `/`); see `routing_key`. An AMQP
    /// routing key is converted with `routing_key::amqp_key_to_mqtt_topic` on publish and back
    /// with `routing_key::mqtt_topic_to_amqp_key` on delivery.
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
    /// The AMQP basic properties as published, when the publisher spoke AMQP (boxed: MQTT
    /// messages pay one pointer for it).
    pub amqp: Option<Box<AmqpProperties>>,
}

/// AMQP 0-9-1 basic properties (spec 1.8.5 "basic" class fields) in protocol-neutral types, so an
/// AMQP publish reaches an AMQP consumer unchanged. `content_type` is the shared
/// [`Properties::content_type`]. Strings are octets as on the wire (short strings may hold any
/// bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AmqpProperties {
    /// `content-encoding`.
    pub content_encoding: Option<Bytes>,
    /// `headers`.
    pub headers: Option<Headers>,
    /// `delivery-mode`: 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    /// `priority`, 0-9.
    pub priority: Option<u8>,
    /// `correlation-id`.
    pub correlation_id: Option<Bytes>,
    /// `reply-to`.
    pub reply_to: Option<Bytes>,
    /// `expiration`: a TTL in milliseconds, as decimal text (RabbitMQ's per-message TTL).
    pub expiration: Option<Bytes>,
    /// `message-id`.
    pub message_id: Option<Bytes>,
    /// `timestamp`, seconds since the epoch.
    pub timestamp: Option<u64>,
    /// `type`.
    pub kind: Option<Bytes>,
    /// `user-id`.
    pub user_id: Option<Bytes>,
    /// `app-id`.
    pub app_id: Option<Bytes>,
    /// `cluster-id` (deprecated in 0-9-1, carried through).
    pub cluster_id: Option<Bytes>,
}

/// Where a message came from, for No Local and logging.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The publishing session's identity (MQTT client id), if any.
    pub client_id: Option<Arc<str>>,
}

impl Message {
    /// The AMQP `headers` table, if the message has one.
    pub fn amqp_headers(&self) -> Option<&Headers> {
        self.properties.amqp.as_ref()?.headers.as_ref()
    }

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
