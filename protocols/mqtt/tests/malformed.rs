//! Every spec MUST the decoder enforces, one negative test each, asserting the exact error
//! variant (and the reason code it maps to); plus the encoder's refusals.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use ferromq_mqtt::*;

use DecodeError::*;
use ProtocolVersion::{V31, V311, V5};

const ALL: [ProtocolVersion; 3] = [V31, V311, V5];

fn err(hex_bytes: &str, version: ProtocolVersion) -> DecodeError {
    decode_err(&hex(hex_bytes), version)
}

fn ok(hex_bytes: &str, version: ProtocolVersion) -> Packet {
    decode_all(&hex(hex_bytes), version).expect("valid packet")
}

fn is_malformed(e: DecodeError) -> bool {
    matches!(e, Malformed(_))
}

fn is_protocol_error(e: DecodeError) -> bool {
    matches!(e, ProtocolError(_))
}

// ---- Fixed header ----

#[test]
fn reserved_fixed_header_flags() {
    // [MQTT-2.1.3-1]: flags must be exactly as the table says.
    for v in ALL {
        for first in [
            "11", "21", "42", "51", "64", "60", "71", "80", "83", "91", "a0", "b8", "c1", "d2",
            "e4",
        ] {
            assert!(
                is_malformed(err(&format!("{first} 02 00 01"), v)),
                "{first} {v:?}"
            );
        }
    }
    // A DUP bit on PUBREL / SUBSCRIBE / UNSUBSCRIBE is only tolerated for MQTT 3.1.
    assert!(is_malformed(err("6a 02 00 01", V311)));
    assert!(is_malformed(err("6a 02 00 01", V5)));
    assert!(matches!(ok("6a 02 00 01", V31), Packet::PubRel(_)));
}

#[test]
fn bad_first_byte_is_rejected_before_the_rest_arrives() {
    let mut buf = BytesMut::from(&[0x41u8][..]);
    assert!(matches!(decode(&mut buf, V311, MAX), Err(Malformed(_))));
}

#[test]
fn reserved_packet_types() {
    for v in ALL {
        assert!(is_malformed(err("00 00", v)));
    }
    // AUTH does not exist before 5.0.
    assert!(is_malformed(err("f0 00", V311)));
    assert!(is_malformed(err("f0 00", V31)));
}

#[test]
fn remaining_length_of_five_bytes() {
    for v in ALL {
        assert!(is_malformed(err("30 ff ff ff ff 01", v)));
        assert!(is_malformed(err("30 80 80 80 80", v)));
    }
    // Four continuation-free bytes are fine; the limit is then what rejects it.
    let mut buf = BytesMut::from(&hex("30 ff ff ff 7f")[..]);
    assert_eq!(
        decode(&mut buf, V311, MAX),
        Err(PacketTooLarge {
            size: 268_435_460,
            max: MAX
        })
    );
}

#[test]
fn non_minimal_remaining_length_in_v5() {
    // [MQTT-1.5.5-1] is a 5.0 rule; 3.1.1 has no such requirement.
    assert!(is_malformed(err("c0 80 00", V5)));
    assert_eq!(ok("c0 80 00", V311), Packet::PingReq);
    // CONNECT carries its own version: non-minimal 13 (8d 00) is malformed for a v5 CONNECT
    // whatever the connection's version, and accepted for a 3.1.1 CONNECT.
    let v5_connect = "10 8d 00 00 04 4d 51 54 54 05 02 00 3c 00 00 00";
    assert!(is_malformed(err(v5_connect, V311)));
    let v311_connect = "10 8c 00 00 04 4d 51 54 54 04 02 00 3c 00 00";
    assert!(matches!(ok(v311_connect, V5), Packet::Connect(c) if c.protocol == V311));
}

#[test]
fn packet_too_large_is_reported_from_the_fixed_header() {
    // Only the fixed header has arrived; the 1000-byte body is never waited for.
    let mut buf = BytesMut::from(&hex("30 e8 07")[..]);
    assert_eq!(
        decode(&mut buf, V311, 100),
        Err(PacketTooLarge {
            size: 1003,
            max: 100
        })
    );
    assert_eq!(
        PacketTooLarge { size: 1, max: 0 }.reason_code(),
        ReasonCode::PACKET_TOO_LARGE
    );
    // Incomplete fixed headers are just incomplete.
    let mut buf = BytesMut::from(&hex("30 e8")[..]);
    assert_eq!(decode(&mut buf, V311, 100), Ok(None));
}

// ---- PUBLISH ----

#[test]
fn publish_qos_3() {
    // [MQTT-3.3.1-4]
    for v in ALL {
        assert!(is_malformed(err("36 07 00 03 61 2f 62 00 01", v)));
    }
}

#[test]
fn publish_dup_on_qos_0() {
    // [MQTT-3.3.1-2] (3.1.1 and 5.0; 3.1 had no such rule).
    assert!(is_malformed(err("38 05 00 03 61 2f 62", V311)));
    assert!(is_malformed(err("38 06 00 03 61 2f 62 00", V5)));
    assert!(matches!(ok("38 05 00 03 61 2f 62", V31), Packet::Publish(p) if p.dup));
}

#[test]
fn packet_identifier_zero() {
    // [MQTT-2.3.1-1]
    for v in ALL {
        assert!(is_protocol_error(err("32 07 00 03 61 2f 62 00 00", v)));
        assert!(is_protocol_error(err("40 02 00 00", v)));
        assert!(is_protocol_error(err("62 02 00 00", v)));
        assert!(is_protocol_error(err("90 03 00 00 00", v)));
    }
    assert!(is_protocol_error(err("82 06 00 00 00 01 61 00", V311)));
    assert!(is_protocol_error(err("a2 05 00 00 00 01 61", V311)));
}

#[test]
fn publish_topic_with_wildcards() {
    // [MQTT-3.3.2-2]
    for (v, props) in [(V31, ""), (V311, ""), (V5, "00")] {
        let e = err(&with_len("30", &format!("00 03 61 2f 2b {props}")), v);
        assert_eq!(e, TopicNameInvalid("wildcard in topic name"));
        assert_eq!(e.reason_code(), ReasonCode::TOPIC_NAME_INVALID);
        let e = err(&with_len("30", &format!("00 01 23 {props}")), v);
        assert!(matches!(e, TopicNameInvalid(_)));
        let e = err(&with_len("32", &format!("00 02 61 23 00 01 {props}")), v);
        assert!(matches!(e, TopicNameInvalid(_)));
    }
}

#[test]
fn empty_topic_name() {
    // [MQTT-4.7.3-1]; 5.0 allows it only together with a Topic Alias.
    assert!(matches!(err("30 02 00 00", V311), TopicNameInvalid(_)));
    assert!(matches!(err("30 02 00 00", V31), TopicNameInvalid(_)));
    assert!(is_protocol_error(err("30 03 00 00 00", V5)));
    assert!(matches!(ok("30 06 00 00 03 23 00 01", V5), Packet::Publish(p) if p.topic.is_empty()));
    // With an alias the topic name must still be valid when present.
    assert!(matches!(
        err("30 07 00 01 2b 03 23 00 01", V5),
        TopicNameInvalid(_)
    ));
}

#[test]
fn strings_must_be_well_formed_utf8_without_nul() {
    // [MQTT-1.5.4-1] [MQTT-1.5.4-2]
    for v in ALL {
        assert!(is_malformed(err("30 04 00 02 61 ff", v)));
        assert!(is_malformed(err("30 04 00 02 61 00", v)));
        // Surrogate half U+D800 encoded in UTF-8.
        assert!(is_malformed(err("30 05 00 03 ed a0 80", v)));
    }
    // U+0000 in a client identifier.
    assert!(is_malformed(err(
        "10 0f 00 04 4d 51 54 54 04 02 00 3c 00 03 61 00 63",
        V311
    )));
}

#[test]
fn field_running_past_the_end() {
    for v in ALL {
        assert!(is_malformed(err("30 03 00 05 61", v)));
        assert!(is_malformed(err("32 04 00 01 61 00", v)));
        assert!(is_malformed(err("40 01 00", v)));
    }
}

// ---- SUBSCRIBE / UNSUBSCRIBE ----

#[test]
fn topic_filter_wildcard_placement() {
    // [MQTT-4.7.1-2] [MQTT-4.7.1-3]
    for v in ALL {
        let opts = if v == V5 { "00" } else { "" };
        for f in ["a/#/b", "a#", "#/", "a+", "+a/b", "a/b+", "##"] {
            let body = format!("00 01 {opts} {:04x} {} 00", f.len(), hexs(f));
            let e = err(&with_len("82", &body), v);
            assert!(matches!(e, TopicFilterInvalid(_)), "{f} {v:?}: {e:?}");
            assert_eq!(e.reason_code(), ReasonCode::TOPIC_FILTER_INVALID);
            let body = format!("00 01 {opts} {:04x} {}", f.len(), hexs(f));
            assert!(matches!(
                err(&with_len("a2", &body), v),
                TopicFilterInvalid(_)
            ));
        }
    }
}

#[test]
fn empty_topic_filter() {
    assert!(matches!(
        err("82 05 00 01 00 00 00", V311),
        TopicFilterInvalid(_)
    ));
    assert!(matches!(
        err("a2 04 00 01 00 00", V311),
        TopicFilterInvalid(_)
    ));
    assert!(matches!(
        err("a2 05 00 01 00 00 00", V5),
        TopicFilterInvalid(_)
    ));
}

#[test]
fn shared_subscription_shape() {
    // [MQTT-4.8.2-1] [MQTT-4.8.2-2]
    for f in [
        "$share/",
        "$share//t",
        "$share/g",
        "$share/g/",
        "$share/g+/t",
        "$share/#/t",
        "$share/g/a#",
    ] {
        for v in ALL {
            let opts = if v == V5 { "00" } else { "" };
            let body = format!("00 01 {opts} {:04x} {} 01", f.len(), hexs(f));
            assert!(
                matches!(err(&with_len("82", &body), v), TopicFilterInvalid(_)),
                "{f}"
            );
        }
    }
    // [MQTT-3.8.3-4] (5.0): No Local on a shared subscription.
    let f = "$share/g/t";
    let body = format!("00 01 00 {:04x} {} 04", f.len(), hexs(f));
    assert!(is_protocol_error(err(&with_len("82", &body), V5)));
}

#[test]
fn subscribe_and_unsubscribe_without_filters() {
    // [MQTT-3.8.3-3] [MQTT-3.10.3-2]
    assert!(is_protocol_error(err("82 02 00 01", V311)));
    assert!(is_protocol_error(err("82 02 00 01", V31)));
    assert!(is_protocol_error(err("82 03 00 01 00", V5)));
    assert!(is_protocol_error(err("a2 02 00 01", V311)));
    assert!(is_protocol_error(err("a2 03 00 01 00", V5)));
}

#[test]
fn subscription_option_bits() {
    // 3.1.1 [MQTT-3.8.3-4]: upper six bits reserved; QoS 3 malformed.
    assert!(is_malformed(err("82 06 00 01 00 01 61 04", V311)));
    assert!(is_malformed(err("82 06 00 01 00 01 61 03", V311)));
    // 5.0 [MQTT-3.8.3-5]: bits 6-7 reserved; QoS 3 malformed; retain handling 3 a protocol error.
    assert!(is_malformed(err("82 07 00 01 00 00 01 61 40", V5)));
    assert!(is_malformed(err("82 07 00 01 00 00 01 61 80", V5)));
    assert!(is_malformed(err("82 07 00 01 00 00 01 61 03", V5)));
    assert!(is_protocol_error(err("82 07 00 01 00 00 01 61 30", V5)));
    // Missing options byte.
    assert!(is_malformed(err("82 05 00 01 00 01 61", V311)));
}

#[test]
fn suback_return_codes_and_empty_acks() {
    // [MQTT-3.9.3-2] 3.1.1: only 0, 1, 2, 0x80.
    assert!(is_malformed(err("90 03 00 01 03", V311)));
    assert!(is_malformed(err("90 03 00 01 81", V311)));
    assert!(is_protocol_error(err("90 02 00 01", V311)));
    assert!(is_protocol_error(err("90 03 00 01 00", V5)));
    assert!(is_protocol_error(err("b0 03 00 01 00", V5)));
    // v3 UNSUBACK has nothing after the packet identifier.
    assert!(is_malformed(err("b0 03 00 01 00", V311)));
}

// ---- CONNECT ----

/// A 3.1.1 / 5.0 CONNECT with client id "a" and the given flags, plus `tail` after the id.
fn connect_hex(level: u8, flags: u8, tail: &str) -> String {
    let props = if level == 5 { "00" } else { "" };
    let body = format!("00 04 4d 51 54 54 {level:02x} {flags:02x} 00 3c {props} 00 01 61 {tail}");
    with_len("10", &body)
}

#[test]
fn connect_reserved_flag() {
    // [MQTT-3.1.2-3]
    assert!(is_malformed(err(&connect_hex(4, 0x03, ""), V311)));
    assert!(is_malformed(err(&connect_hex(5, 0x03, ""), V5)));
    // MQTT 3.1 did not define the bit.
    let v31 = with_len("10", "00 06 4d 51 49 73 64 70 03 03 00 3c 00 01 61");
    assert!(matches!(ok(&v31, V31), Packet::Connect(c) if c.protocol == V31));
}

#[test]
fn connect_will_flags() {
    // [MQTT-3.1.2-11] will QoS without will, [MQTT-3.1.2-15] will retain without will.
    assert!(is_malformed(err(&connect_hex(4, 0x0A, ""), V311)));
    assert!(is_malformed(err(&connect_hex(4, 0x22, ""), V311)));
    assert!(is_malformed(err(&connect_hex(5, 0x12, ""), V5)));
    // [MQTT-3.1.2-14] will QoS 3.
    assert!(is_malformed(err(
        &connect_hex(4, 0x1E, "00 01 74 00 00"),
        V311
    )));
    // Will topic must be a valid topic name.
    assert!(matches!(
        err(&connect_hex(4, 0x06, "00 01 23 00 00"), V311),
        TopicNameInvalid(_)
    ));
    assert!(matches!(
        err(&connect_hex(4, 0x06, "00 00 00 00"), V311),
        TopicNameInvalid(_)
    ));
}

#[test]
fn connect_password_without_user_name() {
    // [MQTT-3.1.2-22] 3.1.1 (and 3.1); 5.0 allows it.
    assert!(is_malformed(err(&connect_hex(4, 0x42, "00 01 70"), V311)));
    let v31 = with_len(
        "10",
        "00 06 4d 51 49 73 64 70 03 42 00 3c 00 01 61 00 01 70",
    );
    assert!(is_malformed(err(&v31, V31)));
    assert!(
        matches!(ok(&connect_hex(5, 0x42, "00 01 70"), V5), Packet::Connect(c) if c.password.is_some())
    );
}

#[test]
fn connect_protocol_name_and_level() {
    // [MQTT-3.1.2-1] [MQTT-3.1.2-2]
    let e = err(&connect_hex(3, 0x02, ""), V311);
    assert_eq!(e, UnsupportedProtocolVersion(3));
    assert_eq!(e.reason_code(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(e.reason_code().to_v3_connack(), 1);
    assert_eq!(
        err(&connect_hex(6, 0x02, ""), V311),
        UnsupportedProtocolVersion(6)
    );
    let mqisdp_4 = with_len("10", "00 06 4d 51 49 73 64 70 04 02 00 3c 00 01 61");
    assert_eq!(err(&mqisdp_4, V311), UnsupportedProtocolVersion(4));
    let bad_name = with_len("10", "00 04 4d 51 54 58 04 02 00 3c 00 01 61");
    assert_eq!(err(&bad_name, V311), InvalidProtocolName);
    assert_eq!(
        InvalidProtocolName.reason_code(),
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
    );
    // The peek agrees, without consuming.
    assert_eq!(
        decode_connect_version(&hex(&bad_name)),
        Err(InvalidProtocolName)
    );
    assert_eq!(
        decode_connect_version(&hex(&mqisdp_4)),
        Err(UnsupportedProtocolVersion(4))
    );
    assert!(is_protocol_error(
        decode_connect_version(&hex("c0 00")).unwrap_err()
    ));
    assert_eq!(decode_connect_version(&hex("10")), Ok(None));
    assert_eq!(
        decode_connect_version(&hex("10 0f 00 04 4d 51 54")),
        Ok(None)
    );
}

#[test]
fn connect_trailing_bytes() {
    assert!(is_malformed(err(&connect_hex(4, 0x02, "00"), V311)));
    assert!(is_malformed(err(&connect_hex(5, 0x02, "00"), V5)));
}

// ---- CONNACK ----

#[test]
fn connack_rules() {
    // [MQTT-3.2.2-1] reserved acknowledge flags.
    assert!(is_malformed(err("20 02 02 00", V311)));
    assert!(is_malformed(err("20 03 02 00 00", V5)));
    // Return codes above 5 are reserved in 3.1.1.
    assert!(is_malformed(err("20 02 00 06", V311)));
    // [MQTT-3.2.2-4] / [MQTT-3.2.2-6]: no Session Present with a refusal.
    assert!(is_protocol_error(err("20 02 01 05", V311)));
    assert!(is_protocol_error(err("20 03 01 87 00", V5)));
    // 5.0 CONNACK always has a Property Length.
    assert!(is_malformed(err("20 02 00 00", V5)));
}

// ---- v5 properties ----

fn publish_with_props(props: &str) -> String {
    let n = hex(props).len();
    with_len("30", &format!("00 01 74 {n:02x} {props}"))
}

#[test]
fn duplicate_properties() {
    // [MQTT-2.2.2-2]-style: single-valued properties at most once.
    assert!(is_protocol_error(err(
        &publish_with_props("01 00 01 01"),
        V5
    )));
    assert!(is_protocol_error(err(
        &publish_with_props("23 00 01 23 00 02"),
        V5
    )));
    let connect = connect_props("21 00 01 21 00 02");
    assert!(is_protocol_error(err(&connect, V5)));
    // User properties and (in PUBLISH) subscription identifiers may repeat.
    assert!(matches!(
        ok(&publish_with_props("26 00 00 00 00 26 00 00 00 00"), V5),
        Packet::Publish(_)
    ));
    assert!(matches!(
        ok(&publish_with_props("0b 01 0b 02"), V5),
        Packet::Publish(_)
    ));
    // Not in SUBSCRIBE.
    assert!(is_protocol_error(err(
        "82 0a 00 01 04 0b 01 0b 02 00 01 61 00",
        V5
    )));
}

fn connect_props(props: &str) -> String {
    let n = hex(props).len();
    with_len(
        "10",
        &format!("00 04 4d 51 54 54 05 02 00 3c {n:02x} {props} 00 01 61"),
    )
}

#[test]
fn properties_not_valid_for_the_packet() {
    // Section 2.2.2.2: such a packet is malformed.
    assert!(is_malformed(err(&connect_props("23 00 01"), V5))); // topic alias in CONNECT
    assert!(is_malformed(err(&publish_with_props("11 00 00 00 01"), V5))); // session expiry
    assert!(is_malformed(err("40 06 00 01 00 02 24 01", V5))); // maximum QoS in PUBACK
    assert!(is_malformed(err("e0 03 00 01 ff", V5))); // unknown identifier... (bad length)
    assert!(is_malformed(err("e0 04 00 02 7f 00", V5))); // unknown identifier
    assert!(is_malformed(err("f0 04 00 02 26 00", V5))); // user property cut short
}

#[test]
fn property_values_out_of_range() {
    assert!(is_protocol_error(err(&connect_props("21 00 00"), V5))); // receive maximum 0
    assert!(is_protocol_error(err(&connect_props("27 00 00 00 00"), V5))); // max packet size 0
    assert!(is_protocol_error(err(&connect_props("17 02"), V5))); // request problem info 2
    assert!(is_protocol_error(err(&connect_props("19 02"), V5))); // request response info 2
    assert!(is_protocol_error(err(&publish_with_props("01 02"), V5))); // payload format 2
    assert!(is_protocol_error(err(&publish_with_props("0b 00"), V5))); // subscription id 0
    let alias_zero = err(&publish_with_props("23 00 00"), V5);
    assert_eq!(alias_zero, TopicAliasInvalid);
    assert_eq!(alias_zero.reason_code(), ReasonCode::TOPIC_ALIAS_INVALID);
    assert!(is_protocol_error(err("20 05 00 00 02 24 02", V5))); // maximum QoS 2
    assert!(is_protocol_error(err("20 05 00 00 02 25 07", V5))); // retain available 7
                                                                 // Authentication data without a method.
    assert!(is_protocol_error(err(&connect_props("16 00 01 78"), V5)));
    // Response topic is a topic name: no wildcards.
    assert!(is_protocol_error(err(
        &publish_with_props("08 00 01 23"),
        V5
    )));
    // Non-minimal variable byte integer in a subscription identifier.
    assert!(is_malformed(err(&publish_with_props("0b 81 00"), V5)));
}

#[test]
fn property_length_exceeding_the_packet() {
    assert!(is_malformed(err("30 05 00 01 74 09 01", V5)));
    assert!(is_malformed(err("e0 03 00 05 11", V5)));
    assert!(is_malformed(err(&connect_props("11 00 00"), V5)));
}

// ---- Trailing bytes and short forms ----

#[test]
fn trailing_bytes() {
    for v in ALL {
        assert!(is_malformed(err("c0 01 00", v)));
        assert!(is_malformed(err("d0 01 00", v)));
    }
    assert!(is_malformed(err("40 03 00 01 00", V311)));
    assert!(is_malformed(err("e0 01 00", V311)));
    assert!(is_malformed(err("20 03 00 00 00", V311)));
    assert!(is_malformed(err("40 05 00 01 00 00 00", V5)));
    assert!(is_malformed(err("e0 03 00 00 00", V5)));
    // AUTH has no reason-code-only form (3.15.2.1).
    assert!(is_malformed(err("f0 01 00", V5)));
    assert!(is_malformed(err("f0 03 00 00 00", V5)));
}

#[test]
fn reason_codes_of_each_error() {
    assert_eq!(Malformed("x").reason_code(), ReasonCode::MALFORMED_PACKET);
    assert_eq!(ProtocolError("x").reason_code(), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(
        UnsupportedProtocolVersion(9).reason_code(),
        ReasonCode(0x84)
    );
    assert_eq!(TopicNameInvalid("x").reason_code(), ReasonCode(0x90));
    assert_eq!(TopicFilterInvalid("x").reason_code(), ReasonCode(0x8F));
}

// ---- Encoder refusals ----

fn publish(topic: String, qos: QoS, packet_id: Option<PacketId>, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id,
        properties: Properties::default(),
        payload,
    })
}

#[test]
fn encode_refuses_and_leaves_the_buffer_alone() {
    let refuse = |p: &Packet, v, want: EncodeError| {
        let mut out = BytesMut::from(&b"keep"[..]);
        assert_eq!(encode(p, v, &mut out), Err(want.clone()));
        assert_eq!(&out[..], b"keep");
        assert_eq!(encoded_len(p, v), Err(want));
    };
    let long = "a".repeat(65_536);
    refuse(
        &publish(long.clone(), QoS::AtMostOnce, None, Bytes::new()),
        V311,
        EncodeError::StringTooLong {
            field: "topic name",
            len: 65_536,
        },
    );
    // The longest legal string is fine.
    let max = publish("a".repeat(65_535), QoS::AtMostOnce, None, Bytes::new());
    assert_eq!(encoded_len(&max, V311), Ok(1 + 3 + 2 + 65_535));
    refuse(
        &publish("t".into(), QoS::AtLeastOnce, None, Bytes::new()),
        V5,
        EncodeError::MissingPacketId,
    );
    refuse(
        &publish("t".into(), QoS::AtMostOnce, Some(pid(1)), Bytes::new()),
        V5,
        EncodeError::UnexpectedPacketId,
    );
    // 268,435,456 zeroed bytes: never touched, the size check comes first.
    let huge = Bytes::from(vec![0u8; 268_435_456]);
    let p = publish("t".into(), QoS::AtMostOnce, None, huge);
    refuse(&p, V311, EncodeError::PacketTooLarge { size: 268_435_459 });

    let auth = Packet::Auth(Auth {
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    });
    refuse(&auth, V311, EncodeError::UnsupportedInVersion("AUTH"));
    refuse(&auth, V31, EncodeError::UnsupportedInVersion("AUTH"));

    let props = Properties {
        user_properties: vec![("k".into(), long.clone())],
        ..Properties::default()
    };
    let ack = Packet::PubAck(PubResponse {
        packet_id: pid(1),
        reason: ReasonCode::SUCCESS,
        properties: props,
    });
    refuse(
        &ack,
        V5,
        EncodeError::StringTooLong {
            field: "user property value",
            len: 65_536,
        },
    );
    let props = Properties {
        subscription_identifiers: vec![268_435_456],
        ..Properties::default()
    };
    let sub = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![filter("a", QoS::AtMostOnce)],
        properties: props,
    });
    assert!(matches!(
        encoded_len(&sub, V5),
        Err(EncodeError::InvalidValue(_))
    ));

    let connect = |protocol| {
        Packet::Connect(Box::new(Connect {
            protocol,
            clean_start: true,
            keep_alive: 0,
            client_id: "c".into(),
            will: None,
            username: None,
            password: Some(Bytes::from(vec![0; 65_536])),
            properties: Properties::default(),
        }))
    };
    assert!(matches!(
        encoded_len(&connect(V311), V311),
        Err(EncodeError::UnsupportedInVersion(_))
    ));
    refuse(
        &connect(V5),
        V5,
        EncodeError::StringTooLong {
            field: "password",
            len: 65_536,
        },
    );
}

// ---- helpers ----

fn hexs(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x} ")).collect()
}

/// `first` + a one-byte remaining length + `body`.
fn with_len(first: &str, body: &str) -> String {
    let n = hex(body).len();
    assert!(n < 128);
    format!("{first} {n:02x} {body}")
}
