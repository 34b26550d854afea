//! Shared steps of the durability tests: connecting to a broker process, persistent publishes
//! with confirms, draining a queue, stopping the broker cleanly.

use std::time::Duration;

use conformance::process::BrokerProcess;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// How long one step may take.
pub const STEP: Duration = Duration::from_secs(10);

/// A connection and a channel to the broker process.
pub async fn channel(b: &BrokerProcess) -> (Connection, Channel) {
    let conn = tokio::time::timeout(
        STEP,
        Connection::connect(&b.amqp_uri(), ConnectionProperties::default()),
    )
    .await
    .expect("connect in time")
    .expect("AMQP connection accepted");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// Delivery mode 2.
pub fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

/// Publishes `bodies` persistently to `queue` (default exchange) in confirm mode and waits for
/// every confirm to be an ack.
pub async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, bodies: &[Vec<u8>]) {
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let mut confirms = Vec::with_capacity(bodies.len());
    for body in bodies {
        confirms.push(
            ch.basic_publish(
                exchange,
                key,
                BasicPublishOptions::default(),
                body,
                persistent(),
            )
            .await
            .expect("publish"),
        );
    }
    for c in confirms {
        let got = tokio::time::timeout(STEP, c)
            .await
            .expect("confirm in time")
            .expect("confirm");
        assert_eq!(got, Confirmation::Ack(None));
    }
}

/// Takes every message from `queue` with basic.get and acks it; returns (body, redelivered).
pub async fn drain(ch: &Channel, queue: &str) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    loop {
        let got = tokio::time::timeout(STEP, ch.basic_get(queue, BasicGetOptions::default()))
            .await
            .expect("get in time")
            .expect("basic.get");
        let Some(m) = got else {
            return out;
        };
        let d = m.delivery;
        ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await
            .expect("ack");
        out.push((d.data, d.redelivered));
    }
}

/// SIGTERM, then waits for a clean exit (which writes out the last acks).
pub fn stop(b: BrokerProcess) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &b.pid().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok);
    b.wait_exit(STEP);
}

/// SIGKILL now.
pub fn sigkill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}
