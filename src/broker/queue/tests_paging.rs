//! Bounded memory: a durable queue keeps only a window of bodies in memory and reads the rest
//! back from the segment log, in order, across priorities, limits and a restart.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{spawn, spawn_recovered, ConsumerSink, ConsumerTag, QueueDelivery, QueueLimits};
use crate::broker::message::{AmqpProperties, Message, Origin, Properties};
use crate::broker::queue::dead_letter::Detached;
use crate::store::{MessageStore, SegmentStore, StoreConfig};

struct Sink(mpsc::UnboundedSender<QueueDelivery>);

impl ConsumerSink for Sink {
    fn deliver(&self, d: QueueDelivery) {
        let _ = self.0.send(d);
    }
}

fn message(body: String, priority: Option<u8>) -> Arc<Message> {
    Arc::new(Message {
        exchange: "".into(),
        topic: "q".into(),
        body: Bytes::from(body),
        qos: 1,
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

fn store(dir: &std::path::Path) -> Arc<SegmentStore> {
    let config = StoreConfig {
        memory_window: 8,
        segment_bytes: 16 * 1024,
        ..StoreConfig::default()
    };
    SegmentStore::open(dir, &config).expect("open")
}

async fn take(rx: &mut mpsc::UnboundedReceiver<QueueDelivery>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivery in time")
            .expect("queue alive");
        out.push(String::from_utf8_lossy(&d.message.body).into_owned());
    }
    out
}

#[tokio::test]
async fn a_backlog_beyond_the_window_is_read_back_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path());
    let q = spawn("q", QueueLimits::default(), s.clone());
    let bodies: Vec<String> = (0..300)
        .map(|i| format!("{i:04}-{}", "x".repeat(100)))
        .collect();
    for b in &bodies {
        q.publish(message(b.clone(), None));
    }
    assert_eq!(q.counts().await.ready, 300);
    let (tx, mut rx) = mpsc::unbounded_channel();
    q.consume(ConsumerTag("c".into()), Arc::new(Sink(tx)), 0, true);
    assert_eq!(take(&mut rx, 300).await, bodies);
}

#[tokio::test]
async fn priorities_and_a_restart_keep_order_with_paged_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = QueueLimits {
        max_priority: Some(2),
        ..QueueLimits::default()
    };
    let low: Vec<String> = (0..50).map(|i| format!("low-{i:03}")).collect();
    let high: Vec<String> = (0..50).map(|i| format!("high-{i:03}")).collect();
    {
        let s = store(dir.path());
        let q = spawn("q", limits.clone(), s.clone());
        for (l, h) in low.iter().zip(&high) {
            q.publish(message(l.clone(), Some(0)));
            q.publish(message(h.clone(), Some(2)));
        }
        assert_eq!(q.counts().await.ready, 100);
        s.flush();
    }
    let s = store(dir.path());
    let recovered = s.take_recovered("q");
    assert_eq!(recovered.len(), 100);
    assert!(
        recovered.iter().filter(|r| r.message.is_none()).count() >= 90,
        "recovery did not load the backlog's bodies"
    );
    let q = spawn_recovered("q", limits, s.clone(), Arc::new(Detached), recovered);
    let (tx, mut rx) = mpsc::unbounded_channel();
    q.consume(ConsumerTag("c".into()), Arc::new(Sink(tx)), 0, true);
    let got = take(&mut rx, 100).await;
    let expected: Vec<String> = high.iter().chain(&low).cloned().collect();
    assert_eq!(got, expected);
}
