//! Publish-with-confirms throughput through a real AMQP socket (lapin), persistent messages to a
//! durable queue, against an in-process broker writing to a temporary data dir; the same with
//! the store in memory for comparison. A benchmark, not a test.
//!
//! Run: `cargo run --release -p conformance --example confirm_throughput -- [publishers]
//! [messages per publisher] [body bytes] [confirm window]` (defaults 4 20000 256 256).

use std::collections::VecDeque;
use std::time::Instant;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[tokio::main]
async fn main() {
    let args = conformance::numeric_args();
    let publishers = args.first().copied().unwrap_or(4);
    let per = args.get(1).copied().unwrap_or(20_000);
    let size = args.get(2).copied().unwrap_or(256);
    let window = args.get(3).copied().unwrap_or(256);
    for in_memory in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = conformance::broker_with(|config| {
            config.store.in_memory = in_memory;
            config.data_dir = dir.path().to_path_buf();
        })
        .await;
        let uri = conformance::amqp::uri(&broker);
        let started = Instant::now();
        let tasks: Vec<_> = (0..publishers)
            .map(|p| tokio::spawn(publish(uri.clone(), p, per, size, window)))
            .collect();
        for t in tasks {
            t.await.expect("publisher");
        }
        let secs = started.elapsed().as_secs_f64();
        let n = publishers * per;
        println!(
            "{}: {publishers} publishers x {per} persistent {size}-byte messages, window {window}: \
             {:.0} msg/s confirmed ({:.1} MB/s)",
            if in_memory { "store in memory" } else { "durable store (fsync = batch)" },
            n as f64 / secs,
            (n * size) as f64 / secs / 1e6
        );
        broker.shutdown().await;
    }
}

async fn publish(uri: String, p: usize, per: usize, size: usize, window: usize) {
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let queue = format!("bench-{p}");
    conformance::amqp::durable_queue(&ch, &queue).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let body = vec![b'x'; size];
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut outstanding = VecDeque::with_capacity(window);
    for _ in 0..per {
        let c = ch
            .basic_publish(
                "",
                &queue,
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await
            .expect("publish");
        outstanding.push_back(c);
        if outstanding.len() >= window {
            let c = outstanding.pop_front().expect("non-empty");
            assert_eq!(c.await.expect("confirm"), Confirmation::Ack(None));
        }
    }
    for c in outstanding {
        assert_eq!(c.await.expect("confirm"), Confirmation::Ack(None));
    }
}
