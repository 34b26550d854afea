//! Hand-checked wire bytes for the protocol header, heartbeats, the connection handshake,
//! channel and queue methods, publish / deliver with content, acks, confirms and field tables.
//! Every decode goes through `common::check_decode` (split at every byte, glued frames, the
//! frame-max at the exact frame size) and every frame is encoded back to the same bytes.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use ferromq_amqp::*;

const CH1: ChannelId = ChannelId(1);
const CH0: ChannelId = ChannelId::CONNECTION;

fn method(channel: ChannelId, m: impl Into<Method>) -> Frame {
    Frame::Method(channel, m.into())
}

#[test]
fn protocol_header() {
    assert_eq!(&PROTOCOL_HEADER, b"AMQP\x00\x00\x09\x01");
    assert_eq!(
        check_protocol_header(&hex("41 4d 51 50 00 00 09 01")),
        ProtocolHeaderCheck::Accepted
    );
    // Followed by the first frame: still accepted, the rest is not looked at.
    let mut more = PROTOCOL_HEADER.to_vec();
    more.extend_from_slice(&HEARTBEAT);
    assert_eq!(check_protocol_header(&more), ProtocolHeaderCheck::Accepted);
    for n in 0..8 {
        assert_eq!(
            check_protocol_header(&PROTOCOL_HEADER[..n]),
            ProtocolHeaderCheck::Incomplete,
            "prefix {n}"
        );
    }
    // AMQP 1.0, 0-9, 0-8, HTTP: rejected, at the first differing byte.
    for wrong in [
        &b"AMQP\x00\x01\x00\x00"[..],
        b"AMQP\x01\x01\x00\x09",
        b"AMQP\x01\x01\x08\x00",
        b"AMQP\x00\x00\x09\x02",
        b"GET / HTTP/1.1\r\n",
        b"G",
        b"AMQP\x03",
    ] {
        assert_eq!(
            check_protocol_header(wrong),
            ProtocolHeaderCheck::Rejected,
            "{wrong:?}"
        );
    }
}

#[test]
fn heartbeat() {
    golden("08 0000 00000000 ce", Frame::heartbeat());
    // A heartbeat on another channel decodes; answering 505 is the broker's call.
    golden("08 0003 00000000 ce", Frame::Heartbeat(ChannelId(3)));
}

#[test]
fn connection_start_with_server_properties() {
    let bytes = [
        "01 0000 00000060",
        "000a 000a 00 09",
        // server-properties: 59 bytes of entries
        "0000003b",
        "07 70726f64756374 53 00000007 666572726f6d71", // product: S "ferromq"
        "0c 6361706162696c6974696573 46 00000015",      // capabilities: F (21 bytes)
        "12 7075626c69736865725f636f6e6669726d73 74 01", // publisher_confirms: t true
        "0000000e 504c41494e20414d51504c41494e",        // mechanisms "PLAIN AMQPLAIN"
        "00000005 656e5f5553",                          // locales "en_US"
        "ce",
    ]
    .join(" ");
    let start = ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: table(vec![
            ("product", FieldValue::LongString(b("ferromq"))),
            (
                "capabilities",
                FieldValue::Table(table(vec![("publisher_confirms", FieldValue::Bool(true))])),
            ),
        ]),
        mechanisms: b("PLAIN AMQPLAIN"),
        locales: b("en_US"),
    };
    golden(&bytes, method(CH0, start));
}

#[test]
fn connection_start_ok_plain() {
    let bytes = [
        "01 0000 00000035",
        "000a 000b",
        "00000011 07 70726f64756374 53 00000004 74657374", // {product: S "test"}
        "05 504c41494e",                                   // PLAIN
        "0000000c 00 6775657374 00 6775657374",            // \0guest\0guest
        "05 656e5f5553",                                   // en_US
        "ce",
    ]
    .join(" ");
    let start_ok = ConnectionStartOk {
        client_properties: table(vec![("product", FieldValue::LongString(b("test")))]),
        mechanism: ss("PLAIN"),
        response: Bytes::from_static(b"\0guest\0guest"),
        locale: ss("en_US"),
    };
    golden(&bytes, method(CH0, start_ok));
}

#[test]
fn connection_secure_and_secure_ok() {
    golden(
        "01 0000 00000009 000a 0014 00000001 78 ce",
        method(CH0, ConnectionSecure { challenge: b("x") }),
    );
    golden(
        "01 0000 00000009 000a 0015 00000001 79 ce",
        method(CH0, ConnectionSecureOk { response: b("y") }),
    );
}

#[test]
fn connection_tune_and_tune_ok() {
    golden(
        "01 0000 0000000c 000a 001e 07ff 00020000 003c ce",
        method(
            CH0,
            ConnectionTune {
                channel_max: 2047,
                frame_max: 131_072,
                heartbeat: 60,
            },
        ),
    );
    golden(
        "01 0000 0000000c 000a 001f 07ff 00020000 003c ce",
        method(
            CH0,
            ConnectionTuneOk {
                channel_max: 2047,
                frame_max: 131_072,
                heartbeat: 60,
            },
        ),
    );
}

#[test]
fn connection_open_and_open_ok() {
    golden(
        "01 0000 00000008 000a 0028 01 2f 00 00 ce",
        method(
            CH0,
            ConnectionOpen {
                virtual_host: ss("/"),
            },
        ),
    );
    // Old clients fill the reserved capabilities and insist fields: read and ignored.
    let f = decode_one(&hex("01 0000 0000000b 000a 0028 01 2f 03 616263 01 ce")).unwrap();
    assert_eq!(
        f,
        method(
            CH0,
            ConnectionOpen {
                virtual_host: ss("/")
            }
        )
    );
    golden(
        "01 0000 00000005 000a 0029 00 ce",
        method(CH0, ConnectionOpenOk),
    );
}

#[test]
fn connection_close_with_reply_code_and_text() {
    // 320 "CONNECTION_FORCED - bye", no failing method.
    golden(
        "01 0000 00000022 000a 0032 0140 17 434f4e4e454354494f4e5f464f52434544202d20627965 \
         0000 0000 ce",
        method(
            CH0,
            ConnectionClose {
                reply_code: 320,
                reply_text: ss("CONNECTION_FORCED - bye"),
                class_id: 0,
                method_id: 0,
            },
        ),
    );
    golden(
        "01 0000 00000004 000a 0033 ce",
        method(CH0, ConnectionCloseOk),
    );
}

#[test]
fn connection_blocked_unblocked_update_secret() {
    golden(
        "01 0000 00000008 000a 003c 03 6d656d ce",
        method(CH0, ConnectionBlocked { reason: ss("mem") }),
    );
    golden(
        "01 0000 00000004 000a 003d ce",
        method(CH0, ConnectionUnblocked),
    );
    golden(
        "01 0000 0000000f 000a 0046 00000003 746f6b 03 6e6577 ce",
        method(
            CH0,
            ConnectionUpdateSecret {
                new_secret: b("tok"),
                reason: ss("new"),
            },
        ),
    );
    golden(
        "01 0000 00000004 000a 0047 ce",
        method(CH0, ConnectionUpdateSecretOk),
    );
}

#[test]
fn channel_open_flow_close() {
    golden("01 0001 00000005 0014 000a 00 ce", method(CH1, ChannelOpen));
    golden(
        "01 0001 00000008 0014 000b 00000000 ce",
        method(CH1, ChannelOpenOk),
    );
    golden(
        "01 0001 00000005 0014 0014 01 ce",
        method(CH1, ChannelFlow { active: true }),
    );
    golden(
        "01 0001 00000005 0014 0015 00 ce",
        method(CH1, ChannelFlowOk { active: false }),
    );
    // 404 "NOT_FOUND" caused by queue.declare (50/10).
    golden(
        "01 0001 00000014 0014 0028 0194 09 4e4f545f464f554e44 0032 000a ce",
        method(
            CH1,
            ChannelClose {
                reply_code: 404,
                reply_text: ss("NOT_FOUND"),
                class_id: 50,
                method_id: 10,
            },
        ),
    );
    golden("01 0001 00000004 0014 0029 ce", method(CH1, ChannelCloseOk));
}

#[test]
fn queue_declare_with_arguments() {
    let bytes = [
        "01 0001 0000003d",
        "0032 000a 0000",
        "06 6f7264657273", // "orders"
        "02",              // durable
        "0000002b",
        "0d 782d6d6573736167652d74746c 49 0000ea60", // x-message-ttl: I 60000
        "0c 782d71756575652d74797065 53 00000006 71756f72756d", // x-queue-type: S "quorum"
        "ce",
    ]
    .join(" ");
    let declare = QueueDeclare {
        queue: ss("orders"),
        durable: true,
        arguments: table(vec![
            ("x-message-ttl", FieldValue::I32(60_000)),
            ("x-queue-type", FieldValue::LongString(b("quorum"))),
        ]),
        ..Default::default()
    };
    golden(&bytes, method(CH1, declare));
    golden(
        "01 0001 00000013 0032 000b 06 6f7264657273 00000005 00000001 ce",
        method(
            CH1,
            QueueDeclareOk {
                queue: ss("orders"),
                message_count: 5,
                consumer_count: 1,
            },
        ),
    );
}

#[test]
fn declare_bits_are_packed_low_bit_first() {
    // passive, durable, exclusive, auto-delete, no-wait = bits 0..4.
    let all = QueueDeclare {
        queue: ss("q"),
        passive: true,
        durable: true,
        exclusive: true,
        auto_delete: true,
        no_wait: true,
        arguments: FieldTable::new(),
    };
    golden(
        "01 0001 0000000d 0032 000a 0000 01 71 1f 00000000 ce",
        method(CH1, all),
    );
    let exchange = ExchangeDeclare {
        exchange: ss("x"),
        kind: ss("topic"),
        auto_delete: true,
        internal: true,
        ..Default::default()
    };
    golden(
        "01 0001 00000013 0028 000a 0000 01 78 05 746f706963 0c 00000000 ce",
        method(CH1, exchange),
    );
}

#[test]
fn exchange_bind_and_unbind_use_rabbitmq_ids() {
    let bind = ExchangeBind {
        destination: ss("d"),
        source: ss("s"),
        routing_key: ss("k"),
        no_wait: false,
        arguments: FieldTable::new(),
    };
    golden(
        "01 0001 00000011 0028 001e 0000 01 64 01 73 01 6b 00 00000000 ce",
        method(CH1, bind),
    );
    golden("01 0001 00000004 0028 001f ce", method(CH1, ExchangeBindOk));
    golden(
        "01 0001 00000004 0028 0033 ce",
        method(CH1, ExchangeUnbindOk),
    );
}

#[test]
fn basic_publish_header_and_body() {
    let publish = "01 0001 00000015 003c 0028 0000 09 616d712e746f706963 03 612e62 01 ce";
    let header = "02 0001 0000001a 003c 0000 0000000000000005 9000 0a 746578742f706c61696e 02 ce";
    let body = "03 0001 00000005 68656c6c6f ce";
    let publish_m = BasicPublish {
        exchange: ss("amq.topic"),
        routing_key: ss("a.b"),
        mandatory: true,
        immediate: false,
    };
    let props = BasicProperties {
        content_type: Some(ss("text/plain")),
        delivery_mode: Some(2),
        ..Default::default()
    };
    golden(publish, method(CH1, publish_m.clone()));
    golden(
        header,
        Frame::Header(CH1, ContentHeader::basic(5, props.clone())),
    );
    golden(body, Frame::Body(CH1, b("hello")));

    // The three frames arriving in one read.
    let all = hex(&format!("{publish} {header} {body}"));
    assert_eq!(decode_all(&all).len(), 3);

    // encode_content writes the same three frames in one go.
    let mut out = BytesMut::new();
    encode_content(
        &mut out,
        CH1,
        ContentMethod::Publish(&publish_m),
        &props,
        b"hello",
        FRAME_MIN_SIZE,
    )
    .unwrap();
    assert_eq!(&out[..], &all[..]);
}

#[test]
fn basic_deliver() {
    let bytes =
        "01 0001 0000001c 003c 003c 06 637461672d31 000000000000002a 01 00 06 6f7264657273 ce";
    let deliver = BasicDeliver {
        consumer_tag: ss("ctag-1"),
        delivery_tag: DeliveryTag(42),
        redelivered: true,
        exchange: ss(""),
        routing_key: ss("orders"),
    };
    golden(bytes, method(CH1, deliver.clone()));

    // With an empty body there are no body frames; the header says size 0.
    let mut out = BytesMut::new();
    encode_deliver(
        &mut out,
        CH1,
        &deliver,
        &BasicProperties::default(),
        b"",
        4096,
    )
    .unwrap();
    let expected = hex(&format!(
        "{bytes} 02 0001 0000000e 003c 0000 0000000000000000 0000 ce"
    ));
    assert_eq!(&out[..], &expected[..]);
}

#[test]
fn deliver_body_is_split_at_frame_max_minus_8() {
    let deliver = BasicDeliver {
        consumer_tag: ss("c"),
        delivery_tag: DeliveryTag(1),
        redelivered: false,
        exchange: ss("e"),
        routing_key: ss("r"),
    };
    let props = BasicProperties::default();
    let body_lens = |frame_max: u32, body: &[u8]| -> Vec<usize> {
        let mut out = BytesMut::new();
        encode_deliver(&mut out, ChannelId(2), &deliver, &props, body, frame_max).unwrap();
        let frames = decode_all(&out);
        assert!(matches!(
            frames[0],
            Frame::Method(ChannelId(2), Method::BasicDeliver(_))
        ));
        let Frame::Header(_, h) = &frames[1] else {
            panic!("no header")
        };
        assert_eq!(h.body_size, body.len() as u64);
        let mut joined = Vec::new();
        let lens = frames[2..]
            .iter()
            .map(|f| match f {
                Frame::Body(ChannelId(2), b) => {
                    assert!(b.len() + 8 <= frame_max as usize || frame_max == 0);
                    joined.extend_from_slice(b);
                    b.len()
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(joined, body);
        lens
    };
    // frame_max 30: body frames carry at most 22 bytes.
    assert_eq!(body_lens(30, &[7; 50]), [22, 22, 6]);
    assert_eq!(body_lens(30, &[7; 44]), [22, 22]);
    assert_eq!(body_lens(30, &[7; 45]), [22, 22, 1]);
    // The method frame is 8 + 4 + 15 = 27 bytes: it fits a frame_max of exactly 27...
    assert_eq!(body_lens(27, b"0123456789ab"), [12]);
    // ...no limit means one body frame.
    assert_eq!(body_lens(0, &[1; 100_000]), [100_000]);
    // ...and 26 is too small for it; nothing is written.
    let mut out = BytesMut::from(&b"kept"[..]);
    assert_eq!(
        encode_deliver(&mut out, ChannelId(2), &deliver, &props, b"x", 26),
        Err(EncodeError::FrameTooLarge {
            what: "method",
            size: 27,
            max: 26
        })
    );
    assert_eq!(&out[..], b"kept");
    assert_eq!(
        encode_deliver(&mut out, ChannelId(2), &deliver, &props, b"x", 8),
        Err(EncodeError::FrameMaxTooSmall(8))
    );
}

#[test]
fn basic_ack_nack_reject() {
    golden(
        "01 0001 0000000d 003c 0050 0000000000000007 01 ce",
        method(
            CH1,
            BasicAck {
                delivery_tag: DeliveryTag(7),
                multiple: true,
            },
        ),
    );
    golden(
        "01 0001 0000000d 003c 0050 0000000000000007 00 ce",
        method(
            CH1,
            BasicAck {
                delivery_tag: DeliveryTag(7),
                multiple: false,
            },
        ),
    );
    for (multiple, requeue, bits) in [(true, false, "01"), (false, true, "02"), (true, true, "03")]
    {
        golden(
            &format!("01 0001 0000000d 003c 0078 0000000000000009 {bits} ce"),
            method(
                CH1,
                BasicNack {
                    delivery_tag: DeliveryTag(9),
                    multiple,
                    requeue,
                },
            ),
        );
    }
    golden(
        "01 0001 0000000d 003c 005a 0000000000000003 01 ce",
        method(
            CH1,
            BasicReject {
                delivery_tag: DeliveryTag(3),
                requeue: true,
            },
        ),
    );
}

#[test]
fn confirm_select() {
    golden(
        "01 0001 00000005 0055 000a 00 ce",
        method(CH1, ConfirmSelect { no_wait: false }),
    );
    golden(
        "01 0001 00000005 0055 000a 01 ce",
        method(CH1, ConfirmSelect { no_wait: true }),
    );
    golden(
        "01 0001 00000004 0055 000b ce",
        method(CH1, ConfirmSelectOk),
    );
}

#[test]
fn tx_methods() {
    for (id, m) in [
        ("000a", Method::from(TxSelect)),
        ("000b", TxSelectOk.into()),
        ("0014", TxCommit.into()),
        ("0015", TxCommitOk.into()),
        ("001e", TxRollback.into()),
        ("001f", TxRollbackOk.into()),
    ] {
        golden(
            &format!("01 0001 00000004 005a {id} ce"),
            Frame::Method(CH1, m),
        );
    }
}

/// Every RabbitMQ field type, one entry each, as the `headers` property.
#[test]
fn field_table_with_every_type() {
    let entries = [
        "01 74 74 01",                               // t: true
        "01 62 62 ff",                               // b: -1
        "01 42 42 ff",                               // B: 255
        "01 73 73 fffe",                             // s: -2 (i16, not a short string)
        "01 75 75 fffe",                             // u: 65534
        "01 49 49 fffffffd",                         // I: -3
        "01 69 69 fffffffd",                         // i: 4294967293
        "01 6c 6c fffffffffffffffc",                 // l: -4
        "01 66 66 3fc00000",                         // f: 1.5
        "01 64 64 4004000000000000",                 // d: 2.5
        "01 44 44 02 00003039",                      // D: 123.45
        "01 53 53 00000002 6869",                    // S: "hi"
        "01 78 78 00000002 00ff",                    // x: 00 ff
        "01 41 41 00000009 74 01 56 53 00000001 61", // A: [true, void, "a"]
        "01 54 54 000000006553f100",                 // T: 1700000000
        "01 46 46 00000003 01 6b 56",                // F: {k: void}
        "01 56 56",                                  // V
    ]
    .join(" ");
    let headers = table(vec![
        ("t", FieldValue::Bool(true)),
        ("b", FieldValue::I8(-1)),
        ("B", FieldValue::U8(255)),
        ("s", FieldValue::I16(-2)),
        ("u", FieldValue::U16(65534)),
        ("I", FieldValue::I32(-3)),
        ("i", FieldValue::U32(4_294_967_293)),
        ("l", FieldValue::I64(-4)),
        ("f", FieldValue::F32(1.5)),
        ("d", FieldValue::F64(2.5)),
        (
            "D",
            FieldValue::Decimal(Decimal {
                scale: 2,
                value: 12345,
            }),
        ),
        ("S", FieldValue::LongString(b("hi"))),
        ("x", FieldValue::ByteArray(Bytes::from_static(&[0, 0xff]))),
        (
            "A",
            FieldValue::Array(vec![
                FieldValue::Bool(true),
                FieldValue::Void,
                FieldValue::LongString(b("a")),
            ]),
        ),
        ("T", FieldValue::Timestamp(1_700_000_000)),
        ("F", FieldValue::Table(table(vec![("k", FieldValue::Void)]))),
        ("V", FieldValue::Void),
    ]);
    assert_eq!(headers.encoded_len(), 4 + 131);
    // 12 fixed bytes + flags (headers only: 0x2000) + the 135-byte table = 149.
    let bytes = format!("02 0001 00000095 003c 0000 0000000000000000 2000 00000083 {entries} ce");
    let props = BasicProperties {
        headers: Some(headers),
        ..Default::default()
    };
    golden(&bytes, Frame::Header(CH1, ContentHeader::basic(0, props)));
}

#[test]
fn upper_case_l_decodes_as_signed_64() {
    // RabbitMQ reads `L` like `l`; we write it back as `l`.
    let f = decode_one(&hex(
        "02 0001 0000001d 003c 0000 0000000000000000 2000 0000000b 01 4c 4c ffffffffffffffff ce",
    ))
    .unwrap();
    let Frame::Header(_, h) = f else { panic!() };
    let headers = h.properties.headers.unwrap();
    assert_eq!(headers.get("L"), Some(&FieldValue::I64(-1)));
}

#[test]
fn content_header_with_all_14_properties() {
    let bytes = [
        "02 0001 00000047 003c 0000 0000000000000003 fffc",
        "03 612f62",                         // content-type
        "04 677a6970",                       // content-encoding
        "00000008 01 6b 53 00000001 76",     // headers {k: "v"}
        "02 05",                             // delivery-mode, priority
        "02 6331 01 72 05 3630303030 01 6d", // correlation-id, reply-to, expiration, message-id
        "000000006553f100",                  // timestamp
        "01 74 05 6775657374 03 617070 00",  // type, user-id, app-id, cluster-id
        "ce",
    ]
    .join(" ");
    let props = BasicProperties {
        content_type: Some(ss("a/b")),
        content_encoding: Some(ss("gzip")),
        headers: Some(table(vec![("k", FieldValue::LongString(b("v")))])),
        delivery_mode: Some(2),
        priority: Some(5),
        correlation_id: Some(ss("c1")),
        reply_to: Some(ss("r")),
        expiration: Some(ss("60000")),
        message_id: Some(ss("m")),
        timestamp: Some(1_700_000_000),
        kind: Some(ss("t")),
        user_id: Some(ss("guest")),
        app_id: Some(ss("app")),
        cluster_id: Some(ss("")),
    };
    assert!(props.is_persistent());
    assert_eq!(props.flags(), 0xfffc);
    golden(&bytes, Frame::Header(CH1, ContentHeader::basic(3, props)));
}

#[test]
fn table_order_and_duplicates_survive() {
    // {z: V, a: V, z: B 1} stays in that order, duplicate included.
    let bytes =
        "01 0001 00000018 0032 0032 0000 01 71 00 00 0000000a 01 7a 56 01 61 56 01 7a 42 01 ce";
    let unbind = QueueUnbind {
        queue: ss("q"),
        exchange: ss(""),
        routing_key: ss(""),
        arguments: table(vec![
            ("z", FieldValue::Void),
            ("a", FieldValue::Void),
            ("z", FieldValue::U8(1)),
        ]),
    };
    golden(bytes, method(CH1, unbind));
}
