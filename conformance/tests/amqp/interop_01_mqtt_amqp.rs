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

#[tokio::test]
async fn mqtt5_properties_arrive_as_amqp_properties() {
    use rumqttc::v5::mqttbytes::v5::PublishProperties;
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "props").await;
    ch.queue_bind(
        "props",
        "amq.topic",
        "req.#",
        QueueBindOptions::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let mut cons = amqp::consume(&ch, "props").await;
    let device = conformance::v5::connect(&b, "device5").await;
    let props = PublishProperties {
        content_type: Some("application/json".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"corr-7")),
        response_topic: Some("replies/v1.0".into()),
        message_expiry_interval: Some(60),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
        ..PublishProperties::default()
    };
    device
        .client
        .publish_with_properties("req/x", QoS5::AtLeastOnce, false, "{}", props)
        .await
        .unwrap();
    let d = amqp::next(&mut cons).await;
    let p = &d.properties;
    assert_eq!(
        p.content_type().as_ref().map(|s| s.as_str()),
        Some("application/json")
    );
    assert_eq!(
        p.correlation_id().as_ref().map(|s| s.as_str()),
        Some("corr-7")
    );
    // The response topic in AMQP spelling: levels swap separators.
    assert_eq!(
        p.reply_to().as_ref().map(|s| s.as_str()),
        Some("replies.v1/0")
    );
    let ms: u64 = p.expiration().as_ref().unwrap().as_str().parse().unwrap();
    assert!((59_000..=60_000).contains(&ms), "{ms}");
    let headers = p.headers().as_ref().expect("headers");
    let inner = headers.inner();
    assert_eq!(
        inner.get("x-mqtt-publish-qos"),
        Some(&lapin::types::AMQPValue::ShortShortInt(1))
    );
    assert_eq!(
        inner.get("k"),
        Some(&lapin::types::AMQPValue::LongString("w".into()))
    );
}

#[tokio::test]
async fn amqp_properties_arrive_as_mqtt5_properties() {
    use lapin::types::{AMQPValue, FieldTable};
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    let b = broker().await;
    let mut sub = conformance::v5::connect(&b, "svc5").await;
    sub.client
        .subscribe("rpc/#", QoS5::AtLeastOnce)
        .await
        .unwrap();
    sub.next("SUBACK", |p| {
        matches!(p, rumqttc::v5::mqttbytes::v5::Packet::SubAck(_)).then_some(())
    })
    .await;
    let (_c, ch) = amqp::channel(&b).await;
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    headers.insert("attempt".into(), AMQPValue::LongInt(3));
    headers.insert(
        "nested".into(),
        AMQPValue::FieldTable(FieldTable::default()),
    );
    let props = lapin::BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_correlation_id("c-42".into())
        .with_reply_to("answers.v2/1".into())
        .with_expiration("30000".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    ch.basic_publish("amq.topic", "rpc.call", Default::default(), b"ping", props)
        .await
        .unwrap();
    let p = sub.publish().await;
    assert_eq!(&p.topic[..], b"rpc/call");
    assert_eq!(p.qos, QoS5::AtLeastOnce, "persistent arrives as QoS 1");
    let props = p.properties.expect("properties");
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"c-42"[..]));
    assert_eq!(props.response_topic.as_deref(), Some("answers/v2.1"));
    let left = props.message_expiry_interval.expect("expiry");
    assert!((29..=30).contains(&left), "{left}");
    // Scalar headers become user properties in wire order (lapin writes its table sorted by
    // name); the nested table has no MQTT form.
    assert_eq!(
        props.user_properties,
        vec![
            ("attempt".into(), "3".into()),
            ("tenant".into(), "acme".into())
        ]
    );
}

#[tokio::test]
async fn amqp_publish_with_x_mqtt_retain_is_retained_for_mqtt() {
    use lapin::types::{AMQPValue, FieldTable};
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.confirm_select(Default::default()).await.unwrap();
    let mut retain = FieldTable::default();
    retain.insert("x-mqtt-retain".into(), AMQPValue::Boolean(true));
    let kept = lapin::BasicProperties::default().with_headers(retain);
    for (key, body, props) in [
        ("status.door", &b"open"[..], kept),
        (
            "status.window",
            &b"not retained"[..],
            lapin::BasicProperties::default(),
        ),
    ] {
        ch.basic_publish("amq.topic", key, Default::default(), body, props)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut sub = v4::connect(&b, "late").await;
    sub.subscribe("status/+", QoS::AtLeastOnce).await;
    let p = sub.publish().await;
    assert_eq!(p.topic, "status/door");
    assert_eq!(&p.payload[..], b"open");
    assert!(
        p.retain,
        "[MQTT-3.3.1-8] retained messages are sent with RETAIN 1"
    );
    sub.no_publish().await;
}
