//! Property tests: `decode(encode(p)) == p` for generated valid packets of every type in every
//! version; the decoder never panics on arbitrary or mutated bytes (small size limits too); and
//! whatever it accepts re-encodes to something that decodes to the same packet.

mod common;

use bytes::{Bytes, BytesMut};
use ferromq_mqtt::*;
use proptest::collection::vec;
use proptest::option::of as opt;
use proptest::prelude::*;

use ProtocolVersion::{V31, V311, V5};

// ---- leaf strategies ----

fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(V31), Just(V311), Just(V5)]
}

/// Strings without control characters (so without U+0000), including non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "\\PC{0,8}"
}

fn bin() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|n| PacketId::new(n).expect("non-zero"))
}

fn topic_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é€/$._-]{1,12}"
}

fn topic_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("+".to_owned()), "[a-z0-9é$]{0,4}"];
    (vec(level, 1..4), any::<bool>(), opt("[a-z0-9]{1,4}")).prop_map(|(levels, hash, group)| {
        let mut f = levels.join("/");
        if hash {
            f.push_str("/#");
        }
        if f.is_empty() || f.starts_with("$share") {
            f = "#".to_owned();
        }
        match group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f,
        }
    })
}

// ---- properties ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

fn any_properties() -> impl Strategy<Value = Properties> {
    let a = (
        opt(0u8..=1),
        opt(any::<u32>()),
        opt(text()),
        opt(topic_name()),
        opt(bin()),
        vec(1u32..=268_435_455, 0..3),
        opt(any::<u32>()),
        opt(text()),
        opt(any::<u16>()),
        opt(text()),
    );
    let b = (
        opt(bin()),
        opt(0u8..=1),
        opt(any::<u32>()),
        opt(0u8..=1),
        opt(text()),
        opt(text()),
        opt(text()),
        opt(1u16..),
        opt(any::<u16>()),
        opt(1u16..),
    );
    let c = (
        opt(0u8..=1),
        opt(0u8..=1),
        vec((text(), text()), 0..3),
        opt(1u32..),
        opt(0u8..=1),
        opt(0u8..=1),
        opt(0u8..=1),
    );
    (a, b, c).prop_map(|(a, b, c)| Properties {
        payload_format_indicator: a.0,
        message_expiry_interval: a.1,
        content_type: a.2,
        response_topic: a.3,
        correlation_data: a.4,
        subscription_identifiers: a.5,
        session_expiry_interval: a.6,
        assigned_client_identifier: a.7,
        server_keep_alive: a.8,
        authentication_method: a.9,
        authentication_data: b.0,
        request_problem_information: b.1,
        will_delay_interval: b.2,
        request_response_information: b.3,
        response_information: b.4,
        server_reference: b.5,
        reason_string: b.6,
        receive_maximum: b.7,
        topic_alias_maximum: b.8,
        topic_alias: b.9,
        maximum_qos: c.0,
        retain_available: c.1,
        user_properties: c.2,
        maximum_packet_size: c.3,
        wildcard_subscription_available: c.4,
        subscription_identifier_available: c.5,
        shared_subscription_available: c.6,
    })
}

/// Clears every property `ctx` may not carry (5.0 table 2-4, written out independently of the
/// decoder's table) and repairs combinations the spec forbids.
fn keep_allowed(mut p: Properties, ctx: Ctx) -> Properties {
    use Ctx::*;
    let on = |allowed: &[Ctx]| allowed.contains(&ctx);
    if !on(&[Publish, Will]) {
        p.payload_format_indicator = None;
        p.message_expiry_interval = None;
        p.content_type = None;
        p.response_topic = None;
        p.correlation_data = None;
    }
    if !on(&[Publish, Subscribe]) {
        p.subscription_identifiers.clear();
    }
    if ctx == Subscribe {
        p.subscription_identifiers.truncate(1);
    }
    if !on(&[Connect, ConnAck, Disconnect]) {
        p.session_expiry_interval = None;
    }
    if !on(&[ConnAck]) {
        p.assigned_client_identifier = None;
        p.server_keep_alive = None;
        p.response_information = None;
        p.maximum_qos = None;
        p.retain_available = None;
        p.wildcard_subscription_available = None;
        p.subscription_identifier_available = None;
        p.shared_subscription_available = None;
    }
    if !on(&[Connect, ConnAck, Auth]) {
        p.authentication_method = None;
        p.authentication_data = None;
    }
    if p.authentication_method.is_none() {
        p.authentication_data = None;
    }
    if !on(&[Connect]) {
        p.request_problem_information = None;
        p.request_response_information = None;
    }
    if !on(&[Will]) {
        p.will_delay_interval = None;
    }
    if !on(&[ConnAck, Disconnect]) {
        p.server_reference = None;
    }
    if !on(&[ConnAck, PubResponse, SubAck, UnsubAck, Disconnect, Auth]) {
        p.reason_string = None;
    }
    if !on(&[Connect, ConnAck]) {
        p.receive_maximum = None;
        p.topic_alias_maximum = None;
        p.maximum_packet_size = None;
    }
    if !on(&[Publish]) {
        p.topic_alias = None;
    }
    p
}

fn props(ctx: Ctx, v: ProtocolVersion) -> BoxedStrategy<Properties> {
    if v.is_v5() {
        any_properties()
            .prop_map(move |p| keep_allowed(p, ctx))
            .boxed()
    } else {
        Just(Properties::default()).boxed()
    }
}

fn reason(v: ProtocolVersion) -> BoxedStrategy<ReasonCode> {
    if v.is_v5() {
        any::<u8>().prop_map(ReasonCode).boxed()
    } else {
        Just(ReasonCode::SUCCESS).boxed()
    }
}

// ---- packets ----

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = opt((
        topic_name(),
        bin(),
        qos(),
        any::<bool>(),
        props(Ctx::Will, v),
    ));
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        will,
        opt(text()),
        opt(bin()),
        props(Ctx::Connect, v),
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive,
                client_id,
                will,
                mut username,
                password,
                properties,
            )| {
                if !v.is_v5() && password.is_some() && username.is_none() {
                    username = Some("u".into());
                }
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will: will.map(|(topic, payload, qos, retain, properties)| Will {
                        topic,
                        payload,
                        qos,
                        retain,
                        properties,
                    }),
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn connack(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let code = if v.is_v5() {
        any::<u8>().prop_map(ReasonCode).boxed()
    } else {
        // The codes that survive the v3 return-code mapping.
        proptest::sample::select(vec![0x00, 0x84, 0x85, 0x88, 0x86, 0x87])
            .prop_map(ReasonCode)
            .boxed()
    };
    (any::<bool>(), code, props(Ctx::ConnAck, v)).prop_map(move |(sp, code, properties)| {
        Packet::ConnAck(ConnAck {
            session_present: sp && code == ReasonCode::SUCCESS && v != V31,
            code,
            properties,
        })
    })
}

fn publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let topic = prop_oneof![4 => topic_name(), 1 => Just(String::new())];
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic,
        packet_id(),
        props(Ctx::Publish, v),
        bin(),
    )
        .prop_map(
            move |(qos, dup, retain, mut topic, id, properties, payload)| {
                if topic.is_empty() && properties.topic_alias.is_none() {
                    topic = "t".into();
                }
                let at_most_once = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && (!at_most_once || v == V31),
                    qos,
                    retain,
                    topic,
                    packet_id: (!at_most_once).then_some(id),
                    properties,
                    payload,
                })
            },
        )
}

fn pub_response(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (0..4u8, packet_id(), reason(v), props(Ctx::PubResponse, v)).prop_map(
        |(kind, packet_id, reason, properties)| {
            let r = PubResponse {
                packet_id,
                reason,
                properties,
            };
            match kind {
                0 => Packet::PubAck(r),
                1 => Packet::PubRec(r),
                2 => Packet::PubRel(r),
                _ => Packet::PubComp(r),
            }
        },
    )
}

fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let rh = prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendIfNew),
        Just(RetainHandling::DoNotSend)
    ];
    let f = (topic_filter(), qos(), any::<bool>(), any::<bool>(), rh).prop_map(
        move |(filter, qos, nl, rap, rh)| {
            let options = if v.is_v5() {
                SubscriptionOptions {
                    qos,
                    no_local: nl && !filter.starts_with("$share/"),
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions::with_qos(qos)
            };
            SubscribeFilter { filter, options }
        },
    );
    (packet_id(), vec(f, 1..4), props(Ctx::Subscribe, v)).prop_map(
        |(packet_id, filters, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        },
    )
}

fn suback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let code = if v.is_v5() {
        any::<u8>().boxed()
    } else {
        proptest::sample::select(vec![0u8, 1, 2, 0x80]).boxed()
    };
    (
        packet_id(),
        vec(code.prop_map(ReasonCode), 1..4),
        props(Ctx::SubAck, v),
    )
        .prop_map(|(packet_id, reasons, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties,
            })
        })
}

fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        vec(topic_filter(), 1..4),
        props(Ctx::Unsubscribe, v),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

fn unsuback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let n = if v.is_v5() { 1..4usize } else { 0..1usize };
    (
        packet_id(),
        vec(any::<u8>().prop_map(ReasonCode), n),
        props(Ctx::UnsubAck, v),
    )
        .prop_map(|(packet_id, reasons, properties)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties,
            })
        })
}

fn disconnect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (reason(v), props(Ctx::Disconnect, v))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
}

fn auth() -> impl Strategy<Value = Packet> {
    (any::<u8>(), props(Ctx::Auth, V5)).prop_map(|(r, properties)| {
        Packet::Auth(Auth {
            reason: ReasonCode(r),
            properties,
        })
    })
}

fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        1 => connect(v),
        1 => connack(v),
        3 => publish(v),
        2 => pub_response(v),
        1 => subscribe(v),
        1 => suback(v),
        1 => unsubscribe(v),
        1 => unsuback(v),
        1 => Just(Packet::PingReq),
        1 => Just(Packet::PingResp),
        1 => disconnect(v),
    ];
    if v.is_v5() {
        prop_oneof![10 => common, 1 => auth()].boxed()
    } else {
        common.boxed()
    }
}

fn versioned_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(|v| packet(v).prop_map(move |p| (v, p)))
}

fn encode_vec(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(p, v, &mut out).expect("valid packets encode");
    out.to_vec()
}

/// Decodes packets until the buffer is exhausted, incomplete, or invalid; must never panic.
fn drain(bytes: &[u8], v: ProtocolVersion, max: usize) -> Vec<Packet> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Ok(Some(p)) = decode(&mut buf, v, max) {
        out.push(p);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn round_trip((v, p) in versioned_packet(), split in any::<prop::sample::Index>()) {
        let bytes = encode_vec(&p, v);
        prop_assert_eq!(encoded_len(&p, v), Ok(bytes.len()));
        // Whole, then arriving in two parts.
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(decode(&mut buf, v, bytes.len()), Ok(Some(p.clone())));
        prop_assert!(buf.is_empty());
        let at = split.index(bytes.len());
        let mut buf = BytesMut::from(&bytes[..at]);
        prop_assert_eq!(decode(&mut buf, v, usize::MAX), Ok(None));
        buf.extend_from_slice(&bytes[at..]);
        prop_assert_eq!(decode(&mut buf, v, usize::MAX), Ok(Some(p)));
    }

    #[test]
    fn a_borrowed_publish_encodes_as_the_owned_one((v, p) in versioned_packet()) {
        if let Packet::Publish(publish) = &p {
            let mut out = BytesMut::new();
            let borrowed = publish.as_publish_ref();
            prop_assert_eq!(
                encode_publish(&borrowed, v, &mut out).map(|()| out.len()),
                encoded_publish_len(&borrowed, v)
            );
            prop_assert_eq!(&out[..], &encode_vec(&p, v)[..]);
        }
    }

    #[test]
    fn glued_packets_come_out_in_order(
        (v, ps) in version().prop_flat_map(|v| vec(packet(v), 1..5).prop_map(move |ps| (v, ps)))
    ) {
        let mut bytes = Vec::new();
        for p in &ps {
            bytes.extend(encode_vec(p, v));
        }
        let mut buf = BytesMut::from(&bytes[..]);
        for p in ps {
            prop_assert_eq!(decode(&mut buf, v, usize::MAX), Ok(Some(p)));
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        v in version(),
        bytes in vec(any::<u8>(), 0..300),
        max in prop_oneof![0usize..16, Just(usize::MAX)],
    ) {
        drain(&bytes, v, max);
        let _ = decode_connect_version(&bytes);
    }

    #[test]
    fn plausible_headers_never_panic(
        v in version(),
        first in any::<u8>(),
        body in vec(any::<u8>(), 0..120),
    ) {
        // A correct remaining length makes the body parsers, not the framing, see the bytes.
        let mut bytes = vec![first, body.len() as u8];
        bytes.extend(&body);
        drain(&bytes, v, usize::MAX);
    }

    #[test]
    fn mutated_packets_never_panic_and_reencode_stably(
        (v, p) in versioned_packet(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        max in prop_oneof![0usize..32, Just(usize::MAX)],
    ) {
        let mut bytes = encode_vec(&p, v);
        for (i, byte) in edits {
            let at = i.index(bytes.len());
            bytes[at] = byte;
        }
        for decoded in drain(&bytes, v, max) {
            // Whatever is accepted re-encodes to bytes that decode to the same packet.
            let version = match &decoded {
                Packet::Connect(c) => c.protocol,
                _ => v,
            };
            let again = encode_vec(&decoded, version);
            let mut buf = BytesMut::from(&again[..]);
            prop_assert_eq!(decode(&mut buf, version, usize::MAX), Ok(Some(decoded)));
        }
    }
}
