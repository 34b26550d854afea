//! basic.consume, basic.qos, ack / nack / reject, cancel, and what happens to unacknowledged
//! messages when a channel closes (AMQP 0-9-1 basic class, RabbitMQ semantics).

use conformance::{amqp, broker};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};

async fn fill(ch: &lapin::Channel, queue: &str, n: u8) {
    for i in 0..n {
        ch.basic_publish("", queue, Default::default(), &[i], Default::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "pf").await;
    ch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    fill(&ch, "pf", 3).await;
    let mut cons = amqp::consume(&ch, "pf").await;
    let first = amqp::next(&mut cons).await;
    let second = amqp::next(&mut cons).await;
    amqp::nothing(&mut cons).await;
    first.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(amqp::next(&mut cons).await.data, [2]);
    assert_eq!(second.data, [1]);
}

#[tokio::test]
async fn multiple_ack_settles_every_tag_up_to_it() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "multi").await;
    ch.basic_qos(3, BasicQosOptions::default()).await.unwrap();
    fill(&ch, "multi", 6).await;
    let mut cons = amqp::consume(&ch, "multi").await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(amqp::next(&mut cons).await);
    }
    last.unwrap()
        .ack(BasicAckOptions { multiple: true })
        .await
        .unwrap();
    for i in 3..6u8 {
        assert_eq!(amqp::next(&mut cons).await.data, [i]);
    }
}

#[tokio::test]
async fn nack_with_requeue_redelivers_and_reject_drops() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "nack").await;
    fill(&ch, "nack", 1).await;
    let mut cons = amqp::consume(&ch, "nack").await;
    let d = amqp::next(&mut cons).await;
    assert!(!d.redelivered);
    d.nack(BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    })
    .await
    .unwrap();
    let again = amqp::next(&mut cons).await;
    assert!(again.redelivered, "requeued message is marked redelivered");
    again
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    amqp::nothing(&mut cons).await;
}

#[tokio::test]
async fn consumers_on_one_queue_share_round_robin() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "rr").await;
    let mut a = amqp::consume(&ch, "rr").await;
    let mut z = amqp::consume(&ch, "rr").await;
    fill(&ch, "rr", 4).await;
    let mut got = vec![amqp::next(&mut a).await.data, amqp::next(&mut z).await.data];
    got.push(amqp::next(&mut a).await.data);
    got.push(amqp::next(&mut z).await.data);
    got.sort();
    assert_eq!(got, vec![vec![0], vec![1], vec![2], vec![3]]);
}

#[tokio::test]
async fn unacked_messages_return_when_the_channel_closes() {
    let b = broker().await;
    let c = amqp::connect(&b).await;
    let ch = c.create_channel().await.unwrap();
    amqp::queue(&ch, "back").await;
    fill(&ch, "back", 2).await;
    let mut cons = amqp::consume(&ch, "back").await;
    amqp::next(&mut cons).await;
    amqp::next(&mut cons).await;
    ch.close(200, "bye").await.unwrap();
    let ch2 = c.create_channel().await.unwrap();
    let mut cons2 = amqp::consume(&ch2, "back").await;
    let d = amqp::next(&mut cons2).await;
    assert!(d.redelivered);
    assert_eq!(d.data, [0], "requeued in their original order");
    assert_eq!(amqp::next(&mut cons2).await.data, [1]);
}

#[tokio::test]
async fn cancelled_consumer_gets_nothing_more() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "cancel").await;
    let mut cons = amqp::consume(&ch, "cancel").await;
    ch.basic_cancel(cons.tag().as_str(), BasicCancelOptions::default())
        .await
        .unwrap();
    fill(&ch, "cancel", 1).await;
    // The message waits in the queue for the next consumer.
    let mut other = amqp::consume(&ch, "cancel").await;
    assert_eq!(amqp::next(&mut other).await.data, [0]);
    amqp::nothing(&mut cons).await;
}

#[tokio::test]
async fn ack_of_unknown_tag_is_406() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "watch").await;
    // lapin hands the channel's close reason to its consumers: a consumer observes the error.
    let mut cons = amqp::consume(&ch, "watch").await;
    ch.basic_ack(42, BasicAckOptions::default()).await.unwrap();
    let next = tokio::time::timeout(conformance::WAIT, futures_lite::StreamExt::next(&mut cons))
        .await
        .expect("channel error in time");
    let e = match next {
        Some(Err(e)) => e.to_string(),
        other => panic!(
            "expected the channel error, got {:?}",
            other.map(|r| r.map(|d| d.data))
        ),
    };
    assert!(
        e.contains("406") || e.contains("PRECONDITION_FAILED"),
        "{e}"
    );
}
