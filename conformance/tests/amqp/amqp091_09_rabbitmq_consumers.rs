//! RabbitMQ's consumer extensions: direct reply-to, channel-wide prefetch (basic.qos
//! global=true), the delivery acknowledgement timeout, and consumer priorities (`x-priority`).

use std::time::Duration;

use conformance::{amqp, broker};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Consumer};
use tokio::sync::mpsc;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

fn no_ack() -> BasicConsumeOptions {
    BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    }
}

/// The error a consumer of a channel sees when the broker closes that channel.
async fn channel_error(cons: &mut Consumer) -> String {
    let next = tokio::time::timeout(conformance::WAIT, cons.next())
        .await
        .expect("channel error in time");
    match next {
        Some(Err(e)) => e.to_string(),
        other => panic!(
            "expected the channel error, got {:?}",
            other.map(|r| r.map(|d| d.data))
        ),
    }
}

#[tokio::test]
async fn direct_reply_to_rpc_round_trip() {
    let b = broker().await;
    let (_server_conn, server) = amqp::channel(&b).await;
    amqp::queue(&server, "rpc").await;
    let mut requests = amqp::consume(&server, "rpc").await;

    let (_client_conn, client) = amqp::channel(&b).await;
    let ok = client
        .queue_declare(
            REPLY_TO,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("passive declare of the pseudo-queue succeeds");
    assert_eq!(ok.name().as_str(), REPLY_TO);
    let mut replies = client
        .basic_consume(REPLY_TO, "", no_ack(), FieldTable::default())
        .await
        .expect("reply consumer starts");
    client
        .basic_publish(
            "",
            "rpc",
            BasicPublishOptions::default(),
            b"ping",
            BasicProperties::default()
                .with_reply_to(REPLY_TO.into())
                .with_correlation_id("1".into()),
        )
        .await
        .unwrap();

    let request = amqp::next(&mut requests).await;
    let reply_to = request
        .properties
        .reply_to()
        .clone()
        .expect("reply_to kept")
        .to_string();
    assert!(
        reply_to.starts_with("amq.rabbitmq.reply-to.") && reply_to.len() > REPLY_TO.len() + 1,
        "reply_to rewritten to an address: {reply_to}"
    );
    server
        .basic_publish(
            "",
            &reply_to,
            BasicPublishOptions::default(),
            b"pong",
            BasicProperties::default().with_correlation_id("1".into()),
        )
        .await
        .unwrap();
    request.ack(BasicAckOptions::default()).await.unwrap();

    let reply = amqp::next(&mut replies).await;
    assert_eq!(reply.data, b"pong");
    assert_eq!(reply.routing_key.as_str(), reply_to);
    assert_eq!(
        reply
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("1")
    );
    amqp::nothing(&mut replies).await;
}

#[tokio::test]
async fn reply_consumer_in_ack_mode_is_406() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let e = ch
        .basic_consume(
            REPLY_TO,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("406") || e.contains("reply consumer cannot acknowledge"),
        "{e}"
    );
}

#[tokio::test]
async fn request_without_reply_consumer_is_406() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "rpc-406").await;
    let mut watch = amqp::consume(&ch, "rpc-406").await;
    ch.basic_publish(
        "",
        "rpc-406",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default().with_reply_to(REPLY_TO.into()),
    )
    .await
    .unwrap();
    let e = channel_error(&mut watch).await;
    assert!(
        e.contains("406") || e.contains("fast reply consumer does not exist"),
        "{e}"
    );
}

#[tokio::test]
async fn reply_to_a_gone_consumer_is_dropped_and_its_address_undeclarable() {
    let b = broker().await;
    let (_c1, client) = amqp::channel(&b).await;
    amqp::queue(&client, "rpc-gone").await;
    let replies = client
        .basic_consume(REPLY_TO, "r", no_ack(), FieldTable::default())
        .await
        .unwrap();
    let mut requests = amqp::consume(&client, "rpc-gone").await;
    client
        .basic_publish(
            "",
            "rpc-gone",
            BasicPublishOptions::default(),
            b"q",
            BasicProperties::default().with_reply_to(REPLY_TO.into()),
        )
        .await
        .unwrap();
    let address = amqp::next(&mut requests)
        .await
        .properties
        .reply_to()
        .clone()
        .unwrap()
        .to_string();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let (_c2, other) = amqp::channel(&b).await;
    other
        .queue_declare(&address, passive, FieldTable::default())
        .await
        .expect("a live reply address can be declared passively");
    drop(replies);
    client.basic_cancel("r", Default::default()).await.unwrap();
    let e = other
        .queue_declare(&address, passive, FieldTable::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("404") || e.contains("NOT_FOUND"), "{e}");
}

/// Forwards a consumer's deliveries into `tx`, tagged with `which`.
fn forward(
    mut cons: Consumer,
    which: u8,
    tx: mpsc::UnboundedSender<(u8, lapin::message::Delivery)>,
) {
    tokio::spawn(async move {
        while let Some(Ok(d)) = cons.next().await {
            if tx.send((which, d)).is_err() {
                return;
            }
        }
    });
}

async fn quiet(rx: &mut mpsc::UnboundedReceiver<(u8, lapin::message::Delivery)>) {
    if let Ok(Some((which, d))) = tokio::time::timeout(conformance::QUIET, rx.recv()).await {
        panic!("unexpected delivery to consumer {which}: {:?}", d.data);
    }
}

#[tokio::test]
async fn global_prefetch_is_shared_by_the_channels_consumers() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    for q in ["g1", "g2"] {
        amqp::queue(&ch, q).await;
        for i in 0..3u8 {
            ch.basic_publish("", q, Default::default(), &[i], Default::default())
                .await
                .unwrap();
        }
    }
    ch.basic_qos(2, BasicQosOptions { global: true })
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    forward(amqp::consume(&ch, "g1").await, 1, tx.clone());
    forward(amqp::consume(&ch, "g2").await, 2, tx);
    let first = conformance::recv(&mut rx, "first delivery").await.1;
    let _second = conformance::recv(&mut rx, "second delivery").await;
    quiet(&mut rx).await;
    first.ack(BasicAckOptions::default()).await.unwrap();
    let _third = conformance::recv(&mut rx, "delivery after an ack").await;
    quiet(&mut rx).await;
}

#[tokio::test]
async fn per_consumer_and_global_prefetch_both_apply() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "both").await;
    for i in 0..5u8 {
        ch.basic_publish("", "both", Default::default(), &[i], Default::default())
            .await
            .unwrap();
    }
    ch.basic_qos(3, BasicQosOptions { global: true })
        .await
        .unwrap();
    ch.basic_qos(1, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut cons = amqp::consume(&ch, "both").await;
    let first = amqp::next(&mut cons).await;
    amqp::nothing(&mut cons).await;
    first.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(amqp::next(&mut cons).await.data, [1]);
}

#[tokio::test]
async fn unacked_delivery_times_out_closes_the_channel_and_is_requeued() {
    let b = conformance::broker_with(|c| c.amqp.consumer_timeout_ms = 300).await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "slow").await;
    ch.basic_publish("", "slow", Default::default(), b"m", Default::default())
        .await
        .unwrap();
    let mut cons = amqp::consume(&ch, "slow").await;
    let d = amqp::next(&mut cons).await;
    assert!(!d.redelivered);
    let e = channel_error(&mut cons).await;
    assert!(
        e.contains("406") || e.contains("delivery acknowledgement on channel"),
        "{e}"
    );
    let (_c2, other) = amqp::channel(&b).await;
    let mut again = amqp::consume(&other, "slow").await;
    let d = amqp::next(&mut again).await;
    assert!(d.redelivered, "the timed-out delivery was requeued");
    d.ack(BasicAckOptions::default()).await.unwrap();
}

#[tokio::test]
async fn acked_deliveries_do_not_time_out() {
    let b = conformance::broker_with(|c| c.amqp.consumer_timeout_ms = 200).await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "fast").await;
    let mut cons = amqp::consume(&ch, "fast").await;
    for round in 0..3u8 {
        ch.basic_publish("", "fast", Default::default(), &[round], Default::default())
            .await
            .unwrap();
        let d = amqp::next(&mut cons).await;
        d.ack(BasicAckOptions::default()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The channel is still open: a declare on it works.
    amqp::queue(&ch, "fast-2").await;
}

fn priority(p: i32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-priority".into(), AMQPValue::LongInt(p));
    args
}

#[tokio::test]
async fn higher_priority_consumers_are_served_first() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "cprio").await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    // The low-priority consumer registers first, so plain round-robin would pick it first.
    let low = ch
        .basic_consume("cprio", "low", Default::default(), priority(1))
        .await
        .unwrap();
    let high = ch
        .basic_consume("cprio", "high", Default::default(), priority(10))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    forward(low, 1, tx.clone());
    forward(high, 2, tx);
    let publish = |i: u8| {
        let ch = ch.clone();
        async move {
            ch.basic_publish("", "cprio", Default::default(), &[i], Default::default())
                .await
                .unwrap();
        }
    };
    publish(0).await;
    let (who, d0) = conformance::recv(&mut rx, "m0").await;
    assert_eq!(who, 2, "the high-priority consumer gets m0");
    quiet(&mut rx).await;
    // The high-priority consumer is blocked (prefetch 1): the low one gets the next.
    publish(1).await;
    let (who, d1) = conformance::recv(&mut rx, "m1").await;
    assert_eq!(
        who, 1,
        "the low-priority consumer gets m1 while the high one is blocked"
    );
    d0.ack(BasicAckOptions::default()).await.unwrap();
    d1.ack(BasicAckOptions::default()).await.unwrap();
    // Both have credit again (the acks reach the queue before the publish: its actor serves
    // acks first): the high one wins.
    publish(2).await;
    let (who, _) = conformance::recv(&mut rx, "m2").await;
    assert_eq!(who, 2, "the high-priority consumer gets m2");
}
