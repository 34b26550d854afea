//! Reads put off while a confirm waits for the disk (`src/amqp/coalesce.rs`): once a
//! connection's persistent publish waits for its fsync, the broker reads that socket again
//! only when the fsync ends (or shortly after), with the socket's receive low-water mark
//! raised so that small frames do not wake it meanwhile. Whatever the client sent in between
//! must still be read, in order, and answered, and the connection must close normally.

use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;

use conformance::process::BrokerProcess;

use super::support::{channel, persistent, stop, STEP};

const QUEUE: &str = "coalesce";
const ROUNDS: u32 = 50;

#[tokio::test]
async fn a_method_sent_while_a_confirm_waits_for_the_disk_is_answered_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BrokerProcess::start(&dir.path().join("data"), "");
    let (conn, ch) = channel(&b).await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(QUEUE, durable, FieldTable::default())
        .await
        .expect("durable queue");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    for i in 1..=ROUNDS {
        let confirm = ch
            .basic_publish(
                "",
                QUEUE,
                Default::default(),
                format!("m{i}").as_bytes(),
                persistent(),
            )
            .await
            .expect("publish");
        // Sent right behind the publish, while its fsync runs: a frame far smaller than the
        // raised low-water mark, and the client sends nothing after it until answered.
        let passive = QueueDeclareOptions {
            passive: true,
            ..durable
        };
        let declared = tokio::time::timeout(
            STEP,
            ch.queue_declare(QUEUE, passive, FieldTable::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("round {i}: queue.declare-ok never came\n{}", b.log()))
        .expect("queue.declare-ok");
        // Handled after the publish before it: the queue counts it.
        assert_eq!(declared.message_count(), i, "round {i}");
        let confirmed = tokio::time::timeout(STEP, confirm)
            .await
            .expect("confirm in time")
            .expect("confirm");
        assert_eq!(confirmed, Confirmation::Ack(None), "round {i}");
    }
    tokio::time::timeout(STEP, conn.close(200, "bye"))
        .await
        .expect("connection.close-ok in time")
        .expect("closed");
    stop(b);
}
