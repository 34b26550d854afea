//! AMQP content <-> core `Message`: basic properties and field tables map onto the core's
//! protocol-neutral mirror, the routing key onto levels (`routing_key`), once per publish and
//! once per delivery. Bodies are never copied.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferromq_amqp::{BasicProperties, Decimal, FieldTable, FieldValue, ShortString};

use crate::broker::message::{AmqpProperties, HeaderValue, Headers, Message, Origin, Properties};
use crate::broker::routing_key;

/// A published message as a core message.
pub fn to_message(
    exchange: &str,
    routing_key: &[u8],
    properties: BasicProperties,
    body: Bytes,
    now: Instant,
) -> Message {
    // Valid UTF-8 (the usual case) is borrowed after one check, not decoded chunk by chunk.
    let key = match std::str::from_utf8(routing_key) {
        Ok(k) => std::borrow::Cow::Borrowed(k),
        Err(_) => String::from_utf8_lossy(routing_key),
    };
    let topic = routing_key::amqp_key_to_mqtt_topic(&key).into_owned();
    let persistent = properties.delivery_mode == Some(2);
    // RabbitMQ: per-message TTL in milliseconds as a decimal string.
    let expires_at = properties
        .expiration
        .as_ref()
        .and_then(|e| e.to_str().ok()?.parse::<u64>().ok())
        .map(|ms| now + Duration::from_millis(ms));
    let content_type = properties
        .content_type
        .as_ref()
        .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned());
    let amqp = AmqpProperties {
        content_encoding: properties.content_encoding.map(Bytes::from),
        headers: properties.headers.map(headers_from_table),
        delivery_mode: properties.delivery_mode,
        priority: properties.priority,
        correlation_id: properties.correlation_id.map(Bytes::from),
        reply_to: properties.reply_to.map(Bytes::from),
        expiration: properties.expiration.map(Bytes::from),
        message_id: properties.message_id.map(Bytes::from),
        timestamp: properties.timestamp,
        kind: properties.kind.map(Bytes::from),
        user_id: properties.user_id.map(Bytes::from),
        app_id: properties.app_id.map(Bytes::from),
        cluster_id: properties.cluster_id.map(Bytes::from),
    };
    Message {
        topic,
        exchange: exchange.into(),
        body,
        qos: u8::from(persistent),
        retain: false,
        expires_at,
        properties: Properties {
            content_type,
            amqp: Some(Box::new(amqp)),
            ..Properties::default()
        },
        origin: Origin::default(),
    }
}

/// True when the AMQP headers carry `x-mqtt-retain: true`.
pub fn wants_retain(message: &Message) -> bool {
    message
        .amqp_headers()
        .and_then(|h| h.get("x-mqtt-retain"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// The routing key an AMQP consumer sees for a core message.
pub fn routing_key_of(message: &Message) -> ShortString {
    let key = routing_key::mqtt_topic_to_amqp_key(&message.topic);
    ShortString::truncating(&key)
}

/// The basic properties an AMQP consumer sees for a core message.
pub fn to_properties(message: &Message) -> BasicProperties {
    let p = &message.properties;
    let short = |b: &Option<Bytes>| b.clone().and_then(|b| ShortString::try_from(b).ok());
    let mut out = BasicProperties {
        content_type: p.content_type.as_deref().map(ShortString::truncating),
        ..BasicProperties::default()
    };
    match p.amqp.as_deref() {
        Some(a) => {
            out.content_encoding = short(&a.content_encoding);
            out.headers = a.headers.as_ref().map(table_from_headers);
            out.delivery_mode = a.delivery_mode;
            out.priority = a.priority;
            out.correlation_id = short(&a.correlation_id);
            out.reply_to = short(&a.reply_to);
            out.expiration = short(&a.expiration);
            out.message_id = short(&a.message_id);
            out.timestamp = a.timestamp;
            out.kind = short(&a.kind);
            out.user_id = short(&a.user_id);
            out.app_id = short(&a.app_id);
            out.cluster_id = short(&a.cluster_id);
        }
        None => from_mqtt(message, &mut out),
    }
    out
}

/// Properties of a message published by MQTT, as an AMQP consumer sees them (README, "MQTT and
/// AMQP on one core"): QoS >= 1 is persistent; User Properties become headers in order, plus
/// RabbitMQ's `x-mqtt-publish-qos`; Correlation Data becomes `correlation_id` and the Response
/// Topic `reply_to` (in AMQP spelling); the remaining Message Expiry Interval becomes
/// `expiration`. What a short string cannot hold (over 255 bytes) travels in a header instead
/// (`x-mqtt-correlation-data`, `x-mqtt-response-topic`, and `x-mqtt-topic` beside a routing key
/// cut to 255 bytes), so nothing is dropped.
fn from_mqtt(message: &Message, out: &mut BasicProperties) {
    let p = &message.properties;
    out.delivery_mode = Some(if message.qos > 0 { 2 } else { 1 });
    let mut headers = FieldTable::default();
    for (k, v) in &p.user_properties {
        let value = FieldValue::LongString(Bytes::copy_from_slice(v.as_bytes()));
        headers.push(ShortString::truncating(k), value);
    }
    headers.push(
        ShortString::from_static("x-mqtt-publish-qos"),
        FieldValue::I8(message.qos as i8),
    );
    if let Some(data) = &p.correlation_data {
        match ShortString::try_from(data.clone()) {
            Ok(id) => out.correlation_id = Some(id),
            Err(_) => headers.push(
                ShortString::from_static("x-mqtt-correlation-data"),
                FieldValue::ByteArray(data.clone()),
            ),
        }
    }
    if let Some(topic) = &p.response_topic {
        let key = routing_key::mqtt_topic_to_amqp_key(topic);
        match ShortString::try_from(key.as_ref()) {
            Ok(reply_to) => out.reply_to = Some(reply_to),
            Err(_) => headers.push(
                ShortString::from_static("x-mqtt-response-topic"),
                FieldValue::LongString(Bytes::copy_from_slice(key.as_bytes())),
            ),
        }
    }
    if let Some(at) = message.expires_at {
        let ms = at.saturating_duration_since(Instant::now()).as_millis();
        out.expiration = ShortString::try_from(ms.to_string()).ok();
    }
    if message.topic.len() > usize::from(u8::MAX) {
        // The routing key is a short string, cut to its first 255 bytes (`routing_key_of`);
        // the whole topic goes along (the mapping keeps the length, byte for byte).
        headers.push(
            ShortString::from_static("x-mqtt-topic"),
            FieldValue::LongString(Bytes::copy_from_slice(message.topic.as_bytes())),
        );
    }
    out.headers = Some(headers);
}

/// A field table as core headers.
pub fn headers_from_table(table: FieldTable) -> Headers {
    Headers(
        table
            .into_vec()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k.as_bytes()).into_owned(),
                    header_from_field(v),
                )
            })
            .collect(),
    )
}

fn header_from_field(v: FieldValue) -> HeaderValue {
    match v {
        FieldValue::Bool(b) => HeaderValue::Bool(b),
        FieldValue::I8(v) => HeaderValue::I8(v),
        FieldValue::U8(v) => HeaderValue::U8(v),
        FieldValue::I16(v) => HeaderValue::I16(v),
        FieldValue::U16(v) => HeaderValue::U16(v),
        FieldValue::I32(v) => HeaderValue::I32(v),
        FieldValue::U32(v) => HeaderValue::U32(v),
        FieldValue::I64(v) => HeaderValue::I64(v),
        FieldValue::F32(v) => HeaderValue::F32(v),
        FieldValue::F64(v) => HeaderValue::F64(v),
        FieldValue::Decimal(d) => HeaderValue::Decimal {
            scale: d.scale,
            value: d.value,
        },
        FieldValue::LongString(b) => HeaderValue::LongString(b),
        FieldValue::ByteArray(b) => HeaderValue::ByteArray(b),
        FieldValue::Array(a) => HeaderValue::Array(a.into_iter().map(header_from_field).collect()),
        FieldValue::Timestamp(t) => HeaderValue::Timestamp(t),
        FieldValue::Table(t) => HeaderValue::Table(headers_from_table(t)),
        FieldValue::Void => HeaderValue::Void,
    }
}

/// Core headers as a field table (names over 255 bytes are cut; they cannot come from AMQP).
pub fn table_from_headers(headers: &Headers) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in &headers.0 {
        t.push(ShortString::truncating(k), field_from_header(v));
    }
    t
}

fn field_from_header(v: &HeaderValue) -> FieldValue {
    match v {
        HeaderValue::Bool(b) => FieldValue::Bool(*b),
        HeaderValue::I8(v) => FieldValue::I8(*v),
        HeaderValue::U8(v) => FieldValue::U8(*v),
        HeaderValue::I16(v) => FieldValue::I16(*v),
        HeaderValue::U16(v) => FieldValue::U16(*v),
        HeaderValue::I32(v) => FieldValue::I32(*v),
        HeaderValue::U32(v) => FieldValue::U32(*v),
        HeaderValue::I64(v) => FieldValue::I64(*v),
        HeaderValue::F32(v) => FieldValue::F32(*v),
        HeaderValue::F64(v) => FieldValue::F64(*v),
        HeaderValue::Decimal { scale, value } => FieldValue::Decimal(Decimal {
            scale: *scale,
            value: *value,
        }),
        HeaderValue::LongString(b) => FieldValue::LongString(b.clone()),
        HeaderValue::ByteArray(b) => FieldValue::ByteArray(b.clone()),
        HeaderValue::Array(a) => FieldValue::Array(a.iter().map(field_from_header).collect()),
        HeaderValue::Timestamp(t) => FieldValue::Timestamp(*t),
        HeaderValue::Table(t) => FieldValue::Table(table_from_headers(t)),
        HeaderValue::Void => FieldValue::Void,
    }
}
