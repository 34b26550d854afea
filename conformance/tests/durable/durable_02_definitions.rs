//! Durable definitions come back after a crash, transient ones do not (RabbitMQ): exchanges
//! with their arguments, queues with theirs, queue and exchange-to-exchange bindings between
//! durable ends; and a persistent message in a durable queue is still there.

use conformance::process::BrokerProcess;
use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::ExchangeKind;

use super::support::{channel, drain, publish_confirmed, stop};

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn max_length(n: i64) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-max-length".into(), AMQPValue::LongLongInt(n));
    t
}

#[tokio::test]
async fn durable_definitions_survive_a_crash_and_transient_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    {
        let (_conn, ch) = channel(&b).await;
        ch.exchange_declare(
            "dx",
            ExchangeKind::Topic,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .expect("dx");
        ch.exchange_declare(
            "dx-in",
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .expect("dx-in");
        ch.exchange_declare(
            "tx",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("tx");
        ch.queue_declare("dq", durable_queue(), max_length(100))
            .await
            .expect("dq");
        ch.queue_declare("tq", QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("tq");
        ch.queue_bind(
            "dq",
            "dx",
            "a.*",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind dq");
        // Bound then unbound: must not come back.
        ch.queue_bind(
            "dq",
            "dx",
            "gone.#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
        ch.queue_unbind("dq", "dx", "gone.#", FieldTable::default())
            .await
            .expect("unbind");
        ch.exchange_bind(
            "dx",
            "dx-in",
            "",
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("e2e bind");
        publish_confirmed(&ch, "dx", "a.before", &[b"kept".to_vec()]).await;
    }
    b.kill();

    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let dq = ch
        .queue_declare("dq", passive, FieldTable::default())
        .await
        .expect("dq is back");
    assert_eq!(dq.message_count(), 1, "its persistent message too");
    // Same arguments: an equivalent redeclaration passes, a different one is 406.
    ch.queue_declare("dq", durable_queue(), max_length(100))
        .await
        .expect("equivalent redeclare");
    let ch2 = _conn.create_channel().await.expect("channel");
    let err = ch2
        .queue_declare("dq", durable_queue(), max_length(5))
        .await
        .expect_err("x-max-length was kept");
    assert!(
        err.to_string().contains("406") || err.to_string().contains("PRECONDITION"),
        "{err}"
    );
    let ch3 = _conn.create_channel().await.expect("channel");
    assert!(
        ch3.queue_declare("tq", passive, FieldTable::default())
            .await
            .is_err(),
        "transient queue gone"
    );
    let ch4 = _conn.create_channel().await.expect("channel");
    let passive_x = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    assert!(
        ch4.exchange_declare("tx", ExchangeKind::Direct, passive_x, FieldTable::default())
            .await
            .is_err(),
        "transient exchange gone"
    );
    // The bindings route: dx "a.*" -> dq directly, dx-in -> dx -> dq; "gone.#" does not.
    publish_confirmed(&ch, "dx", "a.after", &[b"direct".to_vec()]).await;
    publish_confirmed(&ch, "dx-in", "a.via", &[b"via-e2e".to_vec()]).await;
    publish_confirmed(&ch, "dx", "gone.x", &[b"unbound".to_vec()]).await;
    let bodies: Vec<Vec<u8>> = drain(&ch, "dq").await.into_iter().map(|(b, _)| b).collect();
    assert_eq!(
        bodies,
        vec![b"kept".to_vec(), b"direct".to_vec(), b"via-e2e".to_vec()]
    );
    stop(b);
}
