//! Every vhost is durable, not only `/`: a vhost added with the CLI keeps its durable
//! exchanges, queues, bindings, persistent messages and persistent MQTT sessions across a
//! SIGKILL and a graceful restart, apart from `/`'s queue of the same name; a vhost deleted while
//! the broker is down is forgotten (the broker still starts); and messages delivered but not
//! acknowledged before a crash come back flagged redelivered.

use std::path::Path;
use std::time::Duration;

use conformance::process::{binary, BrokerProcess};
use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS};

use super::support::{channel, drain, publish_confirmed, stop, wait_for, STEP};

/// Runs `ferromq <args> --data-dir <data>` and checks it succeeded.
fn cli(data: &Path, args: &[&str]) {
    let out = std::process::Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("ferromq CLI runs");
    assert!(
        out.status.success(),
        "ferromq {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds vhost `prod` with full permissions for guest.
fn add_prod(data: &Path) {
    cli(data, &["vhost", "add", "prod"]);
    cli(
        data,
        &[
            "permissions",
            "set",
            "guest",
            "--vhost",
            "prod",
            ".*",
            ".*",
            ".*",
        ],
    );
}

async fn channel_in(b: &BrokerProcess, vhost: &str) -> (Connection, Channel) {
    let uri = format!("amqp://guest:guest@127.0.0.1:{}/{vhost}", b.amqp_port);
    let conn = tokio::time::timeout(
        STEP,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    .expect("connect in time")
    .expect("AMQP connection to the vhost accepted");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    }
}

fn mqtt_client(port: u16, id: &str, clean: bool) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean);
    // RabbitMQ's convention: `vhost:user` selects the vhost.
    options.set_credentials("prod:guest", "guest");
    AsyncClient::new(options, 64)
}

async fn connack(events: &mut EventLoop) -> bool {
    let ack = wait_for(events, "CONNACK", |p| match p {
        Packet::ConnAck(a) => Some(a),
        _ => None,
    })
    .await;
    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
    ack.session_present
}

/// Declares in `prod` a durable topic exchange `px`, a durable queue `pq` bound to it with
/// `a.*`, publishes `bodies` there with confirms, and a different message to `/`'s `pq`; then
/// leaves an offline persistent MQTT session `prod-sub` (subscribed to `t/#`) with two
/// acknowledged messages waiting.
async fn fill(b: &BrokerProcess, bodies: &[Vec<u8>]) {
    let (_conn, ch) = channel_in(b, "prod").await;
    ch.exchange_declare(
        "px",
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("px");
    ch.queue_declare("pq", durable_queue(), FieldTable::default())
        .await
        .expect("pq");
    ch.queue_bind(
        "pq",
        "px",
        "a.*",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    publish_confirmed(&ch, "px", "a.b", bodies).await;

    let (_root, root) = channel(b).await;
    root.queue_declare("pq", durable_queue(), FieldTable::default())
        .await
        .expect("/ pq");
    publish_confirmed(&root, "", "pq", &[b"root".to_vec()]).await;

    let (sub, mut events) = mqtt_client(b.mqtt_port, "prod-sub", false);
    assert!(!connack(&mut events).await);
    sub.subscribe("t/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    wait_for(&mut events, "SUBACK", |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;
    sub.disconnect().await.expect("disconnect");
    drop(events);

    let (publ, mut pub_events) = mqtt_client(b.mqtt_port, "prod-pub", true);
    assert!(!connack(&mut pub_events).await);
    for body in ["s1", "s2"] {
        publ.publish("t/x", QoS::AtLeastOnce, false, body.as_bytes().to_vec())
            .await
            .expect("publish");
        wait_for(&mut pub_events, "PUBACK", |p| {
            matches!(p, Packet::PubAck(_)).then_some(())
        })
        .await;
    }
}

/// Everything `fill` left is there, and the binding still routes.
async fn check(b: &BrokerProcess, bodies: &[Vec<u8>]) {
    let (_conn, ch) = channel_in(b, "prod").await;
    let got: Vec<Vec<u8>> = drain(&ch, "pq").await.into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        got,
        bodies,
        "prod's pq kept its confirmed messages\n{}",
        b.log()
    );
    publish_confirmed(&ch, "px", "a.c", &[b"after".to_vec()]).await;
    let got: Vec<Vec<u8>> = drain(&ch, "pq").await.into_iter().map(|(m, _)| m).collect();
    assert_eq!(got, vec![b"after".to_vec()], "px and its binding came back");

    let (_root, root) = channel(b).await;
    let got: Vec<Vec<u8>> = drain(&root, "pq")
        .await
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(got, vec![b"root".to_vec()], "/'s pq is a queue of its own");

    let (sub, mut events) = mqtt_client(b.mqtt_port, "prod-sub", false);
    assert!(
        connack(&mut events).await,
        "the persistent session in prod came back"
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let p = wait_for(&mut events, "PUBLISH", |p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .await;
        seen.push(String::from_utf8(p.payload.to_vec()).expect("utf-8"));
    }
    assert_eq!(seen, ["s1", "s2"]);
    drop(sub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_keeps_its_definitions_messages_and_sessions_across_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_prod(&data);
    let bodies: Vec<Vec<u8>> = (0..200).map(|n| format!("p{n}").into_bytes()).collect();
    let b = BrokerProcess::start(&data, "");
    fill(&b, &bodies).await;
    b.kill();

    let b = BrokerProcess::start(&data, "");
    check(&b, &bodies).await;
    stop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_keeps_its_definitions_messages_and_sessions_across_a_graceful_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_prod(&data);
    let bodies: Vec<Vec<u8>> = (0..20).map(|n| format!("g{n}").into_bytes()).collect();
    let b = BrokerProcess::start(&data, "");
    fill(&b, &bodies).await;
    stop(b);

    let b = BrokerProcess::start(&data, "");
    check(&b, &bodies).await;
    stop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_deleted_while_the_broker_is_down_is_forgotten() {
    let (_dir, data) = prod_filled_then_killed().await;

    cli(&data, &["vhost", "delete", "prod"]);
    let b = BrokerProcess::start(&data, "");
    let uri = format!("amqp://guest:guest@127.0.0.1:{}/prod", b.amqp_port);
    let refused = tokio::time::timeout(
        STEP,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    .expect("answer in time");
    assert!(refused.is_err(), "prod is gone");
    assert!(
        b.log().contains("vhost that no longer exists"),
        "the dropped data is logged:\n{}",
        b.log()
    );
    // Added again, it starts empty, before and after another restart.
    add_prod(&data);
    assert!(!prod_has_pq(&b).await);
    let b = restart_without_pq(b, &data).await;
    stop(b);
}

/// Declares durable queue `pq` in `prod` holding one persistent message.
async fn fill_prod(b: &BrokerProcess) {
    let (_conn, ch) = channel_in(b, "prod").await;
    ch.queue_declare("pq", durable_queue(), FieldTable::default())
        .await
        .expect("pq");
    publish_confirmed(&ch, "", "pq", &[b"old".to_vec()]).await;
}

/// A data directory where `prod` holds queue `pq` with one message, left by a killed broker.
async fn prod_filled_then_killed() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_prod(&data);
    let b = BrokerProcess::start(&data, "");
    fill_prod(&b).await;
    b.kill();
    (dir, data)
}

/// Stops `b` gracefully, starts a broker on `data` again and checks the old queue stayed gone.
async fn restart_without_pq(b: BrokerProcess, data: &Path) -> BrokerProcess {
    stop(b);
    let b = BrokerProcess::start(data, "");
    assert!(
        !prod_has_pq(&b).await,
        "the old queue did not come back\n{}",
        b.log()
    );
    b
}

/// Whether `prod` has queue `pq` (a passive declare; a missing queue closes the channel).
async fn prod_has_pq(b: &BrokerProcess) -> bool {
    let (conn, ch) = channel_in(b, "prod").await;
    let found = ch
        .queue_declare("pq", passive(), FieldTable::default())
        .await
        .is_ok();
    drop(conn);
    found
}

/// A vhost deleted and added again while the broker runs, with no connection in between, is
/// a new vhost: empty at once and after a restart, as in RabbitMQ (it used to come back with
/// the old one's queues and messages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_deleted_and_added_again_while_running_starts_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_prod(&data);
    let b = BrokerProcess::start(&data, "");
    fill_prod(&b).await;
    cli(&data, &["vhost", "delete", "prod"]);
    add_prod(&data);
    assert!(
        !prod_has_pq(&b).await,
        "the old queue is gone at once\n{}",
        b.log()
    );
    let b = restart_without_pq(b, &data).await;
    // The new incarnation keeps what it is given.
    fill_prod(&b).await;
    stop(b);
    let b = BrokerProcess::start(&data, "");
    let (conn, ch) = channel_in(&b, "prod").await;
    let q = ch
        .queue_declare("pq", passive(), FieldTable::default())
        .await
        .expect("the new incarnation's queue is kept");
    assert_eq!(q.message_count(), 1, "only the new message\n{}", b.log());
    drop(conn);
    stop(b);
}

/// The same while the broker is down: the next start drops what the old vhost kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_deleted_and_added_again_while_the_broker_is_down_starts_empty() {
    let (_dir, data) = prod_filled_then_killed().await;
    cli(&data, &["vhost", "delete", "prod"]);
    add_prod(&data);
    let b = BrokerProcess::start(&data, "");
    assert!(
        !prod_has_pq(&b).await,
        "the old queue did not come back\n{}",
        b.log()
    );
    assert!(
        b.log().contains("deleted and added again"),
        "the dropped data is logged:\n{}",
        b.log()
    );
    stop(b);
}

/// Messages a consumer received and did not acknowledge come back after a SIGKILL flagged
/// redelivered, though their `delivered` records may not have reached the disk; after a
/// graceful stop, messages never delivered come back unflagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_unacknowledged_messages_come_back_redelivered_after_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let bodies: Vec<Vec<u8>> = (0..50).map(|n| format!("r{n}").into_bytes()).collect();
    let b = BrokerProcess::start(&data, "");
    {
        let (_conn, ch) = channel(&b).await;
        ch.queue_declare("rq", durable_queue(), FieldTable::default())
            .await
            .expect("rq");
        ch.queue_declare("untouched", durable_queue(), FieldTable::default())
            .await
            .expect("untouched");
        publish_confirmed(&ch, "", "rq", &bodies).await;
        publish_confirmed(&ch, "", "untouched", &[b"u".to_vec()]).await;
        let mut consumer = ch
            .basic_consume(
                "rq",
                "c",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        for body in &bodies {
            let d = tokio::time::timeout(STEP, consumer.next())
                .await
                .expect("delivery in time")
                .expect("a delivery")
                .expect("delivery");
            assert_eq!(&d.data, body);
            assert!(!d.redelivered, "first delivery");
        }
        // Killed with everything delivered and nothing acknowledged.
        b.kill();
    }

    let b = BrokerProcess::start(&data, "");
    let (conn, ch) = channel(&b).await;
    let got = drain(&ch, "rq").await;
    assert_eq!(got.len(), bodies.len(), "{}", b.log());
    for (body, redelivered) in &got {
        assert!(
            *redelivered,
            "{} came back without the redelivered flag",
            String::from_utf8_lossy(body)
        );
    }
    publish_confirmed(&ch, "", "untouched", &[b"v".to_vec()]).await;
    drop(conn);
    stop(b);

    // After a clean stop the flag given at the unclean start holds ("u" may have been
    // delivered before the crash, as far as the broker knows), and what came after has none.
    let b = BrokerProcess::start(&data, "");
    let (conn, ch) = channel(&b).await;
    let got = drain(&ch, "untouched").await;
    assert_eq!(
        got,
        vec![(b"u".to_vec(), true), (b"v".to_vec(), false)],
        "{}",
        b.log()
    );
    drop(conn);
    stop(b);
}
