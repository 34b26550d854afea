//! Publisher confirms (RabbitMQ extension), mandatory returns, basic.get, queue.purge.

use conformance::{amqp, broker};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions,
};
use lapin::publisher_confirm::Confirmation;

#[tokio::test]
async fn confirms_ack_every_publish() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "conf").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::new();
    for i in 0..50u8 {
        confirms.push(
            ch.basic_publish(
                "",
                "conf",
                BasicPublishOptions::default(),
                &[i],
                Default::default(),
            )
            .await
            .unwrap(),
        );
    }
    for c in confirms {
        assert_eq!(c.await.unwrap(), Confirmation::Ack(None));
    }
    let q = amqp::queue(&ch, "conf").await;
    assert_eq!(q.message_count(), 50);
}

#[tokio::test]
async fn unroutable_mandatory_publish_is_returned() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let opts = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = ch
        .basic_publish("amq.direct", "nobody", opts, b"lost?", Default::default())
        .await
        .unwrap()
        .await
        .unwrap();
    match confirm {
        Confirmation::Ack(Some(ret)) => {
            assert_eq!(ret.reply_code, 312);
            assert_eq!(ret.data, b"lost?");
        }
        other => panic!("expected a returned message, got {other:?}"),
    }
}

#[tokio::test]
async fn basic_get_and_purge() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "get").await;
    assert!(ch
        .basic_get("get", BasicGetOptions::default())
        .await
        .unwrap()
        .is_none());
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..3u8 {
        ch.basic_publish(
            "",
            "get",
            BasicPublishOptions::default(),
            &[i],
            Default::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let got = ch
        .basic_get("get", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(got.delivery.data, [0]);
    assert_eq!(got.message_count, 2, "messages left after this one");
    assert_eq!(
        ch.queue_purge("get", QueuePurgeOptions::default())
            .await
            .unwrap(),
        2
    );
    assert!(ch
        .basic_get("get", BasicGetOptions::default())
        .await
        .unwrap()
        .is_none());
}
