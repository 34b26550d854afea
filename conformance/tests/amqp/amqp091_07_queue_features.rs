//! RabbitMQ queue features: exclusive consumers, x-overflow reject-publish with confirm nacks,
//! dead-letter exchanges with x-death, x-max-priority.

use conformance::{amqp, broker};
use lapin::options::{
    BasicConsumeOptions, BasicNackOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::BasicProperties;

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

#[tokio::test]
async fn exclusive_consumer_refuses_others_with_403() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "solo").await;
    let exclusive = BasicConsumeOptions {
        exclusive: true,
        ..BasicConsumeOptions::default()
    };
    // Kept alive: lapin cancels a consumer when its handle is dropped.
    let _first = ch
        .basic_consume("solo", "first", exclusive, FieldTable::default())
        .await
        .unwrap();
    let (_c2, ch2) = amqp::channel(&b).await;
    let e = ch2
        .basic_consume(
            "solo",
            "second",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("403") || e.contains("exclusive use"), "{e}");
}

#[tokio::test]
async fn reject_publish_overflow_nacks_the_confirm() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let a = args(&[
        ("x-max-length", AMQPValue::LongInt(1)),
        ("x-overflow", AMQPValue::LongString("reject-publish".into())),
    ]);
    ch.queue_declare("bounded", QueueDeclareOptions::default(), a)
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let first = ch
        .basic_publish(
            "",
            "bounded",
            Default::default(),
            b"fits",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(first.is_ack(), "{first:?}");
    let second = ch
        .basic_publish(
            "",
            "bounded",
            Default::default(),
            b"refused",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        second.is_nack(),
        "a full reject-publish queue nacks: {second:?}"
    );
}

#[tokio::test]
async fn rejected_message_is_dead_lettered_with_x_death() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "graveyard").await;
    ch.queue_bind(
        "graveyard",
        "amq.direct",
        "dead",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let a = args(&[
        (
            "x-dead-letter-exchange",
            AMQPValue::LongString("amq.direct".into()),
        ),
        (
            "x-dead-letter-routing-key",
            AMQPValue::LongString("dead".into()),
        ),
    ]);
    ch.queue_declare("work", QueueDeclareOptions::default(), a)
        .await
        .unwrap();
    ch.basic_publish(
        "",
        "work",
        Default::default(),
        b"poison",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let mut work = amqp::consume(&ch, "work").await;
    amqp::next(&mut work)
        .await
        .nack(BasicNackOptions {
            requeue: false,
            ..BasicNackOptions::default()
        })
        .await
        .unwrap();
    let mut dead = amqp::consume(&ch, "graveyard").await;
    let d = amqp::next(&mut dead).await;
    assert_eq!(d.data, b"poison");
    let headers = d.properties.headers().clone().expect("x-death headers");
    let inner = headers.inner();
    let Some(AMQPValue::FieldArray(deaths)) = inner.get("x-death") else {
        panic!("no x-death array: {inner:?}");
    };
    let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first() else {
        panic!("empty x-death");
    };
    let reason = first.inner().get("reason").cloned();
    assert_eq!(reason, Some(AMQPValue::LongString("rejected".into())));
    let queue = first.inner().get("queue").cloned();
    assert_eq!(queue, Some(AMQPValue::LongString("work".into())));
}

#[tokio::test]
async fn higher_priority_messages_are_delivered_first() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let a = args(&[("x-max-priority", AMQPValue::ShortShortUInt(10))]);
    ch.queue_declare("prio", QueueDeclareOptions::default(), a)
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for (body, p) in [(&b"low"[..], 1u8), (b"high", 9), (b"mid", 5)] {
        let c = ch
            .basic_publish(
                "",
                "prio",
                Default::default(),
                body,
                BasicProperties::default().with_priority(p),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(c, Confirmation::Ack(None));
    }
    let mut cons = amqp::consume(&ch, "prio").await;
    for expected in [&b"high"[..], b"mid", b"low"] {
        assert_eq!(amqp::next(&mut cons).await.data, expected);
    }
}
