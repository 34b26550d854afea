//! lapin (AMQP 0-9-1) helpers: connect as guest to the in-process broker, declare, and wait
//! for deliveries with timeouts.

use futures_lite::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};

use ferromq::RunningBroker;

/// The broker's AMQP URI for `guest`/`guest` on vhost `/`.
pub fn uri(broker: &RunningBroker) -> String {
    let addr = broker.amqp_addr().expect("AMQP listener is on");
    format!("amqp://guest:guest@{addr}/%2f")
}

/// Opens a connection as guest.
pub async fn connect(broker: &RunningBroker) -> Connection {
    tokio::time::timeout(
        super::WAIT,
        Connection::connect(&uri(broker), ConnectionProperties::default()),
    )
    .await
    .expect("AMQP connect in time")
    .expect("AMQP connection accepted")
}

/// Opens a connection and a channel.
pub async fn channel(broker: &RunningBroker) -> (Connection, Channel) {
    let conn = connect(broker).await;
    let ch = conn.create_channel().await.expect("channel opens");
    (conn, ch)
}

/// Declares a non-durable queue with default options.
pub async fn queue(ch: &Channel, name: &str) -> lapin::Queue {
    ch.queue_declare(name, QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect("queue declared")
}

/// Declares a durable queue with otherwise default options.
pub async fn durable_queue(ch: &Channel, name: &str) -> lapin::Queue {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(name, durable, FieldTable::default())
        .await
        .expect("durable queue declared")
}

/// Starts a consumer with manual acks.
pub async fn consume(ch: &Channel, queue: &str) -> Consumer {
    ch.basic_consume(
        queue,
        "",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("consume ok")
}

/// The next delivery, within `WAIT`.
pub async fn next(consumer: &mut Consumer) -> lapin::message::Delivery {
    tokio::time::timeout(super::WAIT, consumer.next())
        .await
        .expect("delivery in time")
        .expect("consumer open")
        .expect("delivery ok")
}

/// Asserts no delivery arrives within `QUIET`.
pub async fn nothing(consumer: &mut Consumer) {
    if let Ok(Some(d)) = tokio::time::timeout(super::QUIET, consumer.next()).await {
        panic!("unexpected delivery: {:?}", d.map(|d| d.data));
    }
}
