//! Differential tests against amq-protocol 8 (the codec lapin uses): frames it writes decode
//! with ours to the same content, and frames we write parse with it to the same content. Only
//! inputs it handles correctly are compared: UTF-8 short strings (it stores them as `String`),
//! tables with distinct names in sorted order (it keeps them in a `BTreeMap`), shallow nesting.

mod common;

use std::collections::BTreeMap;

use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, WriteContext};
use amq_protocol::protocol::{basic, confirm, connection, exchange, queue, AMQPClass};
use amq_protocol::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable as AmqTable, LongString,
    ShortString as AmqShort,
};
use bytes::Bytes;
use common::*;
use ferromq_amqp::*;
use proptest::collection::vec;
use proptest::prelude::*;

// ---- conversions between the two models -------------------------------------------------

fn amq_short(s: &ShortString) -> AmqShort {
    s.to_str().expect("UTF-8 in differential tests").into()
}

fn our_short(s: &AmqShort) -> ShortString {
    ShortString::try_from(s.as_str()).expect("short")
}

fn amq_value(v: &FieldValue) -> AMQPValue {
    match v {
        FieldValue::Bool(b) => AMQPValue::Boolean(*b),
        FieldValue::I8(x) => AMQPValue::ShortShortInt(*x),
        FieldValue::U8(x) => AMQPValue::ShortShortUInt(*x),
        FieldValue::I16(x) => AMQPValue::ShortInt(*x),
        FieldValue::U16(x) => AMQPValue::ShortUInt(*x),
        FieldValue::I32(x) => AMQPValue::LongInt(*x),
        FieldValue::U32(x) => AMQPValue::LongUInt(*x),
        FieldValue::I64(x) => AMQPValue::LongLongInt(*x),
        FieldValue::F32(x) => AMQPValue::Float(*x),
        FieldValue::F64(x) => AMQPValue::Double(*x),
        FieldValue::Decimal(d) => AMQPValue::DecimalValue(DecimalValue {
            scale: d.scale,
            value: d.value,
        }),
        FieldValue::LongString(b) => AMQPValue::LongString(LongString::from(b.to_vec())),
        FieldValue::ByteArray(b) => AMQPValue::ByteArray(ByteArray::from(b.to_vec())),
        FieldValue::Array(a) => AMQPValue::FieldArray(FieldArray::from(
            a.iter().map(amq_value).collect::<Vec<_>>(),
        )),
        FieldValue::Timestamp(t) => AMQPValue::Timestamp(*t),
        FieldValue::Table(t) => AMQPValue::FieldTable(amq_table(t)),
        FieldValue::Void => AMQPValue::Void,
    }
}

fn our_value(v: &AMQPValue) -> FieldValue {
    match v {
        AMQPValue::Boolean(b) => FieldValue::Bool(*b),
        AMQPValue::ShortShortInt(x) => FieldValue::I8(*x),
        AMQPValue::ShortShortUInt(x) => FieldValue::U8(*x),
        AMQPValue::ShortInt(x) => FieldValue::I16(*x),
        AMQPValue::ShortUInt(x) => FieldValue::U16(*x),
        AMQPValue::LongInt(x) => FieldValue::I32(*x),
        AMQPValue::LongUInt(x) => FieldValue::U32(*x),
        AMQPValue::LongLongInt(x) => FieldValue::I64(*x),
        AMQPValue::Float(x) => FieldValue::F32(*x),
        AMQPValue::Double(x) => FieldValue::F64(*x),
        AMQPValue::DecimalValue(d) => FieldValue::Decimal(Decimal {
            scale: d.scale,
            value: d.value,
        }),
        AMQPValue::LongString(s) => FieldValue::LongString(Bytes::copy_from_slice(s.as_bytes())),
        AMQPValue::ByteArray(b) => FieldValue::ByteArray(Bytes::copy_from_slice(b.as_slice())),
        AMQPValue::FieldArray(a) => FieldValue::Array(a.as_slice().iter().map(our_value).collect()),
        AMQPValue::Timestamp(t) => FieldValue::Timestamp(*t),
        AMQPValue::FieldTable(t) => FieldValue::Table(our_table(t)),
        AMQPValue::Void => FieldValue::Void,
        AMQPValue::ShortString(_) => panic!("amq-protocol never decodes a short string value"),
    }
}

fn amq_table(t: &FieldTable) -> AmqTable {
    let mut out = AmqTable::default();
    for (k, v) in t {
        out.insert(amq_short(k), amq_value(v));
    }
    out
}

/// amq-protocol iterates its BTreeMap in key order; so do the tables these tests generate.
fn our_table(t: &AmqTable) -> FieldTable {
    t.into_iter()
        .map(|(k, v)| (our_short(k), our_value(v)))
        .collect()
}

fn amq_props(p: &BasicProperties) -> basic::AMQPProperties {
    let mut a = basic::AMQPProperties::default();
    let s = |v: &Option<ShortString>| v.as_ref().map(amq_short);
    if let Some(v) = s(&p.content_type) {
        a = a.with_content_type(v);
    }
    if let Some(v) = s(&p.content_encoding) {
        a = a.with_content_encoding(v);
    }
    if let Some(h) = &p.headers {
        a = a.with_headers(amq_table(h));
    }
    if let Some(v) = p.delivery_mode {
        a = a.with_delivery_mode(v);
    }
    if let Some(v) = p.priority {
        a = a.with_priority(v);
    }
    if let Some(v) = s(&p.correlation_id) {
        a = a.with_correlation_id(v);
    }
    if let Some(v) = s(&p.reply_to) {
        a = a.with_reply_to(v);
    }
    if let Some(v) = s(&p.expiration) {
        a = a.with_expiration(v);
    }
    if let Some(v) = s(&p.message_id) {
        a = a.with_message_id(v);
    }
    if let Some(v) = p.timestamp {
        a = a.with_timestamp(v);
    }
    if let Some(v) = s(&p.kind) {
        a = a.with_type(v);
    }
    if let Some(v) = s(&p.user_id) {
        a = a.with_user_id(v);
    }
    if let Some(v) = s(&p.app_id) {
        a = a.with_app_id(v);
    }
    if let Some(v) = s(&p.cluster_id) {
        a = a.with_cluster_id(v);
    }
    a
}

fn our_props(a: &basic::AMQPProperties) -> BasicProperties {
    let s = |v: &Option<AmqShort>| v.as_ref().map(our_short);
    BasicProperties {
        content_type: s(a.content_type()),
        content_encoding: s(a.content_encoding()),
        headers: a.headers().as_ref().map(our_table),
        delivery_mode: *a.delivery_mode(),
        priority: *a.priority(),
        correlation_id: s(a.correlation_id()),
        reply_to: s(a.reply_to()),
        expiration: s(a.expiration()),
        message_id: s(a.message_id()),
        timestamp: *a.timestamp(),
        kind: s(a.kind()),
        user_id: s(a.user_id()),
        app_id: s(a.app_id()),
        cluster_id: s(a.cluster_id()),
    }
}

// ---- the two codecs ----------------------------------------------------------------------

fn amq_write(frame: &AMQPFrame) -> Vec<u8> {
    let ctx = gen_frame(frame)(WriteContext::from(Vec::new())).expect("amq-protocol writes");
    ctx.write
}

fn amq_read(bytes: &[u8]) -> AMQPFrame {
    let (rest, frame) = parse_frame(bytes).expect("amq-protocol parses");
    assert!(rest.is_empty(), "amq-protocol left {} bytes", rest.len());
    frame
}

/// Both directions for a method: theirs -> bytes -> ours == `ours`, and ours -> bytes -> theirs
/// == `theirs`. Where both write the same bytes, that is asserted too.
fn check_method(channel: u16, ours: Method, theirs: AMQPClass) {
    let amq_frame = AMQPFrame::Method(channel, theirs);
    let their_bytes = amq_write(&amq_frame);
    assert_eq!(
        decode_one(&their_bytes),
        Ok(Frame::Method(ChannelId(channel), ours.clone())),
        "our decode of amq-protocol's {:02x?}",
        their_bytes
    );
    let our_bytes = encode(&Frame::Method(ChannelId(channel), ours));
    assert_eq!(
        amq_read(&our_bytes),
        amq_frame,
        "amq-protocol's decode of ours"
    );
    assert_eq!(our_bytes, their_bytes, "same bytes");
}

fn check_header(channel: u16, body_size: u64, props: BasicProperties) {
    let amq_frame = AMQPFrame::Header(
        channel,
        60,
        Box::new(AMQPContentHeader {
            class_id: 60,
            body_size,
            properties: amq_props(&props),
        }),
    );
    let their_bytes = amq_write(&amq_frame);
    let ours = Frame::Header(ChannelId(channel), ContentHeader::basic(body_size, props));
    assert_eq!(decode_one(&their_bytes), Ok(ours.clone()));
    let our_bytes = encode(&ours);
    let AMQPFrame::Header(c, class, h) = amq_read(&our_bytes) else {
        panic!("amq-protocol did not read a header");
    };
    assert_eq!((c, class), (channel, 60));
    let ours_back = Frame::Header(
        ChannelId(c),
        ContentHeader::basic(h.body_size, our_props(&h.properties)),
    );
    assert_eq!(ours_back, ours);
    assert_eq!(our_bytes, their_bytes);
}

// ---- fixed cases -------------------------------------------------------------------------

fn arguments() -> FieldTable {
    // Sorted, distinct names; a spread of types including RabbitMQ's `s`, `u`, `x`, `A`.
    table(vec![
        ("x-bytes", FieldValue::ByteArray(b("\0\x01"))),
        ("x-dead-letter-exchange", FieldValue::LongString(b("dlx"))),
        ("x-expires", FieldValue::U32(1_800_000)),
        (
            "x-flags",
            FieldValue::Array(vec![FieldValue::Bool(true), FieldValue::I16(-7)]),
        ),
        ("x-max-priority", FieldValue::U8(10)),
        ("x-message-ttl", FieldValue::I32(60_000)),
        (
            "x-nested",
            FieldValue::Table(table(vec![("k", FieldValue::U16(9))])),
        ),
        ("x-queue-type", FieldValue::LongString(b("quorum"))),
        ("x-ratio", FieldValue::F64(0.25)),
        ("x-void", FieldValue::Void),
    ])
}

#[test]
fn basic_publish() {
    check_method(
        1,
        BasicPublish {
            exchange: ss("amq.topic"),
            routing_key: ss("sensors.temp"),
            mandatory: true,
            immediate: false,
        }
        .into(),
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "amq.topic".into(),
            routing_key: "sensors.temp".into(),
            mandatory: true,
            immediate: false,
        })),
    );
}

#[test]
fn basic_deliver_ack_nack() {
    check_method(
        7,
        BasicDeliver {
            consumer_tag: ss("amq.ctag-1"),
            delivery_tag: DeliveryTag(1 << 40),
            redelivered: true,
            exchange: ss(""),
            routing_key: ss("q"),
        }
        .into(),
        AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: "amq.ctag-1".into(),
            delivery_tag: 1 << 40,
            redelivered: true,
            exchange: "".into(),
            routing_key: "q".into(),
        })),
    );
    check_method(
        7,
        BasicAck {
            delivery_tag: DeliveryTag(5),
            multiple: true,
        }
        .into(),
        AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: 5,
            multiple: true,
        })),
    );
    check_method(
        7,
        BasicNack {
            delivery_tag: DeliveryTag(6),
            multiple: false,
            requeue: true,
        }
        .into(),
        AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
            delivery_tag: 6,
            multiple: false,
            requeue: true,
        })),
    );
}

#[test]
fn queue_declare_with_arguments() {
    check_method(
        1,
        QueueDeclare {
            queue: ss("orders"),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: true,
            no_wait: false,
            arguments: arguments(),
        }
        .into(),
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: "orders".into(),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: true,
            nowait: false,
            arguments: amq_table(&arguments()),
        })),
    );
}

#[test]
fn exchange_bind_and_confirm_select() {
    check_method(
        2,
        ExchangeBind {
            destination: ss("d"),
            source: ss("s"),
            routing_key: ss("#"),
            no_wait: true,
            arguments: table(vec![("x-match", FieldValue::LongString(b("all")))]),
        }
        .into(),
        AMQPClass::Exchange(exchange::AMQPMethod::Bind(exchange::Bind {
            destination: "d".into(),
            source: "s".into(),
            routing_key: "#".into(),
            nowait: true,
            arguments: amq_table(&table(vec![("x-match", FieldValue::LongString(b("all")))])),
        })),
    );
    check_method(
        2,
        ConfirmSelect { no_wait: false }.into(),
        AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
            nowait: false,
        })),
    );
}

#[test]
fn connection_handshake() {
    let server_properties = table(vec![
        (
            "capabilities",
            FieldValue::Table(table(vec![
                ("basic.nack", FieldValue::Bool(true)),
                ("publisher_confirms", FieldValue::Bool(true)),
            ])),
        ),
        ("product", FieldValue::LongString(b("ferromq"))),
    ]);
    check_method(
        0,
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties.clone(),
            mechanisms: b("PLAIN AMQPLAIN"),
            locales: b("en_US"),
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: amq_table(&server_properties),
            mechanisms: "PLAIN AMQPLAIN".into(),
            locales: "en_US".into(),
        })),
    );
    check_method(
        0,
        ConnectionStartOk {
            client_properties: table(vec![("product", FieldValue::LongString(b("lapin")))]),
            mechanism: ss("PLAIN"),
            response: b("\0guest\0guest"),
            locale: ss("en_US"),
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: amq_table(&table(vec![(
                "product",
                FieldValue::LongString(b("lapin")),
            )])),
            mechanism: "PLAIN".into(),
            response: "\0guest\0guest".into(),
            locale: "en_US".into(),
        })),
    );
    check_method(
        0,
        ConnectionTune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        })),
    );
    check_method(
        0,
        ConnectionTuneOk {
            channel_max: 0,
            frame_max: 4096,
            heartbeat: 0,
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 0,
            frame_max: 4096,
            heartbeat: 0,
        })),
    );
    check_method(
        0,
        ConnectionClose {
            reply_code: 320,
            reply_text: ss("CONNECTION_FORCED - bye"),
            class_id: 0,
            method_id: 0,
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 320,
            reply_text: "CONNECTION_FORCED - bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    );
}

#[test]
fn content_header_with_properties() {
    check_header(
        1,
        1234,
        BasicProperties {
            content_type: Some(ss("application/json")),
            headers: Some(arguments()),
            delivery_mode: Some(2),
            priority: Some(3),
            correlation_id: Some(ss("c-1")),
            reply_to: Some(ss("amq.rabbitmq.reply-to")),
            expiration: Some(ss("60000")),
            message_id: Some(ss("m-1")),
            timestamp: Some(1_700_000_000),
            kind: Some(ss("t")),
            user_id: Some(ss("guest")),
            app_id: Some(ss("bench")),
            ..Default::default()
        },
    );
    check_header(1, 0, BasicProperties::default());
}

#[test]
fn body_and_heartbeat() {
    let their = amq_write(&AMQPFrame::Body(3, b"payload".to_vec()));
    assert_eq!(
        decode_one(&their),
        Ok(Frame::Body(ChannelId(3), b("payload")))
    );
    assert_eq!(encode(&Frame::Body(ChannelId(3), b("payload"))), their);
    let their = amq_write(&AMQPFrame::Heartbeat(0));
    assert_eq!(their, HEARTBEAT);
}

// ---- random cases ------------------------------------------------------------------------

fn utf8_short() -> impl Strategy<Value = ShortString> {
    "[a-z.#*-]{0,20}".prop_map(|s| ShortString::try_from(s).expect("short"))
}

/// Values both codecs model identically (everything but NaN, which breaks equality).
fn common_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<f64>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| FieldValue::Decimal(Decimal { scale, value })),
        vec(any::<u8>(), 0..16).prop_map(|v| FieldValue::LongString(Bytes::from(v))),
        vec(any::<u8>(), 0..16).prop_map(|v| FieldValue::ByteArray(Bytes::from(v))),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(FieldValue::Array),
            sorted_table(inner).prop_map(FieldValue::Table),
        ]
    })
}

/// Distinct names in sorted order, so amq-protocol's BTreeMap keeps the wire order.
fn sorted_table(value: impl Strategy<Value = FieldValue>) -> impl Strategy<Value = FieldTable> {
    proptest::collection::btree_map("[a-z-]{1,10}", value, 0..5).prop_map(
        |m: BTreeMap<String, FieldValue>| {
            m.into_iter()
                .map(|(k, v)| (ShortString::try_from(k).expect("short"), v))
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_publish(exchange in utf8_short(), routing_key in utf8_short(), m: bool, i: bool) {
        check_method(
            1,
            BasicPublish {
                exchange: exchange.clone(),
                routing_key: routing_key.clone(),
                mandatory: m,
                immediate: i,
            }
            .into(),
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: amq_short(&exchange),
                routing_key: amq_short(&routing_key),
                mandatory: m,
                immediate: i,
            })),
        );
    }

    #[test]
    fn random_queue_bind(
        queue in utf8_short(),
        exchange in utf8_short(),
        key in utf8_short(),
        arguments in sorted_table(common_value()),
    ) {
        check_method(
            4,
            QueueBind {
                queue: queue.clone(),
                exchange: exchange.clone(),
                routing_key: key.clone(),
                no_wait: false,
                arguments: arguments.clone(),
            }
            .into(),
            AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                queue: amq_short(&queue),
                exchange: amq_short(&exchange),
                routing_key: amq_short(&key),
                nowait: false,
                arguments: amq_table(&arguments),
            })),
        );
    }

    #[test]
    fn random_properties(
        content_type in proptest::option::of(utf8_short()),
        headers in proptest::option::of(sorted_table(common_value())),
        delivery_mode in proptest::option::of(1u8..=2),
        priority in proptest::option::of(any::<u8>()),
        correlation_id in proptest::option::of(utf8_short()),
        timestamp in proptest::option::of(any::<u64>()),
        app_id in proptest::option::of(utf8_short()),
        body_size: u64,
    ) {
        check_header(
            9,
            body_size,
            BasicProperties {
                content_type,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                timestamp,
                app_id,
                ..Default::default()
            },
        );
    }
}
