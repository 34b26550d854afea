//! MQTT and AMQP meet on `amq.topic`: levels map `/` <-> `.`, `+` <-> `*`, `#` <-> `#`, and a
//! dot inside an MQTT level is a slash inside an AMQP word (lossless).

use conformance::{amqp, broker, v4};
use lapin::options::QueueBindOptions;
use rumqttc::QoS;

#[tokio::test]
async fn mqtt_publish_reaches_amqp_queue_bound_with_star() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "temps").await;
    ch.queue_bind(
        "temps",
        "amq.topic",
        "sensors.*.temp",
        QueueBindOptions::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let mut cons = amqp::consume(&ch, "temps").await;
    let mut publ = v4::connect(&b, "device").await;
    publ.publish_acked("sensors/x/temp", QoS::AtLeastOnce, false, b"21.5")
        .await;
    let d = amqp::next(&mut cons).await;
    assert_eq!(d.data, b"21.5");
    assert_eq!(d.routing_key.as_str(), "sensors.x.temp");
    assert_eq!(d.exchange.as_str(), "amq.topic");
    assert_eq!(
        d.properties.delivery_mode(),
        &Some(2),
        "QoS 1 arrives persistent"
    );
}

#[tokio::test]
async fn amqp_publish_reaches_mqtt_wildcard_subscribers() {
    let b = broker().await;
    let mut plus = v4::connect(&b, "plus").await;
    plus.subscribe("sensors/+/temp", QoS::AtMostOnce).await;
    let mut hash = v4::connect(&b, "hash").await;
    hash.subscribe("sensors/#", QoS::AtMostOnce).await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.basic_publish(
        "amq.topic",
        "sensors.x.temp",
        Default::default(),
        b"19",
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(plus.publish().await.topic, "sensors/x/temp");
    assert_eq!(hash.publish().await.topic, "sensors/x/temp");
}

#[tokio::test]
async fn dotted_mqtt_level_round_trips_as_one_word() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "fw").await;
    // Three words, the middle one containing the literal '/' that stands for MQTT's '.'.
    ch.queue_bind(
        "fw",
        "amq.topic",
        "fw.*.status",
        QueueBindOptions::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let mut cons = amqp::consume(&ch, "fw").await;
    let mut publ = v4::connect(&b, "device").await;
    publ.publish_acked("fw/v1.2/status", QoS::AtLeastOnce, false, b"ok")
        .await;
    let d = amqp::next(&mut cons).await;
    assert_eq!(d.routing_key.as_str(), "fw.v1/2.status");
    // And back: an AMQP publish with that key reaches the MQTT topic with the dot.
    let mut sub = v4::connect(&b, "sub").await;
    sub.subscribe("fw/+/status", QoS::AtMostOnce).await;
    ch.basic_publish(
        "amq.topic",
        "fw.v1/2.status",
        Default::default(),
        b"back",
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(sub.publish().await.topic, "fw/v1.2/status");
}

#[tokio::test]
async fn amqp_keys_mqtt_cannot_carry_are_not_sent_to_mqtt() {
    let b = broker().await;
    let mut all = v4::connect(&b, "all").await;
    all.subscribe("#", QoS::AtLeastOnce).await;
    let (_c, ch) = amqp::channel(&b).await;
    // An empty key and a key with MQTT wildcard characters have no valid MQTT topic name.
    for key in ["", "a.+", "b.#"] {
        ch.basic_publish(
            "amq.topic",
            key,
            Default::default(),
            b"unsendable",
            Default::default(),
        )
        .await
        .unwrap();
    }
    ch.basic_publish(
        "amq.topic",
        "fine",
        Default::default(),
        b"ok",
        Default::default(),
    )
    .await
    .unwrap();
    let p = all.publish().await;
    assert_eq!(
        p.topic, "fine",
        "the client stays connected and gets only valid topics"
    );
    assert_eq!(&p.payload[..], b"ok");
}

#[tokio::test]
async fn dollar_keys_reach_amqp_hash_bindings_but_not_mqtt_hash_subscribers() {
    let b = broker().await;
    let mut mqtt_all = v4::connect(&b, "all").await;
    mqtt_all.subscribe("#", QoS::AtMostOnce).await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "everything").await;
    ch.queue_bind(
        "everything",
        "amq.topic",
        "#",
        QueueBindOptions::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let mut cons = amqp::consume(&ch, "everything").await;
    ch.basic_publish(
        "amq.topic",
        "$internal.x",
        Default::default(),
        b"dollar",
        Default::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(
        "amq.topic",
        "plain.x",
        Default::default(),
        b"plain",
        Default::default(),
    )
    .await
    .unwrap();
    // RabbitMQ's topic exchange has no `$` rule; MQTT's [MQTT-4.7.2-1] applies to MQTT only.
    assert_eq!(amqp::next(&mut cons).await.data, b"dollar");
    assert_eq!(amqp::next(&mut cons).await.data, b"plain");
    assert_eq!(mqtt_all.publish().await.topic, "plain/x");
}
