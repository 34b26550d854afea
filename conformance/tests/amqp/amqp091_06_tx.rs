//! The tx class (AMQP 0-9-1 section 1.9): publishes and acks wait for commit; rollback drops
//! publishes and leaves acked messages unacknowledged.

use conformance::{amqp, broker};
use lapin::options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions};

#[tokio::test]
async fn publishes_wait_for_commit_and_rollback_drops_them() {
    let b = broker().await;
    let (c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "txq").await;
    ch.tx_select().await.unwrap();
    ch.basic_publish(
        "",
        "txq",
        Default::default(),
        b"rolled back",
        Default::default(),
    )
    .await
    .unwrap();
    ch.tx_rollback().await.unwrap();
    ch.basic_publish(
        "",
        "txq",
        Default::default(),
        b"committed",
        Default::default(),
    )
    .await
    .unwrap();
    let observer = c.create_channel().await.unwrap();
    // Not visible before the commit.
    assert!(observer
        .basic_get("txq", BasicGetOptions::default())
        .await
        .unwrap()
        .is_none());
    ch.tx_commit().await.unwrap();
    let got = observer
        .basic_get("txq", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("committed message");
    assert_eq!(got.delivery.data, b"committed");
    assert!(observer
        .basic_get("txq", BasicGetOptions::default())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn rolled_back_ack_leaves_the_message_unacked() {
    let b = broker().await;
    let (c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "txack").await;
    ch.basic_publish("", "txack", Default::default(), b"m", Default::default())
        .await
        .unwrap();
    ch.tx_select().await.unwrap();
    let mut cons = amqp::consume(&ch, "txack").await;
    let d = amqp::next(&mut cons).await;
    d.ack(BasicAckOptions::default()).await.unwrap();
    ch.tx_rollback().await.unwrap();
    ch.close(200, "bye").await.unwrap();
    // The ack was rolled back: closing the channel requeues the message.
    let ch2 = c.create_channel().await.unwrap();
    let again = ch2
        .basic_get("txack", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("message requeued");
    assert!(again.delivery.redelivered);
}

#[tokio::test]
async fn tx_and_confirm_modes_exclude_each_other() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.tx_select().await.unwrap();
    let e = ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("406") || e.contains("PRECONDITION_FAILED"),
        "{e}"
    );
}

#[tokio::test]
async fn commit_without_select_is_406() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let e = ch.tx_commit().await.unwrap_err().to_string();
    assert!(e.contains("406") || e.contains("not transactional"), "{e}");
}
