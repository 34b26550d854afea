//! MQTT 5.0 section 3.3: PUBLISH properties, topic aliases, Receive Maximum, Maximum Packet
//! Size, message expiry, PUBACK reason codes.

use bytes::Bytes;
use conformance::{broker, v5};
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;

#[tokio::test]
async fn properties_pass_through() {
    let b = broker().await;
    let mut sub = v5::connect(&b, "sub").await;
    sub.client
        .subscribe("props", QoS::AtLeastOnce)
        .await
        .unwrap();
    sub.next("SUBACK", |p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await;
    let publ = v5::connect(&b, "pub").await;
    let props = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "v2".into())],
        content_type: Some("text/plain".into()),
        ..PublishProperties::default()
    };
    publ.client
        .publish_with_properties("props", QoS::AtLeastOnce, false, "hi", props)
        .await
        .unwrap();
    let p = sub.publish().await;
    let got = p.properties.expect("properties");
    assert_eq!(got.payload_format_indicator, Some(1));
    assert_eq!(got.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"\x00\x01corr"[..]));
    // [MQTT-3.3.2-17] user properties in order, duplicates kept.
    assert_eq!(
        got.user_properties,
        vec![("k".into(), "v".into()), ("k".into(), "v2".into())]
    );
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    let left = got.message_expiry_interval.expect("expiry forwarded");
    assert!(
        (3590..=3600).contains(&left),
        "[MQTT-3.3.2-6] decremented: {left}"
    );
}

#[tokio::test]
async fn puback_reports_no_matching_subscribers() {
    let b = broker().await;
    let mut publ = v5::connect(&b, "lonely").await;
    publ.client
        .publish("nobody/listens", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    let ack = publ
        .next("PUBACK", |p| match p {
            Packet::PubAck(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!(
        ack.reason,
        rumqttc::v5::mqttbytes::v5::PubAckReason::NoMatchingSubscribers
    );
}

#[tokio::test]
async fn client_topic_alias_is_resolved() {
    let b = broker().await;
    let mut sub = v5::connect(&b, "sub").await;
    sub.client
        .subscribe("alias/t", QoS::AtMostOnce)
        .await
        .unwrap();
    sub.next("SUBACK", |p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await;
    let publ = v5::connect(&b, "pub").await;
    let set = PublishProperties {
        topic_alias: Some(1),
        ..PublishProperties::default()
    };
    publ.client
        .publish_with_properties("alias/t", QoS::AtLeastOnce, false, "1", set.clone())
        .await
        .unwrap();
    publ.client
        .publish_with_properties("", QoS::AtLeastOnce, false, "2", set)
        .await
        .unwrap();
    for expected in ["1", "2"] {
        let p = sub.publish().await;
        assert_eq!(&p.topic[..], b"alias/t");
        assert_eq!(&p.payload[..], expected.as_bytes());
    }
}

#[tokio::test]
async fn message_larger_than_client_maximum_is_not_sent() {
    let b = broker().await;
    let mut o = v5::options(&b, "small");
    o.set_max_packet_size(Some(128));
    let mut sub = v5::connect_with(o).await;
    sub.client.subscribe("size", QoS::AtMostOnce).await.unwrap();
    sub.next("SUBACK", |p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await;
    let publ = v5::connect(&b, "pub").await;
    publ.client
        .publish("size", QoS::AtMostOnce, false, vec![b'x'; 500])
        .await
        .unwrap();
    publ.client
        .publish("size", QoS::AtMostOnce, false, "small")
        .await
        .unwrap();
    // [MQTT-3.1.2-25] the large one is skipped, the small one arrives.
    assert_eq!(&sub.publish().await.payload[..], b"small");
}

#[tokio::test]
async fn receive_maximum_limits_unacknowledged_messages() {
    let b = broker().await;
    let mut o = v5::options(&b, "slow");
    o.set_receive_maximum(Some(1));
    o.set_manual_acks(true);
    let mut sub = v5::connect_with(o).await;
    sub.client.subscribe("rm", QoS::AtLeastOnce).await.unwrap();
    sub.next("SUBACK", |p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await;
    let publ = v5::connect(&b, "pub").await;
    publ.client
        .publish("rm", QoS::AtLeastOnce, false, "1")
        .await
        .unwrap();
    publ.client
        .publish("rm", QoS::AtLeastOnce, false, "2")
        .await
        .unwrap();
    let first = sub.publish().await;
    assert_eq!(&first.payload[..], b"1");
    // [MQTT-3.3.4-9] no second QoS 1 message while the first is unacknowledged.
    sub.no_publish().await;
    sub.client.ack(&first).await.unwrap();
    assert_eq!(&sub.publish().await.payload[..], b"2");
}

#[tokio::test]
async fn server_assigns_topic_aliases_up_to_client_maximum() {
    let b = broker().await;
    let mut raw = conformance::RawClient::connect(&b).await;
    // v5 CONNECT with Topic Alias Maximum (0x22) = 2.
    let mut body = vec![
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x1e, 0x03, 0x22, 0x00, 0x02,
    ];
    body.extend_from_slice(&[0x00, 0x02, b't', b'a']);
    raw.send(&conformance::frame(0x10, &body)).await;
    raw.read_packet().await.expect("CONNACK");
    // SUBSCRIBE id 1, no properties, "ta/#" QoS 0.
    let sub = [0x00, 0x01, 0x00, 0x00, 0x04, b't', b'a', b'/', b'#', 0x00];
    raw.send(&conformance::frame(0x82, &sub)).await;
    assert_eq!(raw.read_packet().await.expect("SUBACK").0, 0x90);
    let publ = v5::connect(&b, "pub").await;
    for _ in 0..2 {
        publ.client
            .publish("ta/one", QoS::AtMostOnce, false, "x")
            .await
            .unwrap();
    }
    let (h1, first) = raw.read_packet().await.expect("first PUBLISH");
    assert_eq!(h1 & 0xf0, 0x30);
    // topic "ta/one", then properties containing Topic Alias (0x23) = 1.
    assert_eq!(
        &first[..8],
        &[0x00, 0x06, b't', b'a', b'/', b'o', b'n', b'e']
    );
    assert_eq!(&first[8..12], &[0x03, 0x23, 0x00, 0x01]);
    let (_, second) = raw.read_packet().await.expect("second PUBLISH");
    // The second time: empty topic and the alias (MQTT 5.0 section 3.3.2.3.4).
    assert_eq!(&second[..6], &[0x00, 0x00, 0x03, 0x23, 0x00, 0x01]);
}
