//! 3.1.1 sections 3.1.2.4 and 4.4: persistent sessions, offline queueing, redelivery.

use conformance::{broker, v4};
use rumqttc::QoS;

#[tokio::test]
async fn offline_messages_are_delivered_on_reconnect() {
    let b = broker().await;
    let mut o = v4::options(&b, "offline");
    o.set_clean_session(false);
    let mut sub = v4::connect_with(o.clone()).await;
    sub.subscribe("q", QoS::AtLeastOnce).await;
    sub.client.disconnect().await.unwrap();
    sub.disconnected().await;
    let mut publ = v4::connect(&b, "pub").await;
    publ.publish_acked("q", QoS::AtLeastOnce, false, b"while away")
        .await;
    publ.client
        .publish("q", QoS::AtMostOnce, false, "qos0 is not kept")
        .await
        .unwrap();
    publ.publish_acked("q", QoS::ExactlyOnce, false, b"second")
        .await;
    publ.publish_acked("q", QoS::AtLeastOnce, false, b"marker")
        .await;
    let mut back = v4::connect_with(o).await;
    assert!(back.session_present);
    assert_eq!(&back.publish().await.payload[..], b"while away");
    assert_eq!(&back.publish().await.payload[..], b"second");
    assert_eq!(&back.publish().await.payload[..], b"marker");
}

#[tokio::test]
async fn unacknowledged_message_is_resent_with_dup() {
    let b = broker().await;
    let mut o = v4::options(&b, "noack");
    o.set_clean_session(false);
    o.set_manual_acks(true);
    let mut sub = v4::connect_with(o.clone()).await;
    sub.subscribe("dup", QoS::AtLeastOnce).await;
    let publ = v4::connect(&b, "pub").await;
    publ.client
        .publish("dup", QoS::AtLeastOnce, false, "again")
        .await
        .unwrap();
    let first = sub.publish().await;
    assert!(!first.dup);
    drop(sub);
    let mut back = v4::connect_with(o).await;
    let again = back.publish().await;
    // [MQTT-4.4.0-1] re-sent with its packet identifier and DUP set [MQTT-3.3.1-1].
    assert_eq!(&again.payload[..], b"again");
    assert!(again.dup);
    assert_eq!(again.pkid, first.pkid);
}

#[tokio::test]
async fn clean_session_discards_old_state() {
    let b = broker().await;
    let mut o = v4::options(&b, "cleaner");
    o.set_clean_session(false);
    let mut sub = v4::connect_with(o.clone()).await;
    sub.subscribe("gone", QoS::AtLeastOnce).await;
    sub.client.disconnect().await.unwrap();
    sub.disconnected().await;
    o.set_clean_session(true);
    let mut clean = v4::connect_with(o).await;
    assert!(!clean.session_present, "[MQTT-3.2.2-1]");
    let mut publ = v4::connect(&b, "pub").await;
    publ.publish_acked("gone", QoS::AtLeastOnce, false, b"x")
        .await;
    clean.no_publish().await;
}

#[tokio::test]
async fn outgoing_packet_ids_start_at_one() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "ids").await;
    sub.subscribe("ids", QoS::AtLeastOnce).await;
    let publ = v4::connect(&b, "pub").await;
    publ.client
        .publish("ids", QoS::AtLeastOnce, false, "a")
        .await
        .unwrap();
    publ.client
        .publish("ids", QoS::AtLeastOnce, false, "b")
        .await
        .unwrap();
    assert_eq!(sub.publish().await.pkid, 1);
    assert_eq!(sub.publish().await.pkid, 2);
}
