//! Routing cost of one AMQP publish through the vhost: `route` (a deduplicated copy, the AMQP
//! publish path before it used the shared result) against `route_shared` (the topic index's
//! cached slice as is; `dispatch` merges repeated destinations anyway).
//!
//! Run: `cargo bench --bench route`.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ferromq::broker::exchange::BindingKey;
use ferromq::broker::message::{Headers, Message};
use ferromq::broker::vhost::{QueueSettings, Vhost};
use ferromq::broker::ConnectionId;
use ferromq::store::MemoryStore;

fn setup() -> (Arc<Vhost>, Message) {
    let vhost = Vhost::new("/", "amq.topic", Arc::new(MemoryStore::default()));
    let owner = ConnectionId(1);
    for (queue, key) in [
        ("q1", "sensors.*.temp"),
        ("q2", "sensors.#"),
        ("q3", "#"),
        ("q4", "sensors.x.temp"),
    ] {
        vhost
            .declare_queue(queue, QueueSettings::default(), false, owner)
            .expect("declare");
        vhost
            .bind_queue(
                queue,
                "amq.topic",
                BindingKey::Amqp(key),
                &Headers::default(),
                owner,
            )
            .expect("bind");
    }
    let message = Message {
        exchange: "amq.topic".into(),
        topic: "sensors/x/temp".into(),
        body: bytes::Bytes::from_static(b"21.5"),
        qos: 0,
        retain: false,
        expires_at: None,
        properties: Default::default(),
        origin: Default::default(),
    };
    (vhost, message)
}

fn bench(c: &mut Criterion) {
    // Queues spawn their actors on the runtime they are declared in.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let (vhost, message) = setup();
    let mut group = c.benchmark_group("route_4_queues");
    group.bench_function("route_dedup_copy", |b| {
        b.iter(|| {
            black_box(
                vhost
                    .route("amq.topic", black_box(&message))
                    .expect("route")
                    .len(),
            )
        })
    });
    group.bench_function("route_shared", |b| {
        b.iter(|| {
            black_box(
                vhost
                    .route_shared("amq.topic", black_box(&message))
                    .expect("route")
                    .len(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
