//! Durable declares under concurrency through real AMQP sockets (lapin): N clients each
//! declare M durable queues (and bind each to `amq.topic`) one after the other against an
//! in-process broker writing its definitions log to a temporary data dir. Every declare-ok and
//! bind-ok waits for the definition's fsync; the number shows whether clients of one vhost wait
//! for each other's disk writes (they did while the fsync ran under the vhost's registry lock)
//! or share fsyncs. A benchmark, not a test.
//!
//! Run: `cargo run --release -p conformance --example declare_throughput -- [clients]
//! [queues per client]` (defaults 16 50).

use std::time::{Duration, Instant};

use lapin::options::QueueBindOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

#[tokio::main]
async fn main() {
    let args = conformance::numeric_args();
    let clients = args.first().copied().unwrap_or(16);
    let per = args.get(1).copied().unwrap_or(50);
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = conformance::broker_with(|config| {
        config.store.in_memory = std::env::var_os("DECLARE_IN_MEMORY").is_some();
        config.data_dir = dir.path().to_path_buf();
    })
    .await;
    let uri = conformance::amqp::uri(&broker);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(declare(uri.clone(), c, per)))
        .collect();
    let mut latencies = Vec::with_capacity(clients * per * 2);
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{clients} clients x {per} durable queue.declare + queue.bind: {:.0} operations/s, \
         latency p50 {:?} p99 {:?}",
        latencies.len() as f64 / secs,
        at(0.5),
        at(0.99)
    );
    broker.shutdown().await;
}

async fn declare(uri: String, c: usize, per: usize) -> Vec<Duration> {
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let mut latencies = Vec::with_capacity(per * 2);
    for i in 0..per {
        let queue = format!("declare-{c}-{i}");
        let t = Instant::now();
        conformance::amqp::durable_queue(&ch, &queue).await;
        latencies.push(t.elapsed());
        let t = Instant::now();
        ch.queue_bind(
            &queue,
            "amq.topic",
            &format!("k.{c}.{i}"),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
        latencies.push(t.elapsed());
    }
    latencies
}
