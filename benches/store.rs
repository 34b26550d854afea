//! Persistent append cost: messages enqueued into the segment store and waited for until
//! durable (what a publisher confirm waits for), with group commit (`fsync = "batch"`) against
//! one fsync per record (`fsync = "always"`). Several publishing threads share the persister.
//!
//! Run: `cargo bench --bench store`.

use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferromq::broker::message::{Message, Origin, Properties};
use ferromq::store::{FsyncPolicy, MessageStore, SegmentStore, StoreConfig};

const PUBLISHERS: usize = 4;

fn message(size: usize) -> Arc<Message> {
    Arc::new(Message {
        exchange: "".into(),
        topic: "q".into(),
        body: Bytes::from(vec![b'x'; size]),
        qos: 1,
        retain: false,
        expires_at: None,
        properties: Properties::default(),
        origin: Origin::default(),
    })
}

/// `per_publisher` messages from each of `PUBLISHERS` threads, each settled once durable, so
/// the log stays small; returns when every completion arrived.
fn run(store: &Arc<SegmentStore>, message: &Arc<Message>, per_publisher: usize) {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..PUBLISHERS {
            let tx = tx.clone();
            s.spawn(move || {
                for _ in 0..per_publisher {
                    let tx = tx.clone();
                    let id = store.enqueue(
                        "q",
                        message,
                        Some(Box::new(move |ok| {
                            let _ = tx.send(ok);
                        })),
                    );
                    store.settle("q", id);
                }
            });
        }
    });
    for _ in 0..PUBLISHERS * per_publisher {
        assert!(rx.recv().expect("completion"));
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_append_durable");
    for (policy, per_publisher) in [(FsyncPolicy::Batch, 2500), (FsyncPolicy::Always, 25)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StoreConfig {
            fsync: policy,
            ..StoreConfig::default()
        };
        let store = SegmentStore::open(dir.path(), &config).expect("open");
        let message = message(256);
        group.throughput(Throughput::Elements((PUBLISHERS * per_publisher) as u64));
        group.bench_function(format!("{policy:?}_256B_x{PUBLISHERS}_publishers"), |b| {
            b.iter(|| run(&store, &message, per_publisher));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
