//! Queue actor behaviour: delivery, prefetch, acks, requeue, competing consumers, limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::*;
use crate::broker::message::{Message, Origin, Properties};
use crate::store::{MemoryStore, MessageStore, StoreId};

struct ChannelSink(mpsc::UnboundedSender<QueueDelivery>);

impl ConsumerSink for ChannelSink {
    fn deliver(&self, delivery: QueueDelivery) {
        let _ = self.0.send(delivery);
    }
}

fn memory() -> Arc<dyn MessageStore> {
    Arc::new(MemoryStore::default())
}

/// Records what the queue asks of its store.
#[derive(Default)]
struct RecordingStore {
    live: parking_lot::Mutex<std::collections::HashSet<u64>>,
    next: std::sync::atomic::AtomicU64,
}

impl MessageStore for RecordingStore {
    fn enqueue(
        &self,
        _queue: &str,
        _message: &Arc<Message>,
        _done: Option<crate::store::Durable>,
    ) -> StoreId {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.live.lock().insert(id);
        StoreId(id)
    }

    fn settle(&self, _queue: &str, id: StoreId) {
        assert!(
            self.live.lock().remove(&id.0),
            "settled twice or never stored"
        );
    }
}

fn message(body: &str) -> Arc<Message> {
    Arc::new(Message {
        exchange: "x".into(),
        topic: "t".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        qos: 1,
        retain: false,
        expires_at: None,
        properties: Properties::default(),
        origin: Origin::default(),
    })
}

fn consumer(
    q: &QueueHandle,
    tag: &str,
    prefetch: u32,
    no_ack: bool,
) -> mpsc::UnboundedReceiver<QueueDelivery> {
    let (tx, rx) = mpsc::unbounded_channel();
    q.consume(
        ConsumerTag(tag.into()),
        Arc::new(ChannelSink(tx)),
        prefetch,
        no_ack,
    );
    rx
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

fn body(d: &QueueDelivery) -> &[u8] {
    &d.message.body
}

#[tokio::test]
async fn messages_wait_for_a_consumer_and_arrive_in_order() {
    let q = spawn("q", QueueLimits::default(), memory());
    for b in ["a", "b", "c"] {
        assert!(q.publish(message(b)).is_none());
    }
    let mut rx = consumer(&q, "c1", 0, true);
    for b in ["a", "b", "c"] {
        assert_eq!(body(&next(&mut rx).await), b.as_bytes());
    }
}

#[tokio::test]
async fn prefetch_limits_unacked_and_ack_frees_credit() {
    let q = spawn("q", QueueLimits::default(), memory());
    let mut rx = consumer(&q, "c1", 2, false);
    for b in ["1", "2", "3"] {
        q.publish(message(b));
    }
    let first = next(&mut rx).await;
    next(&mut rx).await;
    nothing(&mut rx).await;
    q.ack(first.id);
    assert_eq!(body(&next(&mut rx).await), b"3");
}

#[tokio::test]
async fn rejected_message_is_requeued_as_redelivered() {
    let q = spawn("q", QueueLimits::default(), memory());
    let mut rx = consumer(&q, "c1", 1, false);
    q.publish(message("x"));
    let d = next(&mut rx).await;
    assert!(!d.redelivered);
    q.reject(d.id, true);
    let again = next(&mut rx).await;
    assert_eq!(body(&again), b"x");
    assert!(again.redelivered);
    q.reject(again.id, false);
    nothing(&mut rx).await;
}

#[tokio::test]
async fn competing_consumers_share_round_robin() {
    let q = spawn("q", QueueLimits::default(), memory());
    let mut a = consumer(&q, "a", 0, true);
    let mut b = consumer(&q, "b", 0, true);
    // Control requests are handled in order: once the purge answers, both consumers exist.
    q.purge().await;
    for i in 0..4 {
        q.publish(message(&i.to_string()));
    }
    let got_a = [next(&mut a).await, next(&mut a).await];
    let got_b = [next(&mut b).await, next(&mut b).await];
    assert_eq!(body(&got_a[0]), b"0");
    assert_eq!(body(&got_b[0]), b"1");
    assert_eq!(body(&got_a[1]), b"2");
    assert_eq!(body(&got_b[1]), b"3");
}

#[tokio::test]
async fn cancelled_consumer_unacked_go_to_the_others() {
    let q = spawn("q", QueueLimits::default(), memory());
    let mut a = consumer(&q, "a", 10, false);
    q.publish(message("m"));
    let d = next(&mut a).await;
    let mut b = consumer(&q, "b", 10, false);
    q.cancel(d.consumer.clone(), true).await;
    let again = next(&mut b).await;
    assert_eq!(body(&again), b"m");
    assert!(again.redelivered);
}

#[tokio::test]
async fn max_length_drops_head_or_rejects() {
    let limits = QueueLimits {
        max_length: Some(2),
        ..QueueLimits::default()
    };
    let q = spawn("drop-head", limits.clone(), memory());
    for b in ["1", "2", "3"] {
        q.publish(message(b));
    }
    let mut rx = consumer(&q, "c", 0, true);
    assert_eq!(body(&next(&mut rx).await), b"2");
    assert_eq!(body(&next(&mut rx).await), b"3");
    assert_eq!(q.stats().dropped(), 1);

    let q = spawn(
        "reject",
        QueueLimits {
            overflow: Overflow::RejectPublish,
            ..limits
        },
        memory(),
    );
    for b in ["1", "2", "3"] {
        q.publish(message(b));
    }
    let mut rx = consumer(&q, "c", 0, true);
    assert_eq!(body(&next(&mut rx).await), b"1");
    assert_eq!(body(&next(&mut rx).await), b"2");
    nothing(&mut rx).await;
}

#[tokio::test]
async fn qos0_without_consumer_is_dropped_but_not_while_a_consumer_is_on_its_way() {
    let limits = QueueLimits {
        drop_qos0_without_consumer: true,
        ..QueueLimits::default()
    };
    let qos0 = |b: &str| {
        let mut m = Message::clone(&message(b));
        m.qos = 0;
        Arc::new(m)
    };
    let q = spawn("mqtt-session", limits, memory());
    q.publish(qos0("nobody"));
    // Let the actor take it in with no consumer: an offline MQTT session drops QoS 0.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The consume request goes out first (the SUBACK follows it); the publish after it is in
    // the inbox too before the actor runs, and the actor takes publishes in before a request.
    let mut rx = consumer(&q, "c", 0, true);
    q.publish(qos0("after the consume"));
    assert_eq!(body(&next(&mut rx).await), b"after the consume");
    nothing(&mut rx).await;
    assert_eq!(q.stats().dropped(), 1);
}

#[tokio::test]
async fn purge_and_stats() {
    let q = spawn("q", QueueLimits::default(), memory());
    for b in ["1", "2"] {
        q.publish(message(b));
    }
    assert_eq!(q.purge().await, 2);
    assert_eq!(q.stats().ready(), 0);
    let _rx = consumer(&q, "c", 0, true);
    // Stats are published after each command the actor handles.
    assert_eq!(q.purge().await, 0);
    assert_eq!(q.stats().consumers(), 1);
}

#[tokio::test]
async fn full_inbox_returns_a_pending_publish() {
    // No runtime turn happens between these sends, so the actor cannot drain the inbox.
    let q = spawn("q", QueueLimits::default(), memory());
    let mut pending = None;
    for i in 0..10_000 {
        if let Some(p) = q.publish(message(&i.to_string())) {
            pending = Some(p);
            break;
        }
    }
    let pending = pending.expect("inbox is bounded");
    tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the wait ends once the actor drains the inbox");
}

#[tokio::test]
async fn persistent_messages_are_stored_until_settled() {
    let store = Arc::new(RecordingStore::default());
    let q = spawn("q", QueueLimits::default(), store.clone());
    for b in ["acked", "rejected", "requeued", "purged"] {
        q.publish(message(b));
    }
    let mut rx = consumer(&q, "c", 3, false);
    let acked = next(&mut rx).await;
    let rejected = next(&mut rx).await;
    let requeued = next(&mut rx).await;
    q.ack(acked.id);
    q.reject(rejected.id, false);
    q.reject(requeued.id, true);
    q.cancel(ConsumerTag("c".into()), true).await;
    // "requeued" and "purged" are ready again, both still stored.
    assert_eq!(store.live.lock().len(), 2);
    assert_eq!(q.purge().await, 2);
    assert!(
        store.live.lock().is_empty(),
        "everything settled in the store"
    );
}

#[tokio::test]
async fn a_queue_not_persisting_keeps_new_messages_in_memory_only() {
    let store = Arc::new(RecordingStore::default());
    let q = spawn("q", QueueLimits::default(), store.clone());
    let mut rx = consumer(&q, "c", 2, false);
    q.set_persisting(false);
    q.publish(message("memory"));
    // The actor reads the switch when the message arrives: wait for it before switching back.
    let first = next(&mut rx).await;
    q.set_persisting(true);
    q.publish(message("stored"));
    let second = next(&mut rx).await;
    assert_eq!(
        (body(&first), body(&second)),
        (&b"memory"[..], &b"stored"[..])
    );
    assert_eq!(store.live.lock().len(), 1, "only the second was written");
    // Acking settles the stored one only (the store asserts nothing is settled unstored).
    q.ack(first.id);
    q.ack(second.id);
    q.cancel(ConsumerTag("c".into()), true).await;
    assert!(store.live.lock().is_empty());
}

#[tokio::test]
async fn get_takes_one_message_with_the_remaining_count() {
    let q = spawn("q", QueueLimits::default(), memory());
    assert!(q.get(ConsumerTag("g".into()), false).await.is_none());
    for b in ["1", "2"] {
        q.publish(message(b));
    }
    let (first, left) = q
        .get(ConsumerTag("g".into()), false)
        .await
        .expect("a message");
    assert_eq!(body(&first), b"1");
    assert_eq!(left, 1);
    // Unacknowledged until rejected: requeued at the head, redelivered.
    q.reject(first.id, true);
    let (again, _) = q
        .get(ConsumerTag("g".into()), true)
        .await
        .expect("requeued");
    assert_eq!(body(&again), b"1");
    assert!(again.redelivered);
}

async fn prioritised(
    q: &QueueHandle,
    tag: &str,
    prefetch: u32,
    priority: i32,
) -> mpsc::UnboundedReceiver<QueueDelivery> {
    let (tx, rx) = mpsc::unbounded_channel();
    let options = ConsumeOptions {
        prefetch,
        priority,
        ..ConsumeOptions::default()
    };
    q.consume_with(ConsumerTag(tag.into()), Arc::new(ChannelSink(tx)), options)
        .await
        .expect("admitted");
    rx
}

#[tokio::test]
async fn highest_priority_consumers_with_credit_take_turns() {
    let q = spawn("q", QueueLimits::default(), memory());
    let mut low = prioritised(&q, "low", 0, -1).await;
    let mut a = prioritised(&q, "a", 2, 5).await;
    let mut b = prioritised(&q, "b", 2, 5).await;
    for i in 0..5 {
        q.publish(message(&i.to_string()));
    }
    // a and b alternate until both windows are full; only then does `low` receive.
    assert_eq!(&next(&mut a).await.message.body[..], b"0");
    assert_eq!(&next(&mut b).await.message.body[..], b"1");
    assert_eq!(&next(&mut a).await.message.body[..], b"2");
    assert_eq!(&next(&mut b).await.message.body[..], b"3");
    assert_eq!(&next(&mut low).await.message.body[..], b"4");
    assert!(a.try_recv().is_err() && b.try_recv().is_err());
}
