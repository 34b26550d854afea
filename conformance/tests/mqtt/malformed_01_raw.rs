//! Bad input (MQTT 3.1.1 section 4.8 / MQTT 5.0 section 4.13): malformed packets close the
//! connection (v5 first sends DISCONNECT 0x81 / 0x82 / 0x95) and never disturb other clients.

use conformance::{broker, broker_with, frame, raw_connect_v311, raw_connect_v5, v4, RawClient};
use rumqttc::QoS;

async fn connected_v311(b: &ferromq::RunningBroker, id: &str) -> RawClient {
    let mut raw = RawClient::connect(b).await;
    raw.send(&raw_connect_v311(id, 30)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
    raw
}

async fn connected_v5(b: &ferromq::RunningBroker, id: &str) -> RawClient {
    let mut raw = RawClient::connect(b).await;
    raw.send(&raw_connect_v5(id, 30)).await;
    assert_eq!(raw.read_packet().await.expect("CONNACK").0, 0x20);
    raw
}

async fn v5_disconnect_reason(b: &ferromq::RunningBroker, bad: &[u8]) -> u8 {
    let mut raw = connected_v5(b, "bad").await;
    raw.send(bad).await;
    let seen = raw.expect_close().await;
    assert_eq!(
        seen.len(),
        1,
        "exactly one DISCONNECT before close: {seen:02x?}"
    );
    assert_eq!(seen[0].0, 0xe0);
    seen[0].1[0]
}

#[tokio::test]
async fn v3_malformed_packets_close_the_connection() {
    let b = broker().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved PUBREL flags", vec![0x60, 0x02, 0x00, 0x01]),
        (
            "remaining length of 5 bytes",
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        ("QoS 3", frame(0x36, &[0x00, 0x01, b'a', 0x00, 0x01])),
        (
            "wildcard in topic name",
            frame(0x30, &[0x00, 0x03, b'a', b'/', b'#']),
        ),
        ("invalid UTF-8", frame(0x30, &[0x00, 0x02, 0xc3, 0x28])),
        ("U+0000 in topic", frame(0x30, &[0x00, 0x02, b'a', 0x00])),
        ("SUBSCRIBE without filters", frame(0x82, &[0x00, 0x01])),
        ("second CONNECT", raw_connect_v311("again", 30)),
    ];
    for (what, bytes) in cases {
        let mut raw = connected_v311(&b, "bad").await;
        raw.send(&bytes).await;
        assert!(
            raw.expect_close().await.is_empty(),
            "{what}: closed without a reply"
        );
    }
}

#[tokio::test]
async fn first_packet_must_be_connect() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&[0xc0, 0x00]).await;
    assert!(raw.expect_close().await.is_empty(), "[MQTT-3.1.0-1]");
}

#[tokio::test]
async fn v5_malformed_gets_disconnect_0x81() {
    let b = broker().await;
    // Remaining length says 3, the topic length says 5.
    assert_eq!(
        v5_disconnect_reason(&b, &[0x30, 0x03, 0x00, 0x05, b'a']).await,
        0x81
    );
}

#[tokio::test]
async fn v5_protocol_error_gets_disconnect_0x82() {
    let b = broker().await;
    // PUBLISH with property 0x0b (Subscription Identifier) which a client must not send... is
    // not checked by every broker; a duplicate Payload Format Indicator always is.
    let publish = frame(0x30, &[0x00, 0x01, b't', 0x04, 0x01, 0x00, 0x01, 0x00]);
    assert_eq!(v5_disconnect_reason(&b, &publish).await, 0x82);
}

#[tokio::test]
async fn v5_packet_too_large_gets_disconnect_0x95() {
    let b = broker_with(|c| c.mqtt.max_packet_size = 1024).await;
    let mut body = vec![0x00, 0x01, b't', 0x00];
    body.extend_from_slice(&[b'x'; 2000]);
    assert_eq!(v5_disconnect_reason(&b, &frame(0x30, &body)).await, 0x95);
}

#[tokio::test]
async fn bad_client_does_not_disturb_others() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "steady-sub").await;
    sub.subscribe("steady", QoS::AtLeastOnce).await;
    let mut publ = v4::connect(&b, "steady-pub").await;
    for round in 0..5u8 {
        let mut raw = connected_v311(&b, &format!("bad{round}")).await;
        raw.send(&[0x30, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
        assert!(raw.expect_close().await.is_empty());
        publ.publish_acked("steady", QoS::AtLeastOnce, false, &[round])
            .await;
        assert_eq!(&sub.publish().await.payload[..], &[round]);
    }
}
