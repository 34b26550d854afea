//! MQTT 5 shared subscriptions across a crash (MQTT 5.0 section 4.8.2). A QoS 1 message
//! acknowledged to its publisher while it waits in a shared group whose members are offline
//! persistent sessions survives SIGKILLs: after the restart the members reconnect and together
//! receive every acknowledged message. A group whose members were all clean sessions is gone
//! after a restart (its queue too), in `/` and in another vhost, while a group with a persistent
//! member keeps its queue and messages, also when a clean session started the group.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use conformance::process::{binary, BrokerProcess, Rng};
use conformance::v5::{connect_with, Client};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use rumqttc::v5::mqttbytes::v5::{ConnectProperties, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::MqttOptions;

use super::support::{assert_none_lost, mqtt_publish_until_dead, sigkill, stop, STEP};

const MEMBERS: [&str; 2] = ["shared-crash-a", "shared-crash-b"];
const ROUNDS: u32 = 3;
/// Room for every round's messages: the group's queue drops its oldest beyond this.
const CONFIG: &str = "[store]\nsegment_bytes = 65536\n[mqtt]\nmax_queued_messages = 1000000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_waiting_in_a_shared_group_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut b = BrokerProcess::start(&data, CONFIG);
    for id in MEMBERS {
        let mut m = member(b.mqtt_port, id, "", Session::Persistent, true).await;
        assert!(!m.connack.session_present);
        subscribe(&mut m, "$share/g/crash/+").await;
        m.client.disconnect().await.expect("disconnect");
        // Offline now: the session (and its membership) outlives the connection.
    }
    let (mut sent, mut acked) = (HashSet::new(), HashSet::new());
    let mut rng = Rng::new();
    for round in 0..ROUNDS {
        let pid = b.pid();
        let delay = Duration::from_millis(rng.range(150, 600));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            sigkill(pid);
        });
        let (s, a) = mqtt_publish_until_dead(b.mqtt_port, "shared-crash-pub", move |n| {
            (format!("crash/{}", n % 3), format!("r{round}-m{n}"))
        })
        .await;
        killer.join().expect("killer");
        b.kill();
        eprintln!(
            "round {round}: killed after {delay:?}: {} sent, {} acknowledged",
            s.len(),
            a.len()
        );
        assert!(a.len() > 20, "too little acknowledged: {}", a.len());
        sent.extend(s);
        acked.extend(a);
        b = BrokerProcess::start(&data, CONFIG);
    }

    let mut members = Vec::new();
    for id in MEMBERS {
        let m = member(b.mqtt_port, id, "", Session::Persistent, false).await;
        assert!(
            m.connack.session_present,
            "{id}: session present\n{}",
            b.log()
        );
        members.push(m);
    }
    let seen = receive_until(&mut members, &acked, &sent).await;
    assert_none_lost(&acked, &seen, "shared group after SIGKILLs", &b);
    // The group still works after the restart: a new message reaches one member.
    let publ = member(b.mqtt_port, "shared-crash-pub2", "", Session::Clean, true).await;
    publ.client
        .publish("crash/0", QoS::AtLeastOnce, false, b"after".to_vec())
        .await
        .expect("publish");
    let wanted: HashSet<String> = ["after".to_string()].into();
    let after = receive_until(&mut members, &wanted, &wanted).await;
    assert_eq!(after.get("after"), Some(&1), "{}", b.log());
    drop(publ);
    drop(members);
    stop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_clean_sessions_is_gone_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_vhost(&data, "dev");
    let b = BrokerProcess::start(&data, "");
    // In `/` and in `dev`: group `c` whose only member is a clean session, online when the
    // broker dies (its queue exists then, durable), and group `p` whose only member is a
    // persistent session, offline, holding the message published meanwhile.
    let mut online = Vec::new();
    for vhost in ["", "dev:"] {
        let mut kept = member(b.mqtt_port, "kept-member", vhost, Session::Persistent, true).await;
        subscribe(&mut kept, "$share/p/held").await;
        kept.client.disconnect().await.expect("disconnect");
        let mut clean = member(b.mqtt_port, "clean-member", vhost, Session::Clean, true).await;
        subscribe(&mut clean, "$share/c/held").await;
        let mut publ = member(b.mqtt_port, "held-pub", vhost, Session::Clean, true).await;
        publ.client
            .publish("held", QoS::AtLeastOnce, false, b"x".to_vec())
            .await
            .expect("publish");
        publ.next("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
        clean.publish().await;
        online.push(clean);
    }
    sigkill(b.pid());
    b.kill();
    drop(online);

    let b = BrokerProcess::start(&data, "");
    for vhost in ["%2f", "dev"] {
        let uri = format!("amqp://guest:guest@127.0.0.1:{}/{vhost}", b.amqp_port);
        let conn = tokio::time::timeout(
            STEP,
            lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()),
        )
        .await
        .expect("connect in time")
        .expect("AMQP connection");
        for (queue, held) in [
            ("mqtt-shared-p-held", Some(1)),
            ("mqtt-shared-c-held", None),
        ] {
            // A passive declare of a missing queue closes the channel: one channel each.
            let ch = conn.create_channel().await.expect("channel");
            let got = ch
                .queue_declare(
                    queue,
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await;
            match (got, held) {
                (Ok(q), Some(n)) => assert_eq!(q.message_count(), n, "{vhost} {queue}"),
                (Err(e), None) => {
                    assert!(e.to_string().contains("NOT_FOUND"), "{vhost} {queue}: {e}")
                }
                (got, held) => panic!(
                    "{vhost} {queue}: expected {held:?} held, got {:?}\n{}",
                    got.map(|q| q.message_count()),
                    b.log()
                ),
            }
        }
    }
    stop(b);
}

/// A persistent member rejoins its group after a restart with another `max_queued_messages`:
/// the group's queue is taken over as it was (its arguments from its creation, as a persistent
/// session's queue), not refused as declared with other arguments, and the message it held
/// arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_rejoined_after_max_queued_messages_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "[mqtt]\nmax_queued_messages = 1000\n");
    let mut m = member(b.mqtt_port, "rejoin-member", "", Session::Persistent, true).await;
    subscribe(&mut m, "$share/r/limits").await;
    m.client.disconnect().await.expect("disconnect");
    let mut publ = member(b.mqtt_port, "rejoin-pub", "", Session::Clean, true).await;
    publ.client
        .publish("limits", QoS::AtLeastOnce, false, b"kept".to_vec())
        .await
        .expect("publish");
    publ.next("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await;
    stop(b);

    // The session comes back with its subscription: the broker rejoins the group at start.
    let b = BrokerProcess::start(&data, "[mqtt]\nmax_queued_messages = 2000\n");
    let mut m = member(b.mqtt_port, "rejoin-member", "", Session::Persistent, false).await;
    let got = tokio::time::timeout(STEP, m.publish())
        .await
        .unwrap_or_else(|_| panic!("the held message did not arrive\n{}", b.log()));
    assert_eq!(&got.payload[..], b"kept");
    assert!(
        !b.log().contains("inequivalent"),
        "the rejoin was refused:\n{}",
        b.log()
    );
    stop(b);
}

/// A group started by a clean session writes nothing, until a persistent session joins: from
/// then on what it acknowledges survives a crash, also once the clean member left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_writes_once_a_persistent_member_joined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    let mut clean = member(b.mqtt_port, "mixed-clean", "", Session::Clean, true).await;
    subscribe(&mut clean, "$share/m/mixed").await;
    let mut kept = member(b.mqtt_port, "mixed-kept", "", Session::Persistent, true).await;
    subscribe(&mut kept, "$share/m/mixed").await;
    kept.client.disconnect().await.expect("disconnect");
    // The clean member's session ends with its connection: it leaves the group.
    clean.client.disconnect().await.expect("disconnect");
    drop(clean);
    let mut publ = member(b.mqtt_port, "mixed-pub", "", Session::Clean, true).await;
    let bodies: HashSet<String> = (0..50).map(|n| format!("mixed-{n}")).collect();
    for body in &bodies {
        publ.client
            .publish("mixed", QoS::AtLeastOnce, false, body.clone().into_bytes())
            .await
            .expect("publish");
    }
    for _ in 0..bodies.len() {
        publ.next("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
    }
    sigkill(b.pid());
    b.kill();
    drop(publ);

    let b = BrokerProcess::start(&data, "");
    let kept = member(b.mqtt_port, "mixed-kept", "", Session::Persistent, false).await;
    assert!(kept.connack.session_present, "{}", b.log());
    let seen = receive_until(&mut [kept], &bodies, &bodies).await;
    assert_none_lost(&bodies, &seen, "group joined by a persistent member", &b);
    stop(b);
}

/// Adds `vhost` with full permissions for guest (CLI, broker down).
fn add_vhost(data: &Path, vhost: &str) {
    for args in [
        vec!["vhost", "add", vhost],
        vec![
            "permissions",
            "set",
            "guest",
            "--vhost",
            vhost,
            ".*",
            ".*",
            ".*",
        ],
    ] {
        let out = std::process::Command::new(binary())
            .args(&args)
            .arg("--data-dir")
            .arg(data)
            .output()
            .expect("ferromq CLI runs");
        assert!(out.status.success(), "ferromq {args:?}: {out:?}");
    }
}

/// What kind of session a test client has.
#[derive(Clone, Copy)]
enum Session {
    /// Session expiry 300 s: outlives its connection.
    Persistent,
    /// Session expiry 0: ends with its connection.
    Clean,
}

/// An MQTT 5 client with a `session`, starting afresh (`fresh`, Clean Start) or resuming;
/// `vhost` prefixes the user name (`dev:`).
async fn member(port: u16, id: &str, vhost: &str, session: Session, fresh: bool) -> Client {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_start(fresh);
    o.set_credentials(format!("{vhost}guest"), "guest");
    if let Session::Persistent = session {
        let mut props = ConnectProperties::new();
        props.session_expiry_interval = Some(300);
        o.set_connect_properties(props);
    }
    connect_with(o).await
}

async fn subscribe(c: &mut Client, filter: &str) {
    c.client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let ack = c
        .next("SUBACK", |p| match p {
            Packet::SubAck(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!(ack.return_codes.len(), 1);
    assert!(
        matches!(
            ack.return_codes[0],
            rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
        ),
        "SUBACK {ack:?}"
    );
}

/// Takes PUBLISHes from every member until each of `wanted` came (or 30 s passed); fails on a
/// body that was never sent. Returns how often each body came.
async fn receive_until(
    members: &mut [Client],
    wanted: &HashSet<String>,
    sent: &HashSet<String>,
) -> HashMap<String, u32> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while wanted.iter().any(|w| !seen.contains_key(w)) {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        for m in members.iter_mut() {
            let wait = Duration::from_millis(20);
            while let Ok(Some(p)) = tokio::time::timeout(wait, m.events.recv()).await {
                match p {
                    Some(Packet::Publish(p)) => {
                        let body = String::from_utf8(p.payload.to_vec()).expect("utf-8");
                        assert!(sent.contains(&body), "{body} was never published");
                        *seen.entry(body).or_default() += 1;
                    }
                    Some(_) => {}
                    None => panic!("a member's connection failed"),
                }
            }
        }
    }
    seen
}
