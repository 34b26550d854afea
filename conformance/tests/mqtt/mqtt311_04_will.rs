//! 3.1.1 section 3.1.2.5: will messages.

use conformance::{broker, frame, v4, RawClient};
use rumqttc::QoS;

fn connect_with_will(client_id: &str, keep_alive: u16) -> Vec<u8> {
    // Flags: will flag (0x04), will QoS 1 (0x08), clean session (0x02).
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x0e];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    for field in [client_id.as_bytes(), b"will/topic", b"gone"] {
        body.extend_from_slice(&(field.len() as u16).to_be_bytes());
        body.extend_from_slice(field);
    }
    frame(0x10, &body)
}

#[tokio::test]
async fn will_is_published_when_socket_drops() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "watcher").await;
    sub.subscribe("will/#", QoS::AtLeastOnce).await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&connect_with_will("dying", 30)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
    drop(raw);
    // [MQTT-3.1.2-8]
    let p = sub.publish().await;
    assert_eq!(p.topic, "will/topic");
    assert_eq!(&p.payload[..], b"gone");
    assert_eq!(p.qos, QoS::AtLeastOnce);
}

#[tokio::test]
async fn will_is_published_on_keepalive_timeout() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "watcher").await;
    sub.subscribe("will/#", QoS::AtLeastOnce).await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&connect_with_will("silent", 1)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
    assert_eq!(&sub.publish().await.payload[..], b"gone");
}

#[tokio::test]
async fn will_is_not_published_after_disconnect() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "watcher").await;
    sub.subscribe("will/#", QoS::AtLeastOnce).await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&connect_with_will("polite", 30)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
    raw.send(&[0xe0, 0x00]).await;
    // [MQTT-3.1.2-10] the will is discarded on DISCONNECT; the server closes the socket.
    assert!(raw.expect_close().await.is_empty());
    sub.no_publish().await;
}
