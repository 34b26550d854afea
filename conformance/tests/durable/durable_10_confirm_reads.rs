//! Reads put off while a confirm waits for the disk (`src/amqp/coalesce.rs`): once a
//! connection's persistent publish waits for its fsync, the broker reads that socket again
//! only when the fsync ends (or shortly after), with the socket's receive low-water mark
//! raised so that small frames do not wake it meanwhile. Whatever the client sent in between
//! must still be read, in order, and answered, and the connection must close normally.
//!
//! A publisher with a window of unconfirmed publishes refills it as confirms come; the broker
//! holds a busy publisher's reads only until the socket holds the window it was seen to use
//! (a `SO_RCVLOWAT` mark). Every refill must still be read and confirmed: a mark the refill
//! never reaches may only delay the read to the end of the period, never lose it.

use std::collections::VecDeque;

use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;

use conformance::process::BrokerProcess;

use super::support::{channel, expect_acks, persistent, stop, STEP};

const QUEUE: &str = "coalesce";
const ROUNDS: u32 = 20;
/// Publishes in flight per round: enough for the broker to count the publisher as busy
/// (`COALESCE_FROM`), so it puts reads off.
const BURST: u32 = 40;

#[tokio::test]
async fn a_method_sent_while_confirms_wait_for_the_disk_is_answered_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BrokerProcess::start(&dir.path().join("data"), "");
    let (conn, ch, durable) = confirming_channel(&b, QUEUE).await;
    for round in 1..=ROUNDS {
        let mut confirms = Vec::new();
        for i in 0..BURST {
            confirms.push(
                ch.basic_publish(
                    "",
                    QUEUE,
                    Default::default(),
                    format!("r{round}-{i}").as_bytes(),
                    persistent(),
                )
                .await
                .expect("publish"),
            );
        }
        // Sent right behind the publishes, while their fsync runs: a frame far smaller than
        // the raised low-water mark, and the client sends nothing after it until answered.
        let passive = QueueDeclareOptions {
            passive: true,
            ..durable
        };
        let declared = tokio::time::timeout(
            STEP,
            ch.queue_declare(QUEUE, passive, FieldTable::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round}: queue.declare-ok never came\n{}", b.log()))
        .expect("queue.declare-ok");
        // Handled after the publishes before it: the queue counts them all.
        assert_eq!(declared.message_count(), round * BURST, "round {round}");
        for c in confirms {
            let confirmed = tokio::time::timeout(STEP, c)
                .await
                .expect("confirm in time")
                .expect("confirm");
            assert_eq!(confirmed, Confirmation::Ack(None), "round {round}");
        }
    }
    tokio::time::timeout(STEP, conn.close(200, "bye"))
        .await
        .expect("connection.close-ok in time")
        .expect("closed");
    stop(b);
}

/// Unconfirmed publishes the windowed publisher allows: above the busy threshold
/// (`COALESCE_FROM`), so its reads are held and the mark decides when they resume.
const WINDOW: usize = 40;
/// Publishes of the windowed run: many refills, with windows ending mid-period.
const WINDOWED: u32 = 3000;

#[tokio::test]
async fn a_publisher_with_a_window_of_unconfirmed_publishes_gets_every_refill_confirmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BrokerProcess::start(&dir.path().join("data"), "");
    let (conn, ch, durable) = confirming_channel(&b, "windowed").await;
    let mut in_flight: VecDeque<lapin::publisher_confirm::PublisherConfirm> = VecDeque::new();
    for i in 0..WINDOWED {
        if in_flight.len() == WINDOW {
            let oldest = in_flight.pop_front().expect("a publish in flight");
            let Ok(confirmed) = tokio::time::timeout(STEP, oldest).await else {
                panic!("publish {i}: no confirm in time\n{}", b.log());
            };
            let confirmed = confirmed.expect("confirm");
            assert_eq!(confirmed, Confirmation::Ack(None), "before publish {i}");
        }
        in_flight.push_back(
            ch.basic_publish(
                "",
                "windowed",
                Default::default(),
                format!("w{i}").as_bytes(),
                persistent(),
            )
            .await
            .expect("publish"),
        );
    }
    expect_acks(in_flight).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..durable
    };
    let declared = tokio::time::timeout(
        STEP,
        ch.queue_declare("windowed", passive, FieldTable::default()),
    )
    .await
    .expect("queue.declare-ok in time")
    .expect("queue.declare-ok");
    assert_eq!(
        declared.message_count(),
        WINDOWED,
        "every publish enqueued once"
    );
    tokio::time::timeout(STEP, conn.close(200, "bye"))
        .await
        .expect("connection.close-ok in time")
        .expect("closed");
    stop(b);
}

/// A channel in confirm mode on a broker with durable queue `queue`; the options it was
/// declared with, for passive declares.
async fn confirming_channel(
    b: &BrokerProcess,
    queue: &str,
) -> (lapin::Connection, lapin::Channel, QueueDeclareOptions) {
    let (conn, ch) = channel(b).await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(queue, durable, FieldTable::default())
        .await
        .expect("durable queue");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    (conn, ch, durable)
}
