//! Differential tests against `mqttbytes` 0.6 on cases where it is correct: bytes it writes
//! decode with ours to the same content, and bytes we write decode with it to the same content,
//! for 3.1.1 (its v4) and 5.0 (its v5). Avoided because mqttbytes gets them wrong: v5 `e0 00`
//! DISCONNECT (it rejects it), v5 CONNACK writing (it omits the property length), MQTT 3.1 and
//! AUTH (unsupported).

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use ferromq_mqtt::*;
use mqttbytes::QoS as TheirQoS;

const LIMIT: usize = 1 << 20;

fn our_qos(q: TheirQoS) -> QoS {
    match q {
        TheirQoS::AtMostOnce => QoS::AtMostOnce,
        TheirQoS::AtLeastOnce => QoS::AtLeastOnce,
        TheirQoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn id(n: u16) -> Option<PacketId> {
    PacketId::new(n)
}

fn ours_to_bytes(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    encode(p, v, &mut out).expect("encodes");
    out
}

mod v4 {
    use super::*;
    use mqttbytes::v4 as m;

    /// Their packet converted to ours (3.1.1).
    fn convert(p: &m::Packet) -> Packet {
        let props = Properties::default;
        match p {
            m::Packet::Connect(c) => Packet::Connect(Box::new(Connect {
                protocol: ProtocolVersion::V311,
                clean_start: c.clean_session,
                keep_alive: c.keep_alive,
                client_id: c.client_id.clone(),
                will: c.last_will.as_ref().map(|w| Will {
                    topic: w.topic.clone(),
                    payload: w.message.clone(),
                    qos: our_qos(w.qos),
                    retain: w.retain,
                    properties: props(),
                }),
                username: c.login.as_ref().map(|l| l.username.clone()),
                password: c.login.as_ref().map(|l| Bytes::from(l.password.clone())),
                properties: props(),
            })),
            m::Packet::ConnAck(c) => Packet::ConnAck(ConnAck {
                session_present: c.session_present,
                code: ReasonCode::from_v3_connack(c.code as u8).expect("v3 code"),
                properties: props(),
            }),
            m::Packet::Publish(p) => Packet::Publish(Publish {
                dup: p.dup,
                qos: our_qos(p.qos),
                retain: p.retain,
                topic: p.topic.clone(),
                packet_id: id(p.pkid),
                properties: props(),
                payload: p.payload.clone(),
            }),
            m::Packet::PubAck(a) => Packet::PubAck(ack(a.pkid)),
            m::Packet::PubRec(a) => Packet::PubRec(ack(a.pkid)),
            m::Packet::PubRel(a) => Packet::PubRel(ack(a.pkid)),
            m::Packet::PubComp(a) => Packet::PubComp(ack(a.pkid)),
            m::Packet::Subscribe(s) => Packet::Subscribe(Subscribe {
                packet_id: pid(s.pkid),
                filters: s
                    .filters
                    .iter()
                    .map(|f| filter(&f.path, our_qos(f.qos)))
                    .collect(),
                properties: props(),
            }),
            m::Packet::SubAck(s) => Packet::SubAck(SubAck {
                packet_id: pid(s.pkid),
                reasons: s
                    .return_codes
                    .iter()
                    .map(|c| match c {
                        m::SubscribeReasonCode::Success(q) => ReasonCode(*q as u8),
                        m::SubscribeReasonCode::Failure => ReasonCode(0x80),
                    })
                    .collect(),
                properties: props(),
            }),
            m::Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(u.pkid),
                filters: u.topics.clone(),
                properties: props(),
            }),
            m::Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
                packet_id: pid(u.pkid),
                reasons: vec![],
                properties: props(),
            }),
            m::Packet::PingReq => Packet::PingReq,
            m::Packet::PingResp => Packet::PingResp,
            m::Packet::Disconnect => Packet::Disconnect(Disconnect {
                reason: ReasonCode::NORMAL_DISCONNECTION,
                properties: props(),
            }),
        }
    }

    fn ack(n: u16) -> PubResponse {
        PubResponse {
            packet_id: pid(n),
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }
    }

    fn write(p: &m::Packet) -> BytesMut {
        let mut out = BytesMut::new();
        let r = match p {
            m::Packet::Connect(x) => x.write(&mut out),
            m::Packet::ConnAck(x) => x.write(&mut out),
            m::Packet::Publish(x) => x.write(&mut out),
            m::Packet::PubAck(x) => x.write(&mut out),
            m::Packet::PubRec(x) => x.write(&mut out),
            m::Packet::PubRel(x) => x.write(&mut out),
            m::Packet::PubComp(x) => x.write(&mut out),
            m::Packet::Subscribe(x) => x.write(&mut out),
            m::Packet::SubAck(x) => x.write(&mut out),
            m::Packet::Unsubscribe(x) => x.write(&mut out),
            m::Packet::UnsubAck(x) => x.write(&mut out),
            m::Packet::PingReq => m::PingReq.write(&mut out),
            m::Packet::PingResp => m::PingResp.write(&mut out),
            m::Packet::Disconnect => m::Disconnect.write(&mut out),
        };
        r.expect("mqttbytes writes");
        out
    }

    fn cases() -> Vec<m::Packet> {
        let mut connect = m::Connect::new("client-1");
        connect.keep_alive = 30;
        connect.clean_session = false;
        let mut full = m::Connect::new("c2");
        full.set_login("user", "secret");
        full.last_will = Some(m::LastWill::new(
            "will/t",
            "gone",
            TheirQoS::AtLeastOnce,
            true,
        ));
        let mut dup = m::Publish::new("a/b", TheirQoS::ExactlyOnce, vec![1u8, 2, 3]);
        dup.pkid = 77;
        dup.dup = true;
        dup.retain = true;
        let mut q1 = m::Publish::new("sensors/temp", TheirQoS::AtLeastOnce, vec![0u8; 300]);
        q1.pkid = 1;
        let mut sub = m::Subscribe::new("a/+/c", TheirQoS::AtLeastOnce);
        sub.add("#".into(), TheirQoS::ExactlyOnce);
        sub.pkid = 9;
        let unsub = m::Unsubscribe {
            pkid: 4,
            topics: vec!["a/b".into(), "c/#".into()],
        };
        vec![
            m::Packet::Connect(connect),
            m::Packet::Connect(full),
            m::Packet::ConnAck(m::ConnAck::new(m::ConnectReturnCode::Success, true)),
            m::Packet::ConnAck(m::ConnAck::new(
                m::ConnectReturnCode::BadUserNamePassword,
                false,
            )),
            m::Packet::Publish(m::Publish::new("hello", TheirQoS::AtMostOnce, "world")),
            m::Packet::Publish(dup),
            m::Packet::Publish(q1),
            m::Packet::PubAck(m::PubAck::new(5)),
            m::Packet::PubRec(m::PubRec::new(6)),
            m::Packet::PubRel(m::PubRel::new(7)),
            m::Packet::PubComp(m::PubComp::new(8)),
            m::Packet::Subscribe(sub),
            m::Packet::SubAck(m::SubAck::new(
                9,
                vec![
                    m::SubscribeReasonCode::Success(TheirQoS::AtLeastOnce),
                    m::SubscribeReasonCode::Failure,
                ],
            )),
            m::Packet::Unsubscribe(unsub),
            m::Packet::UnsubAck(m::UnsubAck::new(4)),
            m::Packet::PingReq,
            m::Packet::PingResp,
            m::Packet::Disconnect,
        ]
    }

    #[test]
    fn their_bytes_decode_with_ours() {
        for theirs in cases() {
            let bytes = write(&theirs);
            let expected = convert(&theirs);
            check_decode(&bytes, ProtocolVersion::V311, &expected);
        }
    }

    #[test]
    fn our_bytes_decode_with_theirs() {
        for theirs in cases() {
            let ours = convert(&theirs);
            let mut bytes = ours_to_bytes(&ours, ProtocolVersion::V311);
            assert_eq!(bytes, write(&theirs), "same bytes for {theirs:?}");
            let back = m::read(&mut bytes, LIMIT).expect("mqttbytes reads ours");
            assert_eq!(back, theirs);
            assert!(bytes.is_empty());
        }
    }
}

mod v5 {
    use super::*;
    use mqttbytes::v5 as m;

    fn ack_props(reason_string: &Option<String>, user: &[(String, String)]) -> Properties {
        Properties {
            reason_string: reason_string.clone(),
            user_properties: user.to_vec(),
            ..Properties::default()
        }
    }

    /// Their packet converted to ours (5.0). Only the packet kinds `cases` uses.
    fn convert(p: &m::Packet) -> Packet {
        match p {
            m::Packet::Connect(c) => {
                let mut properties = Properties::default();
                if let Some(cp) = &c.properties {
                    properties.session_expiry_interval = cp.session_expiry_interval;
                    properties.receive_maximum = cp.receive_maximum;
                    properties.maximum_packet_size = cp.max_packet_size;
                    properties.topic_alias_maximum = cp.topic_alias_max;
                    properties.request_response_information = cp.request_response_info;
                    properties.request_problem_information = cp.request_problem_info;
                    properties.user_properties = cp.user_properties.clone();
                    properties.authentication_method = cp.authentication_method.clone();
                    properties.authentication_data = cp.authentication_data.clone();
                }
                Packet::Connect(Box::new(Connect {
                    protocol: ProtocolVersion::V5,
                    clean_start: c.clean_session,
                    keep_alive: c.keep_alive,
                    client_id: c.client_id.clone(),
                    will: c.last_will.as_ref().map(|w| {
                        let mut wp = Properties::default();
                        if let Some(p) = &w.properties {
                            wp.will_delay_interval = p.delay_interval;
                            wp.payload_format_indicator = p.payload_format_indicator;
                            wp.message_expiry_interval = p.message_expiry_interval;
                            wp.content_type = p.content_type.clone();
                            wp.response_topic = p.response_topic.clone();
                            wp.correlation_data = p.correlation_data.clone();
                            wp.user_properties = p.user_properties.clone();
                        }
                        Will {
                            topic: w.topic.clone(),
                            payload: w.message.clone(),
                            qos: our_qos(w.qos),
                            retain: w.retain,
                            properties: wp,
                        }
                    }),
                    username: c.login.as_ref().map(|l| l.username.clone()),
                    password: c.login.as_ref().map(|l| Bytes::from(l.password.clone())),
                    properties,
                }))
            }
            m::Packet::Publish(p) => {
                let mut properties = Properties::default();
                if let Some(pp) = &p.properties {
                    properties.payload_format_indicator = pp.payload_format_indicator;
                    properties.message_expiry_interval = pp.message_expiry_interval;
                    properties.topic_alias = pp.topic_alias;
                    properties.response_topic = pp.response_topic.clone();
                    properties.correlation_data = pp.correlation_data.clone();
                    properties.user_properties = pp.user_properties.clone();
                    properties.subscription_identifiers = pp
                        .subscription_identifiers
                        .iter()
                        .map(|&i| i as u32)
                        .collect();
                    properties.content_type = pp.content_type.clone();
                }
                Packet::Publish(Publish {
                    dup: p.dup,
                    qos: our_qos(p.qos),
                    retain: p.retain,
                    topic: p.topic.clone(),
                    packet_id: id(p.pkid),
                    properties,
                    payload: p.payload.clone(),
                })
            }
            m::Packet::PubAck(a) => Packet::PubAck(PubResponse {
                packet_id: pid(a.pkid),
                reason: ReasonCode(a.reason as u8),
                properties: a
                    .properties
                    .as_ref()
                    .map(|p| ack_props(&p.reason_string, &p.user_properties))
                    .unwrap_or_default(),
            }),
            m::Packet::PubRec(a) => Packet::PubRec(PubResponse {
                packet_id: pid(a.pkid),
                reason: ReasonCode(a.reason as u8),
                properties: a
                    .properties
                    .as_ref()
                    .map(|p| ack_props(&p.reason_string, &p.user_properties))
                    .unwrap_or_default(),
            }),
            m::Packet::Subscribe(s) => Packet::Subscribe(Subscribe {
                packet_id: pid(s.pkid),
                filters: s
                    .filters
                    .iter()
                    .map(|f| SubscribeFilter {
                        filter: f.path.clone(),
                        options: SubscriptionOptions {
                            qos: our_qos(f.qos),
                            no_local: f.nolocal,
                            retain_as_published: f.preserve_retain,
                            retain_handling: match f.retain_forward_rule {
                                m::RetainForwardRule::OnEverySubscribe => {
                                    RetainHandling::SendAtSubscribe
                                }
                                m::RetainForwardRule::OnNewSubscribe => RetainHandling::SendIfNew,
                                m::RetainForwardRule::Never => RetainHandling::DoNotSend,
                            },
                        },
                    })
                    .collect(),
                properties: s
                    .properties
                    .as_ref()
                    .map(|p| Properties {
                        subscription_identifiers: p.id.iter().map(|&i| i as u32).collect(),
                        user_properties: p.user_properties.clone(),
                        ..Properties::default()
                    })
                    .unwrap_or_default(),
            }),
            m::Packet::SubAck(s) => Packet::SubAck(SubAck {
                packet_id: pid(s.pkid),
                reasons: s
                    .return_codes
                    .iter()
                    .map(|&c| ReasonCode(c as u8))
                    .collect(),
                properties: s
                    .properties
                    .as_ref()
                    .map(|p| ack_props(&p.reason_string, &p.user_properties))
                    .unwrap_or_default(),
            }),
            m::Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(u.pkid),
                filters: u.filters.clone(),
                properties: u
                    .properties
                    .as_ref()
                    .map(|p| ack_props(&None, &p.user_properties))
                    .unwrap_or_default(),
            }),
            m::Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
                packet_id: pid(u.pkid),
                reasons: u.reasons.iter().map(|&c| ReasonCode(c as u8)).collect(),
                properties: u
                    .properties
                    .as_ref()
                    .map(|p| ack_props(&p.reason_string, &p.user_properties))
                    .unwrap_or_default(),
            }),
            m::Packet::Disconnect(d) => Packet::Disconnect(Disconnect {
                reason: ReasonCode(d.reason_code as u8),
                properties: d
                    .properties
                    .as_ref()
                    .map(|p| Properties {
                        session_expiry_interval: p.session_expiry_interval,
                        reason_string: p.reason_string.clone(),
                        user_properties: p.user_properties.clone(),
                        server_reference: p.server_reference.clone(),
                        ..Properties::default()
                    })
                    .unwrap_or_default(),
            }),
            m::Packet::PingReq => Packet::PingReq,
            m::Packet::PingResp => Packet::PingResp,
            other => unreachable!("not used in the v5 cases: {other:?}"),
        }
    }

    fn write(p: &m::Packet) -> BytesMut {
        let mut out = BytesMut::new();
        let r = match p {
            m::Packet::Connect(x) => x.write(&mut out),
            m::Packet::Publish(x) => x.write(&mut out),
            m::Packet::PubAck(x) => x.write(&mut out),
            m::Packet::PubRec(x) => x.write(&mut out),
            m::Packet::Subscribe(x) => x.write(&mut out),
            m::Packet::SubAck(x) => x.write(&mut out),
            m::Packet::Unsubscribe(x) => x.write(&mut out),
            m::Packet::UnsubAck(x) => x.write(&mut out),
            m::Packet::Disconnect(x) => x.write(&mut out),
            m::Packet::PingReq => m::PingReq.write(&mut out),
            m::Packet::PingResp => m::PingResp.write(&mut out),
            other => unreachable!("not used in the v5 cases: {other:?}"),
        };
        r.expect("mqttbytes writes");
        out
    }

    fn user() -> Vec<(String, String)> {
        vec![
            ("region".into(), "eu".into()),
            ("region".into(), "us".into()),
        ]
    }

    fn cases() -> Vec<m::Packet> {
        let mut connect = m::Connect::new("v5-client");
        connect.set_login("alice", "pw");
        connect.properties = Some(m::ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(100),
            max_packet_size: Some(65_536),
            topic_alias_max: Some(10),
            request_response_info: Some(1),
            request_problem_info: Some(0),
            user_properties: user(),
            authentication_method: Some("PLAIN".into()),
            authentication_data: Some(Bytes::from_static(b"\x00alice\x00pw")),
        });
        connect.last_will = Some(m::LastWill {
            topic: "status/v5-client".into(),
            message: Bytes::from_static(b"offline"),
            qos: TheirQoS::AtLeastOnce,
            retain: true,
            properties: Some(m::WillProperties {
                delay_interval: Some(30),
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(600),
                content_type: Some("text/plain".into()),
                response_topic: Some("reply/here".into()),
                correlation_data: Some(Bytes::from_static(b"corr")),
                user_properties: user(),
            }),
        });
        let bare_connect = m::Connect::new("bare");

        let mut publish = m::Publish::new("a/b/c", TheirQoS::AtLeastOnce, vec![7u8; 64]);
        publish.pkid = 42;
        publish.properties = Some(m::PublishProperties {
            payload_format_indicator: Some(0),
            message_expiry_interval: Some(10),
            topic_alias: Some(3),
            response_topic: Some("r".into()),
            correlation_data: Some(Bytes::from_static(&[1, 2, 3])),
            user_properties: user(),
            subscription_identifiers: vec![1, 16_384],
            content_type: Some("application/json".into()),
        });
        let plain = m::Publish::new("plain", TheirQoS::AtMostOnce, "x");

        let mut puback = m::PubAck::new(42);
        puback.reason = m::PubAckReason::NoMatchingSubscribers;
        let mut puback_props = m::PubAck::new(43);
        puback_props.reason = m::PubAckReason::QuotaExceeded;
        puback_props.properties = Some(m::PubAckProperties {
            reason_string: Some("full".into()),
            user_properties: vec![],
        });

        let mut sub = m::Subscribe::new("x/+", TheirQoS::ExactlyOnce);
        let mut f = m::SubscribeFilter::new("y/#".into(), TheirQoS::AtLeastOnce);
        f.set_nolocal(true)
            .set_preserve_retain(true)
            .set_retain_forward_rule(m::RetainForwardRule::Never);
        sub.filters.push(f);
        sub.pkid = 12;
        sub.properties = Some(m::SubscribeProperties {
            id: Some(99),
            user_properties: vec![],
        });
        let suback = m::SubAck {
            pkid: 12,
            return_codes: vec![
                m::SubscribeReasonCode::QoS2,
                m::SubscribeReasonCode::NotAuthorized,
            ],
            properties: Some(m::SubAckProperties {
                reason_string: Some("partial".into()),
                user_properties: vec![],
            }),
        };
        let unsub = m::Unsubscribe {
            pkid: 13,
            filters: vec!["x/+".into()],
            properties: None,
        };
        let unsuback = m::UnsubAck {
            pkid: 13,
            reasons: vec![
                m::UnsubAckReason::Success,
                m::UnsubAckReason::NoSubscriptionExisted,
            ],
            properties: None,
        };
        let disconnect = m::Disconnect {
            reason_code: m::DisconnectReasonCode::ServerShuttingDown,
            properties: Some(m::DisconnectProperties {
                session_expiry_interval: None,
                reason_string: Some("bye".into()),
                user_properties: vec![],
                server_reference: Some("other:1883".into()),
            }),
        };
        vec![
            m::Packet::Connect(connect),
            m::Packet::Connect(bare_connect),
            m::Packet::Publish(publish),
            m::Packet::Publish(plain),
            m::Packet::PubAck(m::PubAck::new(41)),
            m::Packet::PubAck(puback),
            m::Packet::PubAck(puback_props),
            m::Packet::Subscribe(sub),
            m::Packet::SubAck(suback),
            m::Packet::Unsubscribe(unsub),
            m::Packet::UnsubAck(unsuback),
            m::Packet::Disconnect(disconnect),
            m::Packet::PingReq,
        ]
    }

    #[test]
    fn their_bytes_decode_with_ours() {
        for theirs in cases() {
            let bytes = write(&theirs);
            check_decode(&bytes, ProtocolVersion::V5, &convert(&theirs));
        }
    }

    #[test]
    fn our_bytes_decode_with_theirs() {
        for theirs in cases() {
            let ours = convert(&theirs);
            let mut bytes = ours_to_bytes(&ours, ProtocolVersion::V5);
            let back = m::read(&mut bytes, LIMIT)
                .unwrap_or_else(|e| panic!("mqttbytes rejects our {ours:?}: {e:?}"));
            // Compare in our model: property order and Some(empty) vs None are not content.
            assert_eq!(convert(&back), ours);
            assert!(bytes.is_empty());
        }
    }

    #[test]
    fn our_connack_decodes_with_theirs() {
        // mqttbytes writes v5 CONNACK without a Property Length, but reads the correct form.
        let ours = Packet::ConnAck(ConnAck {
            session_present: true,
            code: ReasonCode::SUCCESS,
            properties: Properties {
                receive_maximum: Some(10),
                maximum_qos: Some(1),
                assigned_client_identifier: Some("auto-1".into()),
                ..Properties::default()
            },
        });
        let mut bytes = ours_to_bytes(&ours, ProtocolVersion::V5);
        match m::read(&mut bytes, LIMIT).expect("mqttbytes reads our CONNACK") {
            m::Packet::ConnAck(c) => {
                assert!(c.session_present);
                assert_eq!(c.code, m::ConnectReturnCode::Success);
                let p = c.properties.expect("properties");
                assert_eq!(p.receive_max, Some(10));
                assert_eq!(p.max_qos, Some(1));
                assert_eq!(p.assigned_client_identifier.as_deref(), Some("auto-1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
