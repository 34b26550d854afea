//! 3.1.1 sections 3.3-3.7 and 4.3, 4.7: PUBLISH at each QoS, wildcards, QoS downgrade.

use conformance::{broker, v4};
use rumqttc::QoS;

#[tokio::test]
async fn qos_0_1_2_round_trip() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "sub").await;
    sub.subscribe("t/#", QoS::ExactlyOnce).await;
    let publ = v4::connect(&b, "pub").await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publ.client
            .publish(format!("t/{i}"), qos, false, vec![i as u8; 3])
            .await
            .unwrap();
        let p = sub.publish().await;
        assert_eq!(p.topic, format!("t/{i}"));
        assert_eq!(p.qos, qos);
        assert_eq!(&p.payload[..], &[i as u8; 3]);
        assert!(!p.retain, "[MQTT-3.3.1-9] forwarded messages have RETAIN 0");
    }
}

#[tokio::test]
async fn qos_is_downgraded_to_subscription_maximum() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "sub").await;
    sub.subscribe("d", QoS::AtLeastOnce).await;
    let publ = v4::connect(&b, "pub").await;
    publ.client
        .publish("d", QoS::ExactlyOnce, false, "x")
        .await
        .unwrap();
    assert_eq!(sub.publish().await.qos, QoS::AtLeastOnce, "[MQTT-3.8.4-6]");
}

#[tokio::test]
async fn wildcards_match_levels() {
    let b = broker().await;
    let mut plus = v4::connect(&b, "plus").await;
    plus.subscribe("sport/+/player1", QoS::AtMostOnce).await;
    let mut hash = v4::connect(&b, "hash").await;
    hash.subscribe("sport/#", QoS::AtMostOnce).await;
    let publ = v4::connect(&b, "pub").await;
    publ.client
        .publish("sport", QoS::AtLeastOnce, false, "a")
        .await
        .unwrap();
    // `sport/#` matches the parent level too [MQTT-4.7.1-2].
    assert_eq!(hash.publish().await.topic, "sport");
    publ.client
        .publish("sport/tennis/player1", QoS::AtLeastOnce, false, "b")
        .await
        .unwrap();
    assert_eq!(plus.publish().await.topic, "sport/tennis/player1");
    assert_eq!(hash.publish().await.topic, "sport/tennis/player1");
    publ.client
        .publish("sport/tennis/player1/ranking", QoS::AtLeastOnce, false, "c")
        .await
        .unwrap();
    assert_eq!(hash.publish().await.topic, "sport/tennis/player1/ranking");
    plus.no_publish().await;
}

#[tokio::test]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let b = broker().await;
    let mut hash = v4::connect(&b, "hash").await;
    hash.subscribe("#", QoS::AtMostOnce).await;
    let mut plus = v4::connect(&b, "plus").await;
    plus.subscribe("+/info", QoS::AtMostOnce).await;
    let mut sys = v4::connect(&b, "sys").await;
    sys.subscribe("$SYS/#", QoS::AtMostOnce).await;
    let publ = v4::connect(&b, "pub").await;
    publ.client
        .publish("$SYS/info", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    assert_eq!(sys.publish().await.topic, "$SYS/info");
    // [MQTT-4.7.2-1]
    hash.no_publish().await;
    plus.no_publish().await;
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_with_highest_qos() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "sub").await;
    sub.subscribe("o/+", QoS::AtMostOnce).await;
    sub.subscribe("o/#", QoS::AtLeastOnce).await;
    let publ = v4::connect(&b, "pub").await;
    publ.client
        .publish("o/x", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    // [MQTT-3.3.5-1] the server delivers using the maximum QoS of the matching subscriptions.
    assert_eq!(sub.publish().await.qos, QoS::AtLeastOnce);
    sub.no_publish().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "sub").await;
    sub.subscribe("u", QoS::AtMostOnce).await;
    sub.client.unsubscribe("u").await.unwrap();
    loop {
        if let Some(rumqttc::Packet::UnsubAck(_)) =
            conformance::recv(&mut sub.events, "UNSUBACK").await
        {
            break;
        }
    }
    let publ = v4::connect(&b, "pub").await;
    publ.client
        .publish("u", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    sub.no_publish().await;
}

#[tokio::test]
async fn messages_keep_their_order() {
    let b = broker().await;
    let mut sub = v4::connect(&b, "sub").await;
    sub.subscribe("ord", QoS::AtLeastOnce).await;
    let publ = v4::connect(&b, "pub").await;
    for i in 0..200u32 {
        publ.client
            .publish("ord", QoS::AtLeastOnce, false, i.to_be_bytes().to_vec())
            .await
            .unwrap();
    }
    for i in 0..200u32 {
        // [MQTT-4.6.0-5] ordered topic
        assert_eq!(&sub.publish().await.payload[..], &i.to_be_bytes());
    }
}
