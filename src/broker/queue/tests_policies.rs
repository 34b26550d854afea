//! Queue policies from RabbitMQ's queue arguments and consume flags: priorities, single active
//! consumer, exclusive consumers, publish outcomes for confirms, and `x-expires`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::tests_dead_letter::RecordingHost;
use super::*;
use crate::broker::message::{AmqpProperties, Message, Origin, Properties};
use crate::store::MemoryStore;

struct ChannelSink(mpsc::UnboundedSender<QueueDelivery>);

impl ConsumerSink for ChannelSink {
    fn deliver(&self, delivery: QueueDelivery) {
        let _ = self.0.send(delivery);
    }
}

fn sink() -> (
    Arc<dyn ConsumerSink>,
    mpsc::UnboundedReceiver<QueueDelivery>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(ChannelSink(tx)), rx)
}

fn queue(limits: QueueLimits) -> QueueHandle {
    spawn("q", limits, Arc::new(MemoryStore::default()))
}

/// A message with AMQP priority `priority` (`None`: an MQTT message, no AMQP properties).
fn message(body: &str, priority: Option<u8>) -> Arc<Message> {
    Arc::new(Message {
        exchange: "x".into(),
        topic: "t".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        qos: 0,
        retain: false,
        expires_at: None,
        properties: Properties {
            amqp: priority.map(|p| {
                Box::new(AmqpProperties {
                    priority: Some(p),
                    ..AmqpProperties::default()
                })
            }),
            ..Properties::default()
        },
        origin: Origin::default(),
    })
}

async fn next(rx: &mut mpsc::UnboundedReceiver<QueueDelivery>) -> QueueDelivery {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivery in time")
        .expect("queue alive")
}

async fn nothing(rx: &mut mpsc::UnboundedReceiver<QueueDelivery>) {
    let r = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
    assert!(r.is_err(), "unexpected delivery");
}

async fn bodies(rx: &mut mpsc::UnboundedReceiver<QueueDelivery>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(String::from_utf8_lossy(&next(rx).await.message.body).into_owned());
    }
    out
}

fn tag(t: &str) -> ConsumerTag {
    ConsumerTag(t.into())
}

#[tokio::test]
async fn higher_priorities_go_first_fifo_within_one_and_over_max_counts_as_max() {
    let q = queue(QueueLimits {
        max_priority: Some(5),
        ..QueueLimits::default()
    });
    let published = [
        ("mqtt", None),
        ("p1-a", Some(1)),
        ("p9", Some(9)),
        ("p5", Some(5)),
        ("p1-b", Some(1)),
        ("p0", Some(0)),
        ("p200", Some(200)),
    ];
    for (b, p) in published {
        q.publish(message(b, p));
    }
    let (s, mut rx) = sink();
    q.consume(tag("c"), s, 0, true);
    // 9 and 200 count as 5 and keep their arrival order with the real 5; MQTT's none is 0.
    assert_eq!(
        bodies(&mut rx, 7).await,
        ["p9", "p5", "p200", "p1-a", "p1-b", "mqtt", "p0"]
    );
}

#[tokio::test]
async fn priorities_apply_to_get_requeue_and_drop_head() {
    let q = queue(QueueLimits {
        max_priority: Some(2),
        max_length: Some(2),
        ..QueueLimits::default()
    });
    q.publish(message("low", Some(0)));
    q.publish(message("high", Some(2)));
    let (got, left) = q.get(tag("g"), false).await.expect("ready");
    assert_eq!(got.message.body, "high");
    assert_eq!(left, 1);
    // Requeued to the head of its own level: ahead of the low one again.
    q.reject(got.id, true);
    // Over x-max-length the head goes: the next to deliver, i.e. the highest priority.
    q.publish(message("mid", Some(1)));
    assert_eq!(q.counts().await.ready, 2);
    let (s, mut rx) = sink();
    q.consume(tag("c"), s, 0, true);
    assert_eq!(bodies(&mut rx, 2).await, ["mid", "low"]);
    // Without x-max-priority, priorities are ignored.
    let plain = queue(QueueLimits::default());
    plain.publish(message("a", Some(0)));
    plain.publish(message("b", Some(9)));
    let (s, mut rx) = sink();
    plain.consume(tag("c"), s, 0, true);
    assert_eq!(bodies(&mut rx, 2).await, ["a", "b"]);
}

#[tokio::test]
async fn single_active_consumer_fails_over_in_registration_order() {
    let q = queue(QueueLimits {
        single_active_consumer: true,
        ..QueueLimits::default()
    });
    let (sa, mut a) = sink();
    let (sb, mut b) = sink();
    let (sc, mut c) = sink();
    q.consume(tag("a"), sa, 1, false);
    q.consume(tag("b"), sb, 0, true);
    q.consume(tag("c"), sc, 0, true);
    for i in 0..3 {
        q.publish(message(&i.to_string(), None));
    }
    let first = next(&mut a).await;
    assert_eq!(first.message.body, "0");
    // The active consumer's prefetch is full: the others stay idle all the same.
    nothing(&mut b).await;
    nothing(&mut c).await;
    assert_eq!(q.counts().await.consumers, 3, "all stay registered");
    // It goes away: its unacked message is requeued and the next registered takes over.
    q.cancel(tag("a"), true).await;
    let got = bodies(&mut b, 3).await;
    assert_eq!(got, ["0", "1", "2"]);
    nothing(&mut c).await;
    q.cancel(tag("b"), false).await;
    q.publish(message("3", None));
    assert_eq!(next(&mut c).await.message.body, "3");
}

#[tokio::test]
async fn exclusive_consumers_are_refused_as_rabbitmq_does() {
    let q = queue(QueueLimits::default());
    let (s1, _r1) = sink();
    let (s2, _r2) = sink();
    q.consume_checked(tag("ex"), s1, 0, false, true)
        .await
        .expect("an unused queue takes an exclusive consumer");
    assert_eq!(
        q.consume_checked(tag("other"), s2.clone(), 0, false, false)
            .await,
        Err(ConsumeError::ExclusiveConsumerExists)
    );
    assert_eq!(
        q.consume_checked(tag("other"), s2.clone(), 0, false, true)
            .await,
        Err(ConsumeError::ExclusiveConsumerExists)
    );
    assert_eq!(
        q.counts().await.consumers,
        1,
        "refused consumers are not registered"
    );
    q.cancel(tag("ex"), true).await;
    q.consume_checked(tag("shared"), s2.clone(), 0, false, false)
        .await
        .expect("free again");
    assert_eq!(
        q.consume_checked(tag("ex2"), s2.clone(), 0, false, true)
            .await,
        Err(ConsumeError::QueueHasConsumers)
    );

    let sac = queue(QueueLimits {
        single_active_consumer: true,
        ..QueueLimits::default()
    });
    assert_eq!(
        sac.consume_checked(tag("ex"), s2.clone(), 0, false, true)
            .await,
        Err(ConsumeError::SingleActiveConsumer)
    );

    let gone = queue(QueueLimits::default());
    let _ = gone.delete().await;
    assert_eq!(
        gone.consume_checked(tag("c"), s2, 0, false, false).await,
        Err(ConsumeError::QueueDeleted)
    );
}

#[tokio::test]
async fn refused_publishes_are_reported_to_the_publisher() {
    let q = queue(QueueLimits {
        max_length: Some(2),
        overflow: Overflow::RejectPublish,
        ..QueueLimits::default()
    });
    assert!(q.refuses_when_full());
    let mut verdicts = Vec::new();
    for i in 0..3 {
        match q.publish_with_outcome(message(&i.to_string(), None)) {
            Outcome::Decided(v) => verdicts.push(v),
            Outcome::Queued(_) | Outcome::Waiting { .. } => {
                panic!("reject-publish queues with room decide")
            }
        }
    }
    let mut got = Vec::new();
    for v in verdicts {
        got.push(v.await);
    }
    use Admission::{Accepted, Refused};
    assert_eq!(got, [Accepted, Accepted, Refused]);
    assert_eq!(q.stats().dropped(), 1);

    // Room again once a consumer takes messages: a ready consumer makes room within one batch.
    let (s, mut rx) = sink();
    q.consume(tag("c"), s, 0, true);
    assert_eq!(bodies(&mut rx, 2).await, ["0", "1"]);
    let Outcome::Decided(v) = q.publish_with_outcome(message("3", None)) else {
        panic!("decides");
    };
    assert_eq!(v.await, Accepted);

    // Queues that never refuse pay nothing extra.
    let plain = queue(QueueLimits {
        max_length: Some(1),
        ..QueueLimits::default()
    });
    assert!(!plain.refuses_when_full());
    assert!(matches!(
        plain.publish_with_outcome(message("x", None)),
        Outcome::Queued(None)
    ));
}

#[tokio::test]
async fn x_expires_stops_an_unused_queue_only() {
    let expires = QueueLimits {
        expires: Some(Duration::from_millis(80)),
        ..QueueLimits::default()
    };
    let host = Arc::new(RecordingHost::default());
    let store = || Arc::new(MemoryStore::default());
    let idle = spawn_hosted("idle", expires.clone(), store(), host.clone());
    let consumed = spawn_hosted("consumed", expires.clone(), store(), host.clone());
    let renewed = spawn_hosted("renewed", expires.clone(), store(), host.clone());
    let (s, _rx) = sink();
    consumed.consume(tag("c"), s, 0, true);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        renewed.mark_used();
        renewed.get(tag("g"), true).await;
    }
    assert!(idle.is_closed(), "unused for its x-expires");
    assert_eq!(*host.expired.lock(), ["idle"]);
    assert!(!consumed.is_closed(), "a consumer keeps it");
    assert!(
        !renewed.is_closed(),
        "redeclarations and gets renew the lease"
    );

    // The countdown starts again when the last consumer leaves.
    consumed.cancel(tag("c"), true).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while !consumed.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("expired after its last consumer left");
    // ("renewed" may expire too by now: nobody renews it any more.)
    assert!(host.expired.lock().iter().any(|q| q == "consumed"));
}
