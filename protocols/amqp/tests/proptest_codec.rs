//! Property tests: every method, random basic properties and random field tables survive
//! encode -> decode unchanged (also when fed in two pieces and glued to other frames), content
//! written by `encode_content` reassembles to the original body under any frame-max, and no
//! byte sequence makes the decoder panic or return `Ok(None)` while consuming input.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use ferromq_amqp::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn short_string() -> impl Strategy<Value = ShortString> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..12),
        1 => vec(any::<u8>(), 250..=255),
    ]
    .prop_map(|v| ShortString::try_from(v).expect("at most 255 bytes"))
}

fn long_string() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        // NaN != NaN would fail the equality, not the codec.
        any::<f32>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(FieldValue::F32),
        any::<f64>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| FieldValue::Decimal(Decimal { scale, value })),
        long_string().prop_map(FieldValue::LongString),
        long_string().prop_map(FieldValue::ByteArray),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(FieldValue::Array),
            vec((short_string(), inner), 0..5)
                .prop_map(|entries| FieldValue::Table(entries.into())),
        ]
    })
}

fn field_table() -> impl Strategy<Value = FieldTable> {
    vec((short_string(), field_value()), 0..6).prop_map(FieldTable::from)
}

fn properties() -> BoxedStrategy<BasicProperties> {
    let s = || proptest::option::of(short_string());
    (
        (s(), s(), proptest::option::of(field_table())),
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
        ),
        (s(), s(), s(), s()),
        proptest::option::of(any::<u64>()),
        (s(), s(), s(), s()),
    )
        .prop_map(
            |(
                (content_type, content_encoding, headers),
                (delivery_mode, priority),
                (correlation_id, reply_to, expiration, message_id),
                timestamp,
                (kind, user_id, app_id, cluster_id),
            )| BasicProperties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration,
                message_id,
                timestamp,
                kind,
                user_id,
                app_id,
                cluster_id,
            },
        )
        .boxed()
}

fn tag() -> impl Strategy<Value = DeliveryTag> {
    any::<u64>().prop_map(DeliveryTag)
}

fn connection_method() -> BoxedStrategy<Method> {
    let tune = (any::<u16>(), any::<u32>(), any::<u16>());
    prop_oneof![
        (
            any::<u8>(),
            any::<u8>(),
            field_table(),
            long_string(),
            long_string()
        )
            .prop_map(
                |(version_major, version_minor, server_properties, mechanisms, locales)| {
                    ConnectionStart {
                        version_major,
                        version_minor,
                        server_properties,
                        mechanisms,
                        locales,
                    }
                    .into()
                }
            ),
        (field_table(), short_string(), long_string(), short_string()).prop_map(
            |(client_properties, mechanism, response, locale)| ConnectionStartOk {
                client_properties,
                mechanism,
                response,
                locale,
            }
            .into()
        ),
        long_string().prop_map(|challenge| ConnectionSecure { challenge }.into()),
        long_string().prop_map(|response| ConnectionSecureOk { response }.into()),
        tune.prop_map(|(channel_max, frame_max, heartbeat)| ConnectionTune {
            channel_max,
            frame_max,
            heartbeat
        }
        .into()),
        tune.prop_map(|(channel_max, frame_max, heartbeat)| ConnectionTuneOk {
            channel_max,
            frame_max,
            heartbeat
        }
        .into()),
        short_string().prop_map(|virtual_host| ConnectionOpen { virtual_host }.into()),
        Just(ConnectionOpenOk.into()),
        (any::<u16>(), short_string(), any::<u16>(), any::<u16>()).prop_map(
            |(reply_code, reply_text, class_id, method_id)| ConnectionClose {
                reply_code,
                reply_text,
                class_id,
                method_id,
            }
            .into()
        ),
        Just(ConnectionCloseOk.into()),
        short_string().prop_map(|reason| ConnectionBlocked { reason }.into()),
        Just(ConnectionUnblocked.into()),
        (long_string(), short_string()).prop_map(|(new_secret, reason)| {
            ConnectionUpdateSecret { new_secret, reason }.into()
        }),
        Just(ConnectionUpdateSecretOk.into()),
    ]
    .boxed()
}

fn channel_access_method() -> BoxedStrategy<Method> {
    prop_oneof![
        Just(ChannelOpen.into()),
        Just(ChannelOpenOk.into()),
        any::<bool>().prop_map(|active| ChannelFlow { active }.into()),
        any::<bool>().prop_map(|active| ChannelFlowOk { active }.into()),
        (any::<u16>(), short_string(), any::<u16>(), any::<u16>()).prop_map(
            |(reply_code, reply_text, class_id, method_id)| ChannelClose {
                reply_code,
                reply_text,
                class_id,
                method_id,
            }
            .into()
        ),
        Just(ChannelCloseOk.into()),
        (short_string(), any::<[bool; 5]>()).prop_map(|(realm, b)| AccessRequest {
            realm,
            exclusive: b[0],
            passive: b[1],
            active: b[2],
            write: b[3],
            read: b[4],
        }
        .into()),
        any::<u16>().prop_map(|ticket| AccessRequestOk { ticket }.into()),
    ]
    .boxed()
}

fn exchange_method() -> BoxedStrategy<Method> {
    let binding = || {
        (
            short_string(),
            short_string(),
            short_string(),
            any::<bool>(),
            field_table(),
        )
    };
    prop_oneof![
        (
            short_string(),
            short_string(),
            any::<[bool; 5]>(),
            field_table()
        )
            .prop_map(|(exchange, kind, b, arguments)| ExchangeDeclare {
                exchange,
                kind,
                passive: b[0],
                durable: b[1],
                auto_delete: b[2],
                internal: b[3],
                no_wait: b[4],
                arguments,
            }
            .into()),
        Just(ExchangeDeclareOk.into()),
        (short_string(), any::<bool>(), any::<bool>()).prop_map(
            |(exchange, if_unused, no_wait)| ExchangeDelete {
                exchange,
                if_unused,
                no_wait
            }
            .into()
        ),
        Just(ExchangeDeleteOk.into()),
        binding().prop_map(
            |(destination, source, routing_key, no_wait, arguments)| ExchangeBind {
                destination,
                source,
                routing_key,
                no_wait,
                arguments,
            }
            .into()
        ),
        Just(ExchangeBindOk.into()),
        binding().prop_map(|(destination, source, routing_key, no_wait, arguments)| {
            ExchangeUnbind {
                destination,
                source,
                routing_key,
                no_wait,
                arguments,
            }
            .into()
        }),
        Just(ExchangeUnbindOk.into()),
    ]
    .boxed()
}

fn queue_method() -> BoxedStrategy<Method> {
    prop_oneof![
        (short_string(), any::<[bool; 5]>(), field_table()).prop_map(|(queue, b, arguments)| {
            QueueDeclare {
                queue,
                passive: b[0],
                durable: b[1],
                exclusive: b[2],
                auto_delete: b[3],
                no_wait: b[4],
                arguments,
            }
            .into()
        }),
        (short_string(), any::<u32>(), any::<u32>()).prop_map(
            |(queue, message_count, consumer_count)| QueueDeclareOk {
                queue,
                message_count,
                consumer_count
            }
            .into()
        ),
        (
            short_string(),
            short_string(),
            short_string(),
            any::<bool>(),
            field_table()
        )
            .prop_map(
                |(queue, exchange, routing_key, no_wait, arguments)| QueueBind {
                    queue,
                    exchange,
                    routing_key,
                    no_wait,
                    arguments,
                }
                .into()
            ),
        Just(QueueBindOk.into()),
        (short_string(), any::<bool>())
            .prop_map(|(queue, no_wait)| QueuePurge { queue, no_wait }.into()),
        any::<u32>().prop_map(|message_count| QueuePurgeOk { message_count }.into()),
        (short_string(), any::<[bool; 3]>()).prop_map(|(queue, b)| QueueDelete {
            queue,
            if_unused: b[0],
            if_empty: b[1],
            no_wait: b[2],
        }
        .into()),
        any::<u32>().prop_map(|message_count| QueueDeleteOk { message_count }.into()),
        (
            short_string(),
            short_string(),
            short_string(),
            field_table()
        )
            .prop_map(|(queue, exchange, routing_key, arguments)| QueueUnbind {
                queue,
                exchange,
                routing_key,
                arguments,
            }
            .into()),
        Just(QueueUnbindOk.into()),
    ]
    .boxed()
}

fn basic_method() -> BoxedStrategy<Method> {
    prop_oneof![
        (any::<u32>(), any::<u16>(), any::<bool>()).prop_map(
            |(prefetch_size, prefetch_count, global)| BasicQos {
                prefetch_size,
                prefetch_count,
                global
            }
            .into()
        ),
        Just(BasicQosOk.into()),
        (
            short_string(),
            short_string(),
            any::<[bool; 4]>(),
            field_table()
        )
            .prop_map(|(queue, consumer_tag, b, arguments)| BasicConsume {
                queue,
                consumer_tag,
                no_local: b[0],
                no_ack: b[1],
                exclusive: b[2],
                no_wait: b[3],
                arguments,
            }
            .into()),
        short_string().prop_map(|consumer_tag| BasicConsumeOk { consumer_tag }.into()),
        (short_string(), any::<bool>()).prop_map(|(consumer_tag, no_wait)| BasicCancel {
            consumer_tag,
            no_wait
        }
        .into()),
        short_string().prop_map(|consumer_tag| BasicCancelOk { consumer_tag }.into()),
        (short_string(), short_string(), any::<bool>(), any::<bool>()).prop_map(
            |(exchange, routing_key, mandatory, immediate)| BasicPublish {
                exchange,
                routing_key,
                mandatory,
                immediate,
            }
            .into()
        ),
        (any::<u16>(), short_string(), short_string(), short_string()).prop_map(
            |(reply_code, reply_text, exchange, routing_key)| BasicReturn {
                reply_code,
                reply_text,
                exchange,
                routing_key,
            }
            .into()
        ),
        (
            short_string(),
            tag(),
            any::<bool>(),
            short_string(),
            short_string()
        )
            .prop_map(
                |(consumer_tag, delivery_tag, redelivered, exchange, routing_key)| BasicDeliver {
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    exchange,
                    routing_key,
                }
                .into()
            ),
        (short_string(), any::<bool>())
            .prop_map(|(queue, no_ack)| BasicGet { queue, no_ack }.into()),
        (
            tag(),
            any::<bool>(),
            short_string(),
            short_string(),
            any::<u32>()
        )
            .prop_map(
                |(delivery_tag, redelivered, exchange, routing_key, message_count)| BasicGetOk {
                    delivery_tag,
                    redelivered,
                    exchange,
                    routing_key,
                    message_count,
                }
                .into()
            ),
        Just(BasicGetEmpty.into()),
        (tag(), any::<bool>()).prop_map(|(delivery_tag, multiple)| BasicAck {
            delivery_tag,
            multiple
        }
        .into()),
        (tag(), any::<bool>()).prop_map(|(delivery_tag, requeue)| BasicReject {
            delivery_tag,
            requeue
        }
        .into()),
        any::<bool>().prop_map(|requeue| BasicRecoverAsync { requeue }.into()),
        any::<bool>().prop_map(|requeue| BasicRecover { requeue }.into()),
        Just(BasicRecoverOk.into()),
        (tag(), any::<bool>(), any::<bool>()).prop_map(|(delivery_tag, multiple, requeue)| {
            BasicNack {
                delivery_tag,
                multiple,
                requeue,
            }
            .into()
        }),
    ]
    .boxed()
}

fn confirm_tx_method() -> BoxedStrategy<Method> {
    prop_oneof![
        any::<bool>().prop_map(|no_wait| ConfirmSelect { no_wait }.into()),
        Just(ConfirmSelectOk.into()),
        Just(TxSelect.into()),
        Just(TxSelectOk.into()),
        Just(TxCommit.into()),
        Just(TxCommitOk.into()),
        Just(TxRollback.into()),
        Just(TxRollbackOk.into()),
    ]
    .boxed()
}

fn any_method() -> BoxedStrategy<Method> {
    prop_oneof![
        2 => connection_method(),
        1 => channel_access_method(),
        1 => exchange_method(),
        2 => queue_method(),
        3 => basic_method(),
        1 => confirm_tx_method(),
    ]
    .boxed()
}

fn channel() -> impl Strategy<Value = ChannelId> {
    any::<u16>().prop_map(ChannelId)
}

fn any_frame() -> BoxedStrategy<Frame> {
    prop_oneof![
        4 => (channel(), any_method())
            .prop_map(|(c, m)| Frame::Method(c, m))
            .boxed(),
        2 => (channel(), any::<u64>(), properties())
            .prop_map(|(c, size, p)| Frame::Header(c, ContentHeader::basic(size, p)))
            .boxed(),
        1 => (channel(), any::<u16>(), any::<u64>()).prop_map(|(c, class_id, body_size)| {
            Frame::Header(
                c,
                ContentHeader {
                    class_id,
                    body_size,
                    properties: BasicProperties::default(),
                },
            )
        })
        .boxed(),
        1 => (channel(), vec(any::<u8>(), 0..100))
            .prop_map(|(c, b)| Frame::Body(c, Bytes::from(b)))
            .boxed(),
        1 => channel().prop_map(Frame::Heartbeat).boxed(),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frame_round_trip(frame in any_frame(), split in any::<prop::sample::Index>()) {
        let bytes = encode(&frame);
        prop_assert_eq!(decode_one(&bytes), Ok(frame.clone()));

        // In two pieces: the first never yields a frame or an error and is left untouched.
        let at = split.index(bytes.len());
        let mut buf = BytesMut::from(&bytes[..at]);
        prop_assert_eq!(decode_frame(&mut buf, MAX), Ok(None));
        prop_assert_eq!(&buf[..], &bytes[..at]);
        buf.extend_from_slice(&bytes[at..]);
        prop_assert_eq!(decode_frame(&mut buf, MAX), Ok(Some(frame.clone())));
        prop_assert!(buf.is_empty());

        // Glued after a heartbeat and before a copy of itself.
        let mut glued = BytesMut::from(&HEARTBEAT[..]);
        glued.extend_from_slice(&bytes);
        glued.extend_from_slice(&bytes);
        prop_assert_eq!(decode_frame(&mut glued, MAX), Ok(Some(Frame::heartbeat())));
        prop_assert_eq!(decode_frame(&mut glued, MAX), Ok(Some(frame.clone())));
        prop_assert_eq!(decode_frame(&mut glued, MAX), Ok(Some(frame)));
        prop_assert!(glued.is_empty());
    }

    #[test]
    fn table_encoded_len_is_exact(t in field_table()) {
        let frame = Frame::Method(
            ChannelId(1),
            QueueBind { arguments: t.clone(), ..Default::default() }.into(),
        );
        // 7 header + 4 ids + 2 ticket + 3 empty short strings + 1 bits + table + 1 end.
        prop_assert_eq!(encode(&frame).len(), 18 + t.encoded_len());
    }

    #[test]
    fn content_reassembles_under_any_frame_max(
        deliver in (short_string(), tag(), any::<bool>(), short_string(), short_string()),
        props in properties(),
        body in vec(any::<u8>(), 0..3000),
        frame_max in prop_oneof![Just(0u32), 600u32..5000],
    ) {
        let deliver = BasicDeliver {
            consumer_tag: deliver.0,
            delivery_tag: deliver.1,
            redelivered: deliver.2,
            exchange: deliver.3,
            routing_key: deliver.4,
        };
        let mut out = BytesMut::new();
        match encode_deliver(&mut out, ChannelId(9), &deliver, &props, &body, frame_max) {
            // A big random headers table may not fit a small frame_max: that is the contract.
            Err(EncodeError::FrameTooLarge { .. }) => prop_assert!(out.is_empty()),
            Err(e) => prop_assert!(false, "unexpected {e}"),
            Ok(()) => {
                let mut frames = Vec::new();
                while let Some(f) = decode_frame(&mut out, frame_max).expect("decodes") {
                    frames.push(f);
                }
                prop_assert!(out.is_empty());
                prop_assert_eq!(&frames[0], &Frame::Method(ChannelId(9), deliver.into()));
                prop_assert_eq!(
                    &frames[1],
                    &Frame::Header(ChannelId(9), ContentHeader::basic(body.len() as u64, props))
                );
                let mut joined = Vec::new();
                for f in &frames[2..] {
                    let Frame::Body(ChannelId(9), b) = f else {
                        return Err(TestCaseError::fail(format!("not a body frame: {f:?}")));
                    };
                    prop_assert!(!b.is_empty());
                    joined.extend_from_slice(b);
                }
                prop_assert_eq!(joined, body);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300), frame_max in any::<u32>()) {
        check_no_panic(&bytes, frame_max)?;
    }

    /// Random bytes rarely get past the frame type; these start as valid frames and then have
    /// bytes flipped, cut or appended, so the payload parsers see hostile input.
    #[test]
    fn mutated_frames_never_panic(
        frame in any_frame(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&frame);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        check_no_panic(&bytes, MAX)?;
        let n = cut.index(bytes.len());
        check_no_panic(&bytes[..n], MAX)?;
    }
}

/// Decodes until the input runs out or fails: no panic, and `Ok(None)` never consumes bytes.
fn check_no_panic(bytes: &[u8], frame_max: u32) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.clone();
        match decode_frame(&mut buf, frame_max) {
            Ok(Some(frame)) => {
                // Whatever decodes re-encodes (it may not be byte-identical: reserved fields,
                // `L`, extra bits and non-canonical booleans are normalised).
                let again = encode(&frame);
                prop_assert_eq!(decode_one(&again), Ok(frame));
            }
            Ok(None) => {
                prop_assert_eq!(buf, before);
                return Ok(());
            }
            Err(e) => {
                prop_assert!(matches!(e.reply_code(), 501..=503));
                prop_assert!(e.reply_text().len() <= 255);
                return Ok(());
            }
        }
    }
}
