//! 3.1.1 section 3.3.1.3: retained messages.

use conformance::{broker, v4};
use rumqttc::QoS;

#[tokio::test]
async fn retained_message_is_sent_on_subscribe_with_retain_flag() {
    let b = broker().await;
    let mut publ = v4::connect(&b, "pub").await;
    publ.publish_acked("r/a", QoS::AtLeastOnce, true, b"one")
        .await;
    publ.publish_acked("r/b", QoS::AtLeastOnce, true, b"two")
        .await;
    // Replacing keeps only the latest [MQTT-3.3.1-5].
    publ.publish_acked("r/a", QoS::AtLeastOnce, true, b"three")
        .await;
    let mut sub = v4::connect(&b, "sub").await;
    sub.subscribe("r/+", QoS::AtLeastOnce).await;
    let mut got = [sub.publish().await, sub.publish().await];
    got.sort_by(|x, y| x.topic.cmp(&y.topic));
    assert_eq!(got[0].topic, "r/a");
    assert_eq!(&got[0].payload[..], b"three");
    assert_eq!(got[1].topic, "r/b");
    // [MQTT-3.3.1-8] retained messages sent on subscribe carry RETAIN 1.
    assert!(got.iter().all(|p| p.retain));
    sub.no_publish().await;
}

#[tokio::test]
async fn empty_retained_payload_deletes() {
    let b = broker().await;
    let mut publ = v4::connect(&b, "pub").await;
    publ.publish_acked("del", QoS::AtLeastOnce, true, b"x")
        .await;
    publ.publish_acked("del", QoS::AtLeastOnce, true, b"").await;
    let mut probe = v4::connect(&b, "probe").await;
    probe.subscribe("del", QoS::AtMostOnce).await;
    // [MQTT-3.3.1-10] / [MQTT-3.3.1-11]: deleted, nothing retained to send.
    probe.no_publish().await;
}

#[tokio::test]
async fn retained_qos_is_capped_by_subscription() {
    let b = broker().await;
    let mut publ = v4::connect(&b, "pub").await;
    publ.publish_acked("cap", QoS::ExactlyOnce, true, b"x")
        .await;
    let mut probe = v4::connect(&b, "probe").await;
    probe.subscribe("cap", QoS::AtMostOnce).await;
    let p = probe.publish().await;
    assert!(p.retain);
    assert_eq!(p.qos, QoS::AtMostOnce);
}
