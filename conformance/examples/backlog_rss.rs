//! Memory of a durable queue with a large backlog: the broker binary as a child process,
//! persistent messages published with confirms into one durable queue until the backlog is
//! `total_mb`, then the broker's resident set (VmRSS, and the peak VmHWM) from /proc; again after
//! a restart that recovers the backlog; once with the default `[store] memory_window` and once
//! with 0 (every body in memory) for comparison. A measurement, not a test.
//!
//! Run: `cargo build --release --bin ferromq && FERROMQ_BIN=target/release/ferromq cargo run
//! --release -p conformance --example backlog_rss -- [total_mb] [body bytes]` (defaults 2048
//! 4096).

use std::collections::VecDeque;

use conformance::process::{dir_size, BrokerProcess};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const PUBLISHERS: usize = 4;

#[tokio::main]
async fn main() {
    let args = conformance::numeric_args();
    let total_mb = args.first().copied().unwrap_or(2048);
    let size = args.get(1).copied().unwrap_or(4096);
    let per = total_mb * 1024 * 1024 / size / PUBLISHERS;
    for window in [None, Some(0)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let config = match window {
            None => String::new(),
            Some(w) => format!("[store]\nmemory_window = {w}\n"),
        };
        let label = match window {
            None => "default memory_window".to_string(),
            Some(w) => format!("memory_window = {w}"),
        };
        let b = BrokerProcess::start(&data, &config);
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..PUBLISHERS)
            .map(|_| tokio::spawn(publish(b.amqp_uri(), per, size)))
            .collect();
        for t in tasks {
            t.await.expect("publisher");
        }
        let secs = started.elapsed().as_secs_f64();
        let backlog = (PUBLISHERS * per * size) as f64 / 1e6;
        println!(
            "{label}: backlog {} messages, {backlog:.0} MB of bodies ({:.0} MB on disk) in \
             {secs:.1} s; broker {}",
            PUBLISHERS * per,
            dir_size(&data) as f64 / 1e6,
            memory(b.pid())
        );
        b.stop_gracefully();
        let b = BrokerProcess::start(&data, &config);
        // Recovery happens before the listeners start: the backlog is in the queue now.
        println!(
            "{label}: after a restart recovering it: broker {}",
            memory(b.pid())
        );
        b.kill();
    }
}

/// VmRSS and VmHWM of process `pid`, in MB.
fn memory(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    format!(
        "RSS {:.0} MB (peak {:.0} MB)",
        field("VmRSS:"),
        field("VmHWM:")
    )
}

async fn publish(uri: String, per: usize, size: usize) {
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    conformance::amqp::durable_queue(&ch, "backlog").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let body = vec![b'x'; size];
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut outstanding = VecDeque::new();
    for _ in 0..per {
        let c = ch
            .basic_publish(
                "",
                "backlog",
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await
            .expect("publish");
        outstanding.push_back(c);
        if outstanding.len() >= 256 {
            let c = outstanding.pop_front().expect("non-empty");
            assert_eq!(c.await.expect("confirm"), Confirmation::Ack(None));
        }
    }
    for c in outstanding {
        assert_eq!(c.await.expect("confirm"), Confirmation::Ack(None));
    }
}
