//! MQTT sessions and shared-subscription groups are queues AMQP clients can see and use:
//! `mqtt-subscription-<clientid>qos1` (RabbitMQ's MQTT plugin name) for a persistent session or
//! one with a QoS 1/2 subscription, `mqtt-shared-<group>-<filter>` for a `$share` group.

use conformance::{amqp, broker, v4, v5};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::Channel;
use rumqttc::QoS;

/// Passive `queue.declare`: the message count, or `None` if the queue does not exist (the
/// 404 closes `ch`).
async fn message_count(ch: &Channel, queue: &str) -> Option<u32> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match ch
        .queue_declare(queue, passive, FieldTable::default())
        .await
    {
        Ok(q) => Some(q.message_count()),
        Err(lapin::Error::ProtocolError(e)) if e.get_id() == 404 => None,
        Err(e) => panic!("passive declare of {queue}: {e}"),
    }
}

#[tokio::test]
async fn persistent_session_queue_holds_offline_messages_for_amqp_to_see() {
    let b = broker().await;
    let mut o = v4::options(&b, "dev-1");
    o.set_clean_session(false);
    let mut dev = v4::connect_with(o.clone()).await;
    dev.subscribe("t/+", QoS::AtLeastOnce).await;
    dev.client.disconnect().await.unwrap();
    dev.disconnected().await;
    let mut publ = v4::connect(&b, "pub").await;
    for body in [b"m0", b"m1", b"m2"] {
        publ.publish_acked("t/a", QoS::AtLeastOnce, false, body)
            .await;
    }
    let (_c, ch) = amqp::channel(&b).await;
    assert_eq!(
        message_count(&ch, "mqtt-subscription-dev-1qos1").await,
        Some(3)
    );
    // An AMQP client may take from it, as from any queue.
    let got = ch
        .basic_get(
            "mqtt-subscription-dev-1qos1",
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(got.delivery.data, b"m0");
    assert_eq!(got.delivery.routing_key.as_str(), "t.a");
    // The session resumes with what is left, in order.
    let mut back = v4::connect_with(o).await;
    assert!(back.session_present);
    assert_eq!(&back.publish().await.payload[..], b"m1");
    assert_eq!(&back.publish().await.payload[..], b"m2");
    back.no_publish().await;
}

#[tokio::test]
async fn clean_session_queue_exists_with_a_qos1_subscription_and_goes_with_the_session() {
    let b = broker().await;
    let mut zero = v4::connect(&b, "only-qos0").await;
    zero.subscribe("z", QoS::AtMostOnce).await;
    let mut one = v4::connect(&b, "has-qos1").await;
    one.subscribe("z", QoS::AtLeastOnce).await;
    let (conn, ch) = amqp::channel(&b).await;
    assert_eq!(
        message_count(&ch, "mqtt-subscription-has-qos1qos1").await,
        Some(0)
    );
    // QoS 0 subscribers of clean sessions are served without a queue (this 404 closes `ch`).
    assert_eq!(
        message_count(&ch, "mqtt-subscription-only-qos0qos1").await,
        None
    );
    one.client.disconnect().await.unwrap();
    one.disconnected().await;
    let deadline = tokio::time::Instant::now() + conformance::WAIT;
    loop {
        let probe = conn.create_channel().await.unwrap();
        if message_count(&probe, "mqtt-subscription-has-qos1qos1")
            .await
            .is_none()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue outlived its clean session"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn amqp_binding_on_a_session_queue_reaches_the_mqtt_client() {
    let b = broker().await;
    let mut dev = v4::connect(&b, "dev-2").await;
    dev.subscribe("own/topic", QoS::AtLeastOnce).await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.queue_bind(
        "mqtt-subscription-dev-2qos1",
        "amq.direct",
        "alerts",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let persistent = lapin::BasicProperties::default().with_delivery_mode(2);
    ch.basic_publish(
        "amq.direct",
        "alerts",
        Default::default(),
        b"fire",
        persistent,
    )
    .await
    .unwrap();
    // It matches none of the client's subscriptions: sent at the message's QoS (capped at 1)
    // under its routing key.
    let p = dev.publish().await;
    assert_eq!(p.topic, "alerts");
    assert_eq!(&p.payload[..], b"fire");
    assert_eq!(p.qos, QoS::AtLeastOnce);
}

#[tokio::test]
async fn overlapping_subscriptions_through_the_session_queue_deliver_once_with_all_ids() {
    use rumqttc::v5::mqttbytes::v5::SubscribeProperties;
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let b = broker().await;
    let mut sub = v5::connect(&b, "ids").await;
    for (filter, qos, id) in [("o/+", Q5::AtMostOnce, 1), ("o/#", Q5::AtLeastOnce, 2)] {
        let props = SubscribeProperties {
            id: Some(id),
            user_properties: vec![],
        };
        sub.client
            .subscribe_with_properties(filter, qos, props)
            .await
            .unwrap();
        sub.next("SUBACK", |p| match p {
            rumqttc::v5::mqttbytes::v5::Packet::SubAck(s) => Some(s),
            _ => None,
        })
        .await;
    }
    let publ = v5::connect(&b, "pub").await;
    publ.client
        .publish("o/x", Q5::AtLeastOnce, false, "x")
        .await
        .unwrap();
    let p = sub.publish().await;
    // [MQTT-3.3.4-2] highest QoS of the matches; [MQTT-3.3.4-4] every identifier in one copy.
    assert_eq!(p.qos, Q5::AtLeastOnce);
    let mut ids = p.properties.expect("properties").subscription_identifiers;
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
    sub.no_publish().await;
}

#[tokio::test]
async fn clean_start_discards_the_session_queue_and_its_messages() {
    let b = broker().await;
    let mut o = v4::options(&b, "dev-3");
    o.set_clean_session(false);
    let mut dev = v4::connect_with(o.clone()).await;
    dev.subscribe("cs", QoS::AtLeastOnce).await;
    dev.client.disconnect().await.unwrap();
    dev.disconnected().await;
    let mut publ = v4::connect(&b, "pub").await;
    publ.publish_acked("cs", QoS::AtLeastOnce, false, b"old")
        .await;
    o.set_clean_session(true);
    let mut fresh = v4::connect_with(o).await;
    assert!(!fresh.session_present);
    fresh.subscribe("cs", QoS::AtLeastOnce).await;
    let (_c, ch) = amqp::channel(&b).await;
    assert_eq!(
        message_count(&ch, "mqtt-subscription-dev-3qos1").await,
        Some(0)
    );
    publ.publish_acked("cs", QoS::AtLeastOnce, false, b"new")
        .await;
    assert_eq!(&fresh.publish().await.payload[..], b"new");
    fresh.no_publish().await;
}

#[tokio::test]
async fn amqp_consumer_competes_in_a_shared_subscription_group() {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let b = broker().await;
    let mut member = v5::connect(&b, "worker-mqtt").await;
    member
        .client
        .subscribe("$share/workers/jobs/+", Q5::AtLeastOnce)
        .await
        .unwrap();
    member
        .next("SUBACK", |p| match p {
            rumqttc::v5::mqttbytes::v5::Packet::SubAck(s) => Some(s),
            _ => None,
        })
        .await;
    let (_c, ch) = amqp::channel(&b).await;
    let mut amqp_worker = amqp::consume(&ch, "mqtt-shared-workers-jobs/+").await;
    let mut publ = v4::connect(&b, "producer").await;
    let sent: Vec<String> = (0..10).map(|i| format!("job{i}")).collect();
    for body in &sent {
        publ.publish_acked("jobs/x", QoS::AtLeastOnce, false, body.as_bytes())
            .await;
    }
    let mut got = Vec::new();
    let (mut by_mqtt, mut by_amqp) = (0, 0);
    while got.len() < sent.len() {
        tokio::select! {
            p = member.publish() => {
                by_mqtt += 1;
                got.push(String::from_utf8(p.payload.to_vec()).unwrap());
            }
            d = amqp::next(&mut amqp_worker) => {
                by_amqp += 1;
                d.ack(Default::default()).await.unwrap();
                got.push(String::from_utf8(d.data).unwrap());
            }
        }
    }
    got.sort();
    let mut want = sent.clone();
    want.sort();
    // Each job went to exactly one member of the group, and both kinds of member got some.
    assert_eq!(got, want);
    assert!(by_mqtt > 0 && by_amqp > 0, "mqtt {by_mqtt}, amqp {by_amqp}");
    member.no_publish().await;
    amqp::nothing(&mut amqp_worker).await;
}
