//! The durability promise (RabbitMQ's): a persistent message in a durable queue whose publisher
//! confirm was an ack survives a SIGKILL of the broker at any instant. Rounds of: publish with
//! confirms (and, every other round, consume and ack at the same time) until the broker is
//! killed at a random moment; restart on the same data dir; drain the queue. Across all rounds
//! every confirmed message is delivered, none twice unless it had been delivered to the
//! consumer of a crashed round (its ack may have died with the broker), and nothing that was
//! never published appears.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::process::{BrokerProcess, Rng};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;

use super::support::{assert_none_lost, channel, drain, persistent, sigkill, stop, STEP};

const QUEUE: &str = "crash";
/// A second durable queue bound with `QUEUE` to a durable fanout exchange the publishers use:
/// a confirm must wait for both queues' writes.
const COPY: &str = "crash-copy";
const FANOUT: &str = "crash-fanout";
const ROUNDS: usize = 5;
/// Outstanding confirms per publisher (a pipelining client).
const WINDOW: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_sigkill_at_random_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Small segments and memory window: rounds cross segment boundaries, reclamation runs
    // under the crashes, and drains read most bodies back from the log.
    let config = "[store]\nsegment_bytes = 65536\nmemory_window = 64\n";
    let mut rng = Rng::new();
    let mut sent: HashSet<String> = HashSet::new();
    let mut confirmed: HashSet<String> = HashSet::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut seen_copy: HashMap<String, u32> = HashMap::new();
    // Delivered to a crashed round's consumer: may come again.
    let mut may_repeat: HashSet<String> = HashSet::new();
    for round in 0..ROUNDS {
        let b = BrokerProcess::start(&data, config);
        let (conn, ch) = channel(&b).await;
        declare(&ch).await;
        let consumed = Arc::new(Mutex::new(Vec::new()));
        let consumer = if round % 2 == 1 {
            Some(consume_until_gone(&b, Arc::clone(&consumed)).await)
        } else {
            None
        };
        let pid = b.pid();
        let delay = Duration::from_millis(rng.range(50, 700));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            sigkill(pid);
        });
        let (s, c) = publish_until_dead(&ch, round).await;
        killer.join().expect("killer");
        drop(conn);
        b.kill();
        if let Some(task) = consumer {
            // Its connection died with the broker: every delivery it saw is recorded.
            let _ = tokio::time::timeout(STEP, task).await;
        }
        eprintln!(
            "round {round}: killed after {delay:?}: {} sent, {} confirmed",
            s.len(),
            c.len()
        );
        for (id, _) in consumed.lock().expect("consumed").drain(..) {
            *seen.entry(id.clone()).or_default() += 1;
            may_repeat.insert(id);
        }
        sent.extend(s);
        confirmed.extend(c);

        // Restart and take everything that survived.
        let b = BrokerProcess::start(&data, config);
        let (conn, ch) = channel(&b).await;
        for (queue, seen, may_repeat) in [
            (QUEUE, &mut seen, &may_repeat),
            // Nobody consumed the copy before a crash: exactly once there.
            (COPY, &mut seen_copy, &HashSet::new()),
        ] {
            for (body, _redelivered) in drain(&ch, queue).await {
                let id = String::from_utf8(body).expect("utf-8 id");
                assert!(sent.contains(&id), "{id} was never published");
                let n = seen.entry(id.clone()).or_default();
                *n += 1;
                assert!(
                    *n == 1 || (*n == 2 && may_repeat.contains(&id)),
                    "{id} delivered {n} times from {queue}"
                );
            }
            let context = format!("round {round}: confirmed, from {queue}");
            assert_none_lost(&confirmed, &*seen, &context, &b);
        }
        let _ = conn.close(200, "bye").await;
        stop(b);
    }
    assert!(
        confirmed.len() > 100,
        "the test confirmed too little to mean much: {}",
        confirmed.len()
    );
}

/// The durable fanout exchange and the two durable queues bound to it (idempotent).
async fn declare(ch: &lapin::Channel) {
    ch.exchange_declare(
        FANOUT,
        lapin::ExchangeKind::Fanout,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("durable exchange");
    for q in [QUEUE, COPY] {
        ch.queue_declare(
            q,
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("durable queue");
        ch.queue_bind(
            q,
            FANOUT,
            "",
            lapin::options::QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    }
}

/// Publishes persistent messages `r<round>-<n>` with confirms, WINDOW at a time, until the
/// connection dies (or a deadline, should the kill not come). Returns (sent, confirmed ids).
async fn publish_until_dead(ch: &lapin::Channel, round: usize) -> (Vec<String>, Vec<String>) {
    let mut sent = Vec::new();
    let mut confirmed = Vec::new();
    if ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .is_err()
    {
        return (sent, confirmed);
    }
    let deadline = Instant::now() + STEP;
    let mut window = VecDeque::new();
    for n in 0.. {
        if Instant::now() > deadline {
            break;
        }
        let id = format!("r{round}-{n}");
        let published = ch
            .basic_publish(
                FANOUT,
                "",
                BasicPublishOptions::default(),
                id.as_bytes(),
                persistent(),
            )
            .await;
        let Ok(confirm) = published else {
            break;
        };
        // Once handed to the socket it may have reached the broker.
        sent.push(id.clone());
        window.push_back((id, confirm));
        if window.len() >= WINDOW {
            let (id, confirm) = window.pop_front().expect("non-empty");
            match tokio::time::timeout(STEP, confirm).await {
                Ok(Ok(Confirmation::Ack(None))) => confirmed.push(id),
                _ => break,
            }
        }
    }
    for (id, confirm) in window {
        if let Ok(Ok(Confirmation::Ack(None))) =
            tokio::time::timeout(Duration::from_secs(2), confirm).await
        {
            confirmed.push(id);
        }
    }
    (sent, confirmed)
}

/// Consumes `QUEUE` with acks on its own connection until the broker dies, recording (id,
/// redelivered) of every delivery.
async fn consume_until_gone(
    b: &BrokerProcess,
    out: Arc<Mutex<Vec<(String, bool)>>>,
) -> tokio::task::JoinHandle<()> {
    let (conn, ch) = channel(b).await;
    ch.basic_qos(50, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = ch
        .basic_consume(
            QUEUE,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    tokio::spawn(async move {
        let _conn = conn;
        while let Some(Ok(d)) = consumer.next().await {
            let id = String::from_utf8_lossy(&d.data).into_owned();
            if let Ok(mut v) = out.lock() {
                v.push((id, d.redelivered));
            }
            if d.ack(BasicAckOptions::default()).await.is_err() {
                break;
            }
        }
    })
}

/// RabbitMQ keeps the redelivered state of persistent messages: one delivered (unacked) before
/// a graceful restart comes back with redelivered=true, one never delivered without it. After a
/// crash every recovered message is flagged (a delivery's record may not have reached the disk;
/// RabbitMQ's classic queues do the same after a dirty recovery).
#[tokio::test]
async fn a_message_delivered_before_a_crash_comes_back_redelivered() {
    use lapin::options::BasicGetOptions;

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    {
        let (_conn, ch) = channel(&b).await;
        ch.queue_declare(
            "redeliver",
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("durable queue");
        super::support::publish_confirmed(&ch, "", "redeliver", &[b"first".to_vec()]).await;
        let got = ch
            .basic_get("redeliver", BasicGetOptions::default())
            .await
            .expect("get")
            .expect("a message");
        assert_eq!(got.delivery.data, b"first");
        assert!(!got.delivery.redelivered);
        // Left unacked. The queue records the delivery before it takes this later publish, so
        // this confirm also means the delivery record is on disk.
        super::support::publish_confirmed(&ch, "", "redeliver", &[b"second".to_vec()]).await;
    }
    // A graceful stop first: the flags are exact.
    stop(b);
    let b = BrokerProcess::start(&data, "");
    let _conn = {
        let (conn, ch) = channel(&b).await;
        for (body, redelivered) in [(&b"first"[..], true), (&b"second"[..], false)] {
            let got = ch
                .basic_get("redeliver", BasicGetOptions::default())
                .await
                .expect("get")
                .expect("a message");
            assert_eq!(
                (&got.delivery.data[..], got.delivery.redelivered),
                (body, redelivered)
            );
        }
        // Never delivered: flagged after the crash all the same.
        super::support::publish_confirmed(&ch, "", "redeliver", &[b"third".to_vec()]).await;
        conn
    };
    b.kill();
    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    let got = drain(&ch, "redeliver").await;
    assert_eq!(
        got,
        vec![
            (b"first".to_vec(), true),
            (b"second".to_vec(), true),
            (b"third".to_vec(), true)
        ],
        "after a crash everything recovered may have been delivered"
    );
    stop(b);
}

/// tx.commit-ok for persistent messages to a durable queue comes after they are on disk: a
/// SIGKILL right after it loses none of them.
#[tokio::test]
async fn a_committed_transaction_survives_a_crash() {
    use lapin::options::BasicPublishOptions;

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    // Large enough that writing them takes longer than the kill does to arrive.
    let n = 300;
    let filler = "t".repeat(100_000);
    {
        let (_conn, ch) = channel(&b).await;
        ch.queue_declare(
            "tx",
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("durable queue");
        ch.tx_select().await.expect("tx.select");
        for i in 0..n {
            ch.basic_publish(
                "",
                "tx",
                BasicPublishOptions::default(),
                format!("{i:04}{filler}").as_bytes(),
                super::support::persistent(),
            )
            .await
            .expect("publish");
        }
        ch.tx_commit().await.expect("tx.commit-ok");
        sigkill(b.pid());
    }
    b.kill();
    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    assert_eq!(drain(&ch, "tx").await.len(), n);
    stop(b);
}
