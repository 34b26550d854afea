//! Queue and exchange lifetimes and limits through a real client: auto-delete queues,
//! alternate exchanges, per-queue TTL with dead-lettering, x-expires, x-max-length drop-head,
//! single active consumer.

use std::time::Duration;

use conformance::{amqp, broker};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, ExchangeKind};

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    }
}

/// Polls a passive declare until the queue is gone (the broker deletes asynchronously).
async fn wait_until_gone(conn: &lapin::Connection, queue: &str) {
    let deadline = tokio::time::Instant::now() + conformance::WAIT;
    loop {
        let ch = conn.create_channel().await.unwrap();
        if ch
            .queue_declare(queue, passive(), FieldTable::default())
            .await
            .is_err()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue {queue} still exists"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn auto_delete_queue_goes_with_its_last_consumer() {
    let b = broker().await;
    let (c, ch) = amqp::channel(&b).await;
    let auto = QueueDeclareOptions {
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare("fleeting", auto, FieldTable::default())
        .await
        .unwrap();
    let cons = amqp::consume(&ch, "fleeting").await;
    ch.basic_cancel(cons.tag().as_str(), BasicCancelOptions::default())
        .await
        .unwrap();
    wait_until_gone(&c, "fleeting").await;
}

#[tokio::test]
async fn unroutable_messages_go_to_the_alternate_exchange() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.exchange_declare(
        "unrouted",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    amqp::queue(&ch, "catch-all").await;
    ch.queue_bind(
        "catch-all",
        "unrouted",
        "",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let ae = args(&[(
        "alternate-exchange",
        AMQPValue::LongString("unrouted".into()),
    )]);
    ch.exchange_declare(
        "main",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        ae,
    )
    .await
    .unwrap();
    let mut cons = amqp::consume(&ch, "catch-all").await;
    ch.basic_publish(
        "main",
        "no-binding",
        Default::default(),
        b"stray",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let d = amqp::next(&mut cons).await;
    assert_eq!(d.data, b"stray");
    assert_eq!(
        d.exchange.as_str(),
        "main",
        "delivered with the exchange it was published to"
    );
}

#[tokio::test]
async fn expired_messages_are_dead_lettered_without_a_consumer() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "expired").await;
    let a = args(&[
        ("x-message-ttl", AMQPValue::LongInt(50)),
        ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
        (
            "x-dead-letter-routing-key",
            AMQPValue::LongString("expired".into()),
        ),
    ]);
    ch.queue_declare("short-lived", QueueDeclareOptions::default(), a)
        .await
        .unwrap();
    ch.basic_publish(
        "",
        "short-lived",
        Default::default(),
        b"late",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let mut cons = amqp::consume(&ch, "expired").await;
    let d = amqp::next(&mut cons).await;
    assert_eq!(d.data, b"late");
    let headers = d.properties.headers().clone().expect("x-death");
    let reason = headers.inner().get("x-first-death-reason").cloned();
    assert_eq!(reason, Some(AMQPValue::LongString("expired".into())));
}

#[tokio::test]
async fn unused_queue_expires() {
    let b = broker().await;
    let (c, ch) = amqp::channel(&b).await;
    let a = args(&[("x-expires", AMQPValue::LongInt(100))]);
    ch.queue_declare("idle", QueueDeclareOptions::default(), a)
        .await
        .unwrap();
    // A declare (passive too) counts as use and restarts the countdown, so look less often
    // than the expiry; nothing else marks the deletion.
    let deadline = tokio::time::Instant::now() + conformance::WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let probe = c.create_channel().await.unwrap();
        if probe
            .queue_declare("idle", passive(), FieldTable::default())
            .await
            .is_err()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "unused queue never expired"
        );
    }
}

#[tokio::test]
async fn max_length_drops_the_oldest() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let a = args(&[("x-max-length", AMQPValue::LongInt(2))]);
    ch.queue_declare("last-two", QueueDeclareOptions::default(), a)
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..5u8 {
        ch.basic_publish(
            "",
            "last-two",
            Default::default(),
            &[i],
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let mut cons = amqp::consume(&ch, "last-two").await;
    assert_eq!(amqp::next(&mut cons).await.data, [3]);
    assert_eq!(amqp::next(&mut cons).await.data, [4]);
    amqp::nothing(&mut cons).await;
}

#[tokio::test]
async fn single_active_consumer_fails_over_in_order() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let a = args(&[("x-single-active-consumer", AMQPValue::Boolean(true))]);
    ch.queue_declare("sac", QueueDeclareOptions::default(), a)
        .await
        .unwrap();
    let mut first = ch
        .basic_consume(
            "sac",
            "first",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut second = ch
        .basic_consume(
            "sac",
            "second",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for i in 0..3u8 {
        ch.basic_publish(
            "",
            "sac",
            Default::default(),
            &[i],
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    for i in 0..3u8 {
        let d = amqp::next(&mut first).await;
        assert_eq!(d.data, [i]);
        d.ack(Default::default()).await.unwrap();
    }
    amqp::nothing(&mut second).await;
    ch.basic_cancel("first", BasicCancelOptions::default())
        .await
        .unwrap();
    ch.basic_publish(
        "",
        "sac",
        Default::default(),
        b"next",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    assert_eq!(amqp::next(&mut second).await.data, b"next");
}
