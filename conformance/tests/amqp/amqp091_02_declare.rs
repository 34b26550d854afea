//! AMQP 0-9-1 exchange and queue classes with RabbitMQ's semantics: declare (passive,
//! equivalence, reserved names, server-named, exclusive), bind, delete.

use conformance::{amqp, broker};
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::ExchangeKind;

fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e {
        lapin::Error::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

#[tokio::test]
async fn server_named_queue_is_amq_gen() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let q = amqp::queue(&ch, "").await;
    assert!(q.name().as_str().starts_with("amq.gen-"), "{}", q.name());
    assert_eq!(q.message_count(), 0);
}

#[tokio::test]
async fn passive_declare_of_missing_queue_is_404() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let opts = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let e = ch
        .queue_declare("missing", opts, FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), Some(404), "{e}");
}

#[tokio::test]
async fn inequivalent_redeclare_is_406() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "q1").await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let e = ch
        .queue_declare("q1", durable, FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), Some(406), "{e}");
    assert!(e.to_string().contains("inequivalent arg 'durable'"), "{e}");
}

#[tokio::test]
async fn amq_prefix_is_reserved() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let e = ch
        .exchange_declare(
            "amq.mine",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), Some(403), "{e}");
}

#[tokio::test]
async fn predeclared_exchanges_exist() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        ch.exchange_declare(name, kind, passive, FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn exclusive_queue_is_locked_to_its_connection() {
    let b = broker().await;
    let (_c1, ch1) = amqp::channel(&b).await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    ch1.queue_declare("mine", exclusive, FieldTable::default())
        .await
        .unwrap();
    let (_c2, ch2) = amqp::channel(&b).await;
    let e = ch2
        .queue_declare("mine", exclusive, FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), Some(405), "{e}");
}

#[tokio::test]
async fn exclusive_queue_dies_with_its_connection() {
    let b = broker().await;
    let (c1, ch1) = amqp::channel(&b).await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    ch1.queue_declare("ephemeral", exclusive, FieldTable::default())
        .await
        .unwrap();
    c1.close(200, "bye").await.unwrap();
    let c2 = amqp::connect(&b).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    // The broker handles the close asynchronously; poll until the queue is gone.
    let deadline = tokio::time::Instant::now() + conformance::WAIT;
    loop {
        let ch = c2.create_channel().await.unwrap();
        match ch
            .queue_declare("ephemeral", passive, FieldTable::default())
            .await
        {
            Err(e) => {
                assert_eq!(reply_code(&e), Some(404), "{e}");
                break;
            }
            Ok(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "exclusive queue outlived its connection"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn delete_if_empty_refuses_a_queue_with_messages() {
    let b = broker().await;
    let (c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "full").await;
    ch.confirm_select(Default::default()).await.unwrap();
    // With confirms, the ack comes once the message is in the queue.
    ch.basic_publish("", "full", Default::default(), b"x", Default::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let opts = QueueDeleteOptions {
        if_empty: true,
        ..QueueDeleteOptions::default()
    };
    let e = ch.queue_delete("full", opts).await.unwrap_err();
    assert_eq!(reply_code(&e), Some(406), "{e}");
    let ch2 = c.create_channel().await.unwrap();
    assert_eq!(
        ch2.queue_delete("full", QueueDeleteOptions::default())
            .await
            .unwrap(),
        1
    );
}
