//! Hand-checked wire bytes for every MQTT 3.1 and 3.1.1 packet type, decoded (with the split /
//! glued / size-limit checks of `common::check_decode`) and encoded.

mod common;

use common::*;
use ferromq_mqtt::*;

use ProtocolVersion::{V31, V311, V5};

fn connect(protocol: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_owned(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn ack(id: u16) -> PubResponse {
    PubResponse {
        packet_id: pid(id),
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    }
}

fn disconnect() -> Disconnect {
    Disconnect {
        reason: ReasonCode::NORMAL_DISCONNECTION,
        properties: Properties::default(),
    }
}

#[test]
fn connect_v311_minimal() {
    // "MQTT", level 4, clean session, keep alive 60, client id "abc".
    let bytes = "10 0f 00 04 4d 51 54 54 04 02 00 3c 00 03 61 62 63";
    golden(bytes, V311, Packet::Connect(Box::new(connect(V311, "abc"))));
    // CONNECT ignores the version it is decoded with.
    let b = hex(bytes);
    assert_eq!(decode_all(&b, V5), decode_all(&b, V311));
    assert_eq!(decode_connect_version(&b), Ok(Some(V311)));
}

#[test]
fn connect_v31_mqisdp() {
    // "MQIsdp", level 3.
    let bytes = "10 11 00 06 4d 51 49 73 64 70 03 02 00 3c 00 03 61 62 63";
    golden(bytes, V311, Packet::Connect(Box::new(connect(V31, "abc"))));
    assert_eq!(decode_connect_version(&hex(bytes)), Ok(Some(V31)));
    // The codec does not enforce 3.1's 23-byte client id limit (broker policy).
    let long = "x".repeat(40);
    let p = Packet::Connect(Box::new(connect(V31, &long)));
    let mut out = bytes::BytesMut::new();
    encode(&p, V31, &mut out).unwrap();
    assert_eq!(decode_all(&out, V31), Ok(p));
}

#[test]
fn connect_v311_will_and_credentials() {
    // Flags 0xEE: user name, password, will retain, will QoS 1, will, clean session.
    let bytes = "10 1d 00 04 4d 51 54 54 04 ee 00 0a 00 03 61 62 63
                 00 01 77 00 03 62 79 65 00 01 75 00 01 70";
    let mut c = connect(V311, "abc");
    c.keep_alive = 10;
    c.will = Some(Will {
        topic: "w".into(),
        payload: b("bye"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    });
    c.username = Some("u".into());
    c.password = Some(b("p"));
    golden(bytes, V311, Packet::Connect(Box::new(c)));
}

#[test]
fn connect_v31_with_user_name_only() {
    let bytes = "10 16 00 06 4d 51 49 73 64 70 03 80 00 3c 00 03 61 62 63 00 03 62 6f 62";
    let mut c = connect(V31, "abc");
    c.clean_start = false;
    c.username = Some("bob".into());
    golden(bytes, V31, Packet::Connect(Box::new(c)));
}

#[test]
fn connack() {
    let ok = |session_present| {
        Packet::ConnAck(ConnAck {
            session_present,
            code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        })
    };
    golden("20 02 00 00", V311, ok(false));
    golden("20 02 01 00", V311, ok(true));
    golden("20 02 00 00", V31, ok(false));
    for (v3, v5) in [
        (1, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        (2, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        (3, ReasonCode::SERVER_UNAVAILABLE),
        (4, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        (5, ReasonCode::NOT_AUTHORIZED),
    ] {
        let refused = Packet::ConnAck(ConnAck {
            session_present: false,
            code: v5,
            properties: Properties::default(),
        });
        golden(&format!("20 02 00 0{v3}"), V311, refused.clone());
        golden(&format!("20 02 00 0{v3}"), V31, refused);
    }
}

#[test]
fn connack_v3_encoding_maps_and_drops_v5_only_fields() {
    // Codes without a v3 equivalent map to 3 (server unavailable); 0x8A banned maps to 5.
    let props = Properties {
        reason_string: Some("dropped".into()),
        ..Properties::default()
    };
    let p = |code| {
        Packet::ConnAck(ConnAck {
            session_present: false,
            code,
            properties: props.clone(),
        })
    };
    check_encode(&p(ReasonCode::QUOTA_EXCEEDED), V311, &hex("20 02 00 03"));
    check_encode(&p(ReasonCode::BANNED), V311, &hex("20 02 00 05"));
    // 3.1 has no Session Present flag.
    let sp = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ReasonCode::SUCCESS,
        properties: Properties::default(),
    });
    check_encode(&sp, V31, &hex("20 02 00 00"));
}

#[test]
fn publish() {
    let publish = |qos, packet_id: Option<u16>, dup, retain| {
        Packet::Publish(Publish {
            dup,
            qos,
            retain,
            topic: "a/b".into(),
            packet_id: packet_id.map(pid),
            properties: Properties::default(),
            payload: b("hi"),
        })
    };
    for v in [V31, V311] {
        golden(
            "30 07 00 03 61 2f 62 68 69",
            v,
            publish(QoS::AtMostOnce, None, false, false),
        );
        golden(
            "31 07 00 03 61 2f 62 68 69",
            v,
            publish(QoS::AtMostOnce, None, false, true),
        );
        golden(
            "3b 09 00 03 61 2f 62 00 0a 68 69",
            v,
            publish(QoS::AtLeastOnce, Some(10), true, true),
        );
        golden(
            "34 09 00 03 61 2f 62 ff ff 68 69",
            v,
            publish(QoS::ExactlyOnce, Some(0xFFFF), false, false),
        );
    }
    // Empty payload; a payload is opaque bytes (here not UTF-8).
    let empty = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: bytes::Bytes::new(),
    });
    golden("30 03 00 01 74", V311, empty);
    let binary = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: bytes::Bytes::from_static(&[0, 0xFF, 0xC0]),
    });
    golden("30 06 00 01 74 00 ff c0", V311, binary);
}

#[test]
fn publish_large_remaining_length() {
    // 200-byte payload: remaining length 205 = cd 01.
    let payload = vec![0x5A; 200];
    let mut bytes = hex("30 cd 01 00 03 61 2f 62");
    bytes.extend_from_slice(&payload);
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: payload.into(),
    });
    check_decode(&bytes, V311, &p);
    check_encode(&p, V311, &bytes);
}

#[test]
fn publish_acks() {
    for v in [V31, V311] {
        golden("40 02 00 0a", v, Packet::PubAck(ack(10)));
        golden("50 02 00 0a", v, Packet::PubRec(ack(10)));
        golden("62 02 00 0a", v, Packet::PubRel(ack(10)));
        golden("70 02 01 00", v, Packet::PubComp(ack(256)));
    }
    // 3.1 let a resent PUBREL carry DUP.
    check_decode(&hex("6a 02 00 0a"), V31, &Packet::PubRel(ack(10)));
}

#[test]
fn subscribe_and_suback() {
    let sub = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![
            filter("a/+", QoS::AtLeastOnce),
            filter("b/#", QoS::AtMostOnce),
        ],
        properties: Properties::default(),
    });
    let bytes = "82 0e 00 01 00 03 61 2f 2b 01 00 03 62 2f 23 00";
    golden(bytes, V311, sub.clone());
    golden(bytes, V31, sub.clone());
    check_decode(
        &hex("8a 0e 00 01 00 03 61 2f 2b 01 00 03 62 2f 23 00"),
        V31,
        &sub,
    );
    // 3.1.1 has no subscription options: they are dropped on encode.
    let mut with_options = sub.clone();
    if let Packet::Subscribe(s) = &mut with_options {
        s.filters[0].options.no_local = true;
        s.filters[0].options.retain_handling = RetainHandling::DoNotSend;
        s.properties.subscription_identifiers = vec![3];
    }
    check_encode(&with_options, V311, &hex(bytes));

    let suback = Packet::SubAck(SubAck {
        packet_id: pid(1),
        reasons: vec![
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::UNSPECIFIED_ERROR,
            ReasonCode::GRANTED_QOS_2,
        ],
        properties: Properties::default(),
    });
    golden("90 06 00 01 01 00 80 02", V311, suback.clone());
    golden("90 06 00 01 01 00 80 02", V31, suback);
}

#[test]
fn unsubscribe_and_unsuback() {
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        filters: vec!["a/b".into(), "#".into()],
        properties: Properties::default(),
    });
    golden("a2 0a 00 03 00 03 61 2f 62 00 01 23", V311, unsub.clone());
    golden("a2 0a 00 03 00 03 61 2f 62 00 01 23", V31, unsub);
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: pid(3),
        reasons: vec![],
        properties: Properties::default(),
    });
    golden("b0 02 00 03", V311, unsuback.clone());
    golden("b0 02 00 03", V31, unsuback);
    // v3 UNSUBACK has no payload: reason codes are not written.
    let with_reasons = Packet::UnsubAck(UnsubAck {
        packet_id: pid(3),
        reasons: vec![ReasonCode::SUCCESS],
        properties: Properties::default(),
    });
    check_encode(&with_reasons, V311, &hex("b0 02 00 03"));
}

#[test]
fn ping_and_disconnect() {
    for v in [V31, V311] {
        golden("c0 00", v, Packet::PingReq);
        golden("d0 00", v, Packet::PingResp);
        golden("e0 00", v, Packet::Disconnect(disconnect()));
    }
    // v5 reason codes do not exist in 3.1.1: DISCONNECT is always e0 00.
    let with_reason = Packet::Disconnect(Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Properties::default(),
    });
    check_encode(&with_reason, V311, &hex("e0 00"));
}

#[test]
fn acks_drop_v5_fields() {
    let props = Properties {
        reason_string: Some("x".into()),
        ..Properties::default()
    };
    let p = Packet::PubAck(PubResponse {
        packet_id: pid(10),
        reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        properties: props,
    });
    check_encode(&p, V311, &hex("40 02 00 0a"));
}
