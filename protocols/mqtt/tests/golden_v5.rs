//! Hand-checked wire bytes for every MQTT 5.0 packet type, including properties and the short
//! forms (`e0 00`, 2-byte PUBACK, `f0 00`), decoded with the split / glued / size-limit checks
//! and encoded. Decode-only cases cover the non-canonical forms a peer may legally send.

mod common;

use common::*;
use ferromq_mqtt::*;

use ProtocolVersion::V5;

fn props() -> Properties {
    Properties::default()
}

fn user(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

#[test]
fn connect_with_properties_will_and_password_only() {
    let bytes = "10 32 00 04 4d 51 54 54 05 46 00 1e
                 0f 11 00 00 00 78 21 00 14 26 00 01 6b 00 01 76
                 00 02 63 31
                 07 01 01 18 00 00 00 05
                 00 03 74 2f 77 00 01 78
                 00 02 70 77";
    let mut p = props();
    p.session_expiry_interval = Some(120);
    p.receive_maximum = Some(20);
    p.user_properties = vec![user("k", "v")];
    let mut wp = props();
    wp.payload_format_indicator = Some(1);
    wp.will_delay_interval = Some(5);
    let c = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 30,
        client_id: "c1".into(),
        will: Some(Will {
            topic: "t/w".into(),
            payload: b("x"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: wp,
        }),
        // 5.0 allows a password without a user name.
        username: None,
        password: Some(b("pw")),
        properties: p,
    };
    golden(bytes, V5, Packet::Connect(Box::new(c)));
    assert_eq!(decode_connect_version(&hex(bytes)), Ok(Some(V5)));
    // The version is known from the first 9 bytes.
    assert_eq!(decode_connect_version(&hex(bytes)[..8]), Ok(None));
    assert_eq!(decode_connect_version(&hex(bytes)[..9]), Ok(Some(V5)));
}

#[test]
fn connect_minimal_and_with_auth_method() {
    let c = Connect {
        protocol: V5,
        clean_start: false,
        keep_alive: 0,
        client_id: String::new(),
        will: None,
        username: Some("u".into()),
        password: None,
        properties: props(),
    };
    golden(
        "10 10 00 04 4d 51 54 54 05 80 00 00 00 00 00 00 01 75",
        V5,
        Packet::Connect(Box::new(c.clone())),
    );
    let mut c = c;
    c.properties.authentication_method = Some("SCRAM".into());
    c.properties.authentication_data = Some(bytes::Bytes::from_static(&[1, 2]));
    c.properties.request_problem_information = Some(0);
    c.properties.maximum_packet_size = Some(1024);
    golden(
        "10 24 00 04 4d 51 54 54 05 80 00 00
         14 15 00 05 53 43 52 41 4d 16 00 02 01 02 17 00 27 00 00 04 00
         00 00 00 01 75",
        V5,
        Packet::Connect(Box::new(c)),
    );
}

#[test]
fn connack_always_has_property_length() {
    let ok = Packet::ConnAck(ConnAck {
        session_present: false,
        code: ReasonCode::SUCCESS,
        properties: props(),
    });
    golden("20 03 00 00 00", V5, ok);
    let mut p = props();
    p.assigned_client_identifier = Some("id".into());
    p.topic_alias_maximum = Some(10);
    p.maximum_qos = Some(1);
    let with_props = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ReasonCode::SUCCESS,
        properties: p,
    });
    golden(
        "20 0d 01 00 0a 12 00 02 69 64 22 00 0a 24 01",
        V5,
        with_props,
    );
    // v5 reason codes go on the wire as they are.
    let refused = Packet::ConnAck(ConnAck {
        session_present: false,
        code: ReasonCode::BANNED,
        properties: props(),
    });
    golden("20 03 00 8a 00", V5, refused);
}

#[test]
fn publish_with_every_publish_property() {
    let bytes = "32 2f 00 03 61 2f 62 00 01
                 25 01 01 02 00 00 00 3c 03 00 04 74 65 78 74 08 00 03 72 2f 31
                 09 00 02 c0 ff 0b 05 23 00 02 26 00 01 61 00 01 62
                 68 69";
    let mut p = props();
    p.payload_format_indicator = Some(1);
    p.message_expiry_interval = Some(60);
    p.content_type = Some("text".into());
    p.response_topic = Some("r/1".into());
    p.correlation_data = Some(bytes::Bytes::from_static(&[0xC0, 0xFF]));
    p.subscription_identifiers = vec![5];
    p.topic_alias = Some(2);
    p.user_properties = vec![user("a", "b")];
    let publish = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: Some(pid(1)),
        properties: p,
        payload: b("hi"),
    };
    golden(bytes, V5, Packet::Publish(publish));
}

#[test]
fn publish_plain_alias_only_and_many_subscription_ids() {
    let plain = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: None,
        properties: props(),
        payload: b("hi"),
    });
    golden("30 08 00 03 61 2f 62 00 68 69", V5, plain);

    // An empty topic name is allowed together with a Topic Alias.
    let mut p = props();
    p.topic_alias = Some(5);
    let aliased = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: String::new(),
        packet_id: None,
        properties: p,
        payload: b("x"),
    });
    golden("31 07 00 00 03 23 00 05 78", V5, aliased);

    // A forwarded PUBLISH may carry one identifier per matching subscription; 200 needs 2 bytes.
    let mut p = props();
    p.subscription_identifiers = vec![1, 200];
    let forwarded = Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "t".into(),
        packet_id: Some(pid(7)),
        properties: p,
        payload: bytes::Bytes::new(),
    });
    golden("3c 0b 00 01 74 00 07 05 0b 01 0b c8 01", V5, forwarded);
}

#[test]
fn pub_response_forms() {
    let resp = |reason, properties| PubResponse {
        packet_id: pid(10),
        reason,
        properties,
    };
    // Short form: Success without properties.
    golden(
        "40 02 00 0a",
        V5,
        Packet::PubAck(resp(ReasonCode::SUCCESS, props())),
    );
    golden(
        "50 02 00 0a",
        V5,
        Packet::PubRec(resp(ReasonCode::SUCCESS, props())),
    );
    golden(
        "62 02 00 0a",
        V5,
        Packet::PubRel(resp(ReasonCode::SUCCESS, props())),
    );
    golden(
        "70 02 00 0a",
        V5,
        Packet::PubComp(resp(ReasonCode::SUCCESS, props())),
    );
    // Reason code without properties: no Property Length.
    let nms = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    golden("40 03 00 0a 10", V5, Packet::PubAck(resp(nms, props())));
    let not_found = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
    golden(
        "62 03 00 0a 92",
        V5,
        Packet::PubRel(resp(not_found, props())),
    );
    // Reason code and properties.
    let mut p = props();
    p.reason_string = Some("bad".into());
    let err = ReasonCode::UNSPECIFIED_ERROR;
    golden(
        "50 0a 00 0a 80 06 1f 00 03 62 61 64",
        V5,
        Packet::PubRec(resp(err, p.clone())),
    );
    // Success with properties keeps the reason byte.
    let ok_props = Packet::PubComp(resp(ReasonCode::SUCCESS, p));
    golden("70 0a 00 0a 00 06 1f 00 03 62 61 64", V5, ok_props);
    // Non-canonical but legal: explicit Success, explicit empty property length.
    let short = Packet::PubAck(resp(ReasonCode::SUCCESS, props()));
    check_decode(&hex("40 03 00 0a 00"), V5, &short);
    check_decode(&hex("40 04 00 0a 00 00"), V5, &short);
}

#[test]
fn subscribe_with_options_and_shared_filter() {
    let mut p = props();
    p.subscription_identifiers = vec![10];
    let sub = Packet::Subscribe(Subscribe {
        packet_id: pid(2),
        filters: vec![
            SubscribeFilter {
                filter: "$share/g/t".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            },
            SubscribeFilter {
                filter: "x".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendIfNew,
                },
            },
        ],
        properties: p,
    });
    golden(
        "82 16 00 02 02 0b 0a 00 0a 24 73 68 61 72 65 2f 67 2f 74 2a 00 01 78 15",
        V5,
        sub,
    );
}

#[test]
fn suback_unsubscribe_unsuback() {
    let suback = Packet::SubAck(SubAck {
        packet_id: pid(1),
        reasons: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED],
        properties: props(),
    });
    golden("90 05 00 01 00 01 87", V5, suback);
    let mut p = props();
    p.reason_string = Some("no".into());
    p.user_properties = vec![user("k", "")];
    let suback = Packet::SubAck(SubAck {
        packet_id: pid(1),
        reasons: vec![ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED],
        properties: p,
    });
    golden(
        "90 0f 00 01 0b 1f 00 02 6e 6f 26 00 01 6b 00 00 9e",
        V5,
        suback,
    );

    let mut p = props();
    p.user_properties = vec![user("a", "b")];
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        filters: vec!["a/b".into()],
        properties: p,
    });
    golden(
        "a2 0f 00 03 07 26 00 01 61 00 01 62 00 03 61 2f 62",
        V5,
        unsub,
    );
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        filters: vec!["a/b".into()],
        properties: props(),
    });
    golden("a2 08 00 03 00 00 03 61 2f 62", V5, unsub);

    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: pid(3),
        reasons: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED, ReasonCode::SUCCESS],
        properties: props(),
    });
    golden("b0 05 00 03 00 11 00", V5, unsuback);
}

#[test]
fn ping() {
    golden("c0 00", V5, Packet::PingReq);
    golden("d0 00", V5, Packet::PingResp);
}

#[test]
fn disconnect_forms() {
    let d = |reason, properties| Packet::Disconnect(Disconnect { reason, properties });
    golden("e0 00", V5, d(ReasonCode::NORMAL_DISCONNECTION, props()));
    golden("e0 01 04", V5, d(ReasonCode::DISCONNECT_WITH_WILL, props()));
    let mut p = props();
    p.session_expiry_interval = Some(0);
    golden(
        "e0 07 00 05 11 00 00 00 00",
        V5,
        d(ReasonCode::NORMAL_DISCONNECTION, p),
    );
    let mut p = props();
    p.server_reference = Some("h".into());
    golden(
        "e0 06 9c 04 1c 00 01 68",
        V5,
        d(ReasonCode::USE_ANOTHER_SERVER, p),
    );
    // Non-canonical but legal.
    check_decode(
        &hex("e0 01 00"),
        V5,
        &d(ReasonCode::NORMAL_DISCONNECTION, props()),
    );
    check_decode(
        &hex("e0 02 00 00"),
        V5,
        &d(ReasonCode::NORMAL_DISCONNECTION, props()),
    );
}

#[test]
fn auth_forms() {
    let a = |reason, properties| Packet::Auth(Auth { reason, properties });
    golden("f0 00", V5, a(ReasonCode::SUCCESS, props()));
    let mut p = props();
    p.authentication_method = Some("SCRAM".into());
    p.authentication_data = Some(bytes::Bytes::from_static(&[1, 2]));
    golden(
        "f0 0f 18 0d 15 00 05 53 43 52 41 4d 16 00 02 01 02",
        V5,
        a(ReasonCode::CONTINUE_AUTHENTICATION, p),
    );
    // A non-success reason without properties still writes the Property Length.
    golden("f0 02 19 00", V5, a(ReasonCode::RE_AUTHENTICATE, props()));
    check_decode(&hex("f0 02 00 00"), V5, &a(ReasonCode::SUCCESS, props()));
}

#[test]
fn unknown_reason_codes_survive() {
    let p = Packet::PubAck(PubResponse {
        packet_id: pid(1),
        reason: ReasonCode(0x42),
        properties: props(),
    });
    golden("40 03 00 01 42", V5, p);
}
