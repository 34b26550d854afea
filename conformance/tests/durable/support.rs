//! Shared steps of the durability tests: connecting to a broker process, persistent publishes
//! with confirms, draining a queue, stopping the broker cleanly.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use conformance::process::BrokerProcess;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, PubAck, PubRec, QoS};

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
    expect_acks(confirms).await;
}

/// Waits for each of `confirms` (within `STEP`) and checks it is an ack.
pub async fn expect_acks(confirms: impl IntoIterator<Item = PublisherConfirm>) {
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

/// Fails unless every message in `wanted` (confirmed or acknowledged before a crash) is in
/// `seen` (delivered after the restart), naming a few that are not and the broker's log.
pub fn assert_none_lost(
    wanted: &HashSet<String>,
    seen: &HashMap<String, u32>,
    context: &str,
    b: &BrokerProcess,
) {
    let missing: Vec<&String> = wanted.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{context}: {} messages lost, e.g. {:?}\n{}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        b.log()
    );
}

/// SIGKILL now.
pub fn sigkill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// An MQTT 3.1.1 client (clean session) publishing QoS 1 messages until its connection dies:
/// message `n` goes to `message(n).0` with body `message(n).1`. Returns the bodies handed to the
/// socket and those a PUBACK acknowledged.
pub async fn mqtt_publish_until_dead(
    port: u16,
    client_id: &str,
    message: impl Fn(u64) -> (String, String) + Send + Sync + 'static,
) -> (HashSet<String>, HashSet<String>) {
    mqtt_publish_qos_until_dead(port, client_id, move |n| {
        let (topic, body) = message(n);
        (topic, body, QoS::AtLeastOnce)
    })
    .await
}

/// `mqtt_publish_until_dead` with each message's QoS from `message(n).2`: a QoS 2 message
/// counts as acknowledged at its PUBREC (where the broker's promise starts). rumqttc sends
/// publishes in the order they were queued, so the n-th `Outgoing::Publish` is message n, and
/// its packet id maps the answer back.
pub async fn mqtt_publish_qos_until_dead(
    port: u16,
    client_id: &str,
    message: impl Fn(u64) -> (String, String, QoS) + Send + Sync + 'static,
) -> (HashSet<String>, HashSet<String>) {
    let message = Arc::new(message);
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(64);
    let (client, mut events) = AsyncClient::new(options, 128);
    let publisher = {
        let message = Arc::clone(&message);
        tokio::spawn(async move {
            for n in 0.. {
                let (topic, body, qos) = message(n);
                if client
                    .publish(topic, qos, false, body.into_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    let (mut sent, mut acked) = (HashSet::new(), HashSet::new());
    let mut next = 0u64;
    let mut in_flight: HashMap<u16, String> = HashMap::new();
    loop {
        match tokio::time::timeout(STEP, events.poll()).await {
            Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                let (_, body, _) = message(next);
                next += 1;
                sent.insert(body.clone());
                in_flight.insert(pkid, body);
            }
            Ok(Ok(Event::Incoming(Packet::PubAck(PubAck { pkid, .. }))))
            | Ok(Ok(Event::Incoming(Packet::PubRec(PubRec { pkid, .. })))) => {
                if let Some(body) = in_flight.remove(&pkid) {
                    acked.insert(body);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    publisher.abort();
    (sent, acked)
}

/// Polls `events` until `pick` takes an incoming packet, for at most `STEP`; panics naming
/// `what` if the connection fails or time runs out.
pub async fn wait_for<T>(
    events: &mut EventLoop,
    what: &str,
    mut pick: impl FnMut(Packet) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(Event::Incoming(p))) => {
                if let Some(v) = pick(p) {
                    return v;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("connection failed waiting for {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Declares the durable queue `queue` and binds it to `amq.topic` with `key` (AMQP spelling),
/// so MQTT publishes to the matching topics are kept in it.
pub async fn durable_queue_on_topic(ch: &Channel, queue: &str, key: &str) {
    use lapin::options::{QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    ch.queue_declare(
        queue,
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("queue");
    ch.queue_bind(
        queue,
        "amq.topic",
        key,
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
}

/// MQTT 5 will properties with only a Will Delay Interval of `secs`.
pub fn will_delayed(secs: u32) -> rumqttc::v5::mqttbytes::v5::LastWillProperties {
    rumqttc::v5::mqttbytes::v5::LastWillProperties {
        delay_interval: Some(secs),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: vec![],
    }
}
