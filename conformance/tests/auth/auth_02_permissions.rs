//! RabbitMQ-style permissions on AMQP methods, with lapin: configure on declare / delete,
//! write on the queue and read on the exchange for queue.bind, write on the destination and
//! read on the source for exchange.bind, write on the exchange for basic.publish (the default
//! exchange as `amq.default`), read for basic.consume / basic.get / queue.purge. Each refusal
//! is a 403 channel error with RabbitMQ's text; the connection stays usable.

use conformance::auth::{self, amqp_as, reply_code, user};
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};

/// A broker with `admin` (everything) and `limited` (only names starting with `own-`), and
/// `other` / `other-x` declared by admin.
async fn setup() -> (ferromq::RunningBroker, Connection) {
    let b = auth::broker(|c| {
        user(c, "admin", "pw", Some((".*", ".*", ".*")));
        user(c, "limited", "pw", Some(("^own-", "^own-", "^own-")));
    })
    .await;
    let admin = amqp_as(&b, "admin", "pw").await.expect("admin logs in");
    let ch = admin.create_channel().await.unwrap();
    ch.queue_declare(
        "other",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        "other-x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let limited = amqp_as(&b, "limited", "pw").await.expect("limited logs in");
    (b, limited)
}

fn refused<T: std::fmt::Debug>(r: Result<T, lapin::Error>, what: &str) {
    let e = r.expect_err("refused");
    assert_eq!(reply_code(&e), Some(403), "{e}");
    let want = format!("ACCESS_REFUSED - access to {what} in vhost '/' refused for user 'limited'");
    assert!(e.to_string().contains(&want), "want {want:?}, got {e}");
}

async fn channel(conn: &Connection) -> Channel {
    conn.create_channel().await.expect("channel opens")
}

#[tokio::test]
async fn declare_and_delete_need_configure() {
    let (_b, c) = setup().await;
    let q = QueueDeclareOptions::default();
    let args = FieldTable::default;
    channel(&c)
        .await
        .queue_declare("own-q", q, args())
        .await
        .expect("own queue");
    refused(
        channel(&c).await.queue_declare("mine", q, args()).await,
        "queue 'mine'",
    );
    // A passive declare only looks: no permission needed (RabbitMQ).
    let passive = QueueDeclareOptions { passive: true, ..q };
    channel(&c)
        .await
        .queue_declare("other", passive, args())
        .await
        .expect("passive declare of another user's queue");
    let x = ExchangeDeclareOptions::default();
    channel(&c)
        .await
        .exchange_declare("own-x", ExchangeKind::Fanout, x, args())
        .await
        .expect("own exchange");
    refused(
        channel(&c)
            .await
            .exchange_declare("logs", ExchangeKind::Fanout, x, args())
            .await,
        "exchange 'logs'",
    );
    refused(
        channel(&c)
            .await
            .queue_delete("other", QueueDeleteOptions::default())
            .await,
        "queue 'other'",
    );
    refused(
        channel(&c)
            .await
            .exchange_delete("other-x", ExchangeDeleteOptions::default())
            .await,
        "exchange 'other-x'",
    );
    channel(&c)
        .await
        .queue_delete("own-q", QueueDeleteOptions::default())
        .await
        .expect("own queue deleted");
}

#[tokio::test]
async fn bindings_need_write_on_destination_and_read_on_source() {
    let (_b, c) = setup().await;
    let ch = channel(&c).await;
    ch.queue_declare(
        "own-q",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        "own-x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let opts = QueueBindOptions::default();
    ch.queue_bind("own-q", "own-x", "k", opts, FieldTable::default())
        .await
        .expect("own queue to own exchange");
    refused(
        channel(&c)
            .await
            .queue_bind("own-q", "amq.direct", "k", opts, FieldTable::default())
            .await,
        "exchange 'amq.direct'",
    );
    refused(
        channel(&c)
            .await
            .queue_bind("other", "own-x", "k", opts, FieldTable::default())
            .await,
        "queue 'other'",
    );
    let xo = ExchangeBindOptions::default();
    refused(
        channel(&c)
            .await
            .exchange_bind("own-x", "other-x", "k", xo, FieldTable::default())
            .await,
        "exchange 'other-x'",
    );
    refused(
        channel(&c)
            .await
            .exchange_bind("other-x", "own-x", "k", xo, FieldTable::default())
            .await,
        "exchange 'other-x'",
    );
}

#[tokio::test]
async fn consume_get_and_purge_need_read() {
    let (_b, c) = setup().await;
    refused(
        channel(&c)
            .await
            .basic_consume(
                "other",
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await,
        "queue 'other'",
    );
    refused(
        channel(&c)
            .await
            .basic_get("other", BasicGetOptions::default())
            .await,
        "queue 'other'",
    );
    refused(
        channel(&c)
            .await
            .queue_purge("other", QueuePurgeOptions::default())
            .await,
        "queue 'other'",
    );
    let ch = channel(&c).await;
    ch.queue_declare(
        "own-q",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_get("own-q", BasicGetOptions::default())
        .await
        .expect("get from own queue");
}

#[tokio::test]
async fn publish_needs_write_on_the_exchange() {
    let (_b, c) = setup().await;
    let ch = channel(&c).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.exchange_declare(
        "own-x",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let confirm = ch
        .basic_publish(
            "own-x",
            "",
            BasicPublishOptions::default(),
            b"ok",
            BasicProperties::default(),
        )
        .await
        .expect("publish sent")
        .await
        .expect("confirmed");
    assert!(confirm.is_ack());
    // The default exchange is matched as amq.default, which `^own-` does not grant.
    let r = async {
        ch.basic_publish(
            "",
            "own-q",
            BasicPublishOptions::default(),
            b"no",
            BasicProperties::default(),
        )
        .await?
        .await
    }
    .await;
    refused(r, "exchange 'amq.default'");
    // The connection survives a channel error.
    channel(&c).await;
}
