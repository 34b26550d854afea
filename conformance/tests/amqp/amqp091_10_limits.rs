//! Resource alarms with lapin (RabbitMQ's "Blocked Connection Notifications" extension): a
//! memory high watermark of 1 byte forces the memory alarm; the embedding API (what SIGHUP
//! does with a re-read `[limits]`) clears it.

use std::time::{Duration, Instant};

use conformance::{amqp, broker_with};
use ferromq::limits::{LimitsConfig, Watermark};
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::BasicProperties;

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + conformance::WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn memory_alarm_blocks_a_publisher_until_it_clears() {
    let b = broker_with(|c| c.limits.memory_high_watermark = Watermark::Bytes(1)).await;
    assert!(
        b.core().limits.alarms.state().memory,
        "alarm on from the start"
    );
    let (_consumer, cch) = amqp::channel(&b).await;
    amqp::queue(&cch, "lapin-alarm").await;
    let (publisher, pch) = amqp::channel(&b).await;
    assert!(!publisher.status().blocked(), "not a publisher yet");
    pch.basic_publish(
        "",
        "lapin-alarm",
        BasicPublishOptions::default(),
        b"held",
        BasicProperties::default(),
    )
    .await
    .expect("publish written");
    until("connection.blocked", || publisher.status().blocked()).await;
    // The consumer's connection is served; the held publish did not reach the queue.
    tokio::time::sleep(conformance::QUIET).await;
    let got = cch
        .basic_get("lapin-alarm", BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get answered while the publisher is held");
    assert!(got.is_none(), "a held publish was routed");

    b.core().limits.reload(&LimitsConfig::default());
    until("connection.unblocked", || !publisher.status().blocked()).await;
    let deadline = Instant::now() + conformance::WAIT;
    loop {
        let got = cch
            .basic_get("lapin-alarm", BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get");
        if let Some(m) = got {
            assert_eq!(m.delivery.data, b"held");
            break;
        }
        assert!(Instant::now() < deadline, "held publish never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
