//! MQTT's side of the durability promise: a QoS 1 PUBLISH whose PUBACK arrived survives a
//! SIGKILL of the broker at any instant when it was routed to a durable queue. Rounds of: an
//! MQTT 3.1.1 client publishing QoS 1 (many in flight) to topics an AMQP durable queue is bound
//! to on `amq.topic`, until the broker is killed at a random moment; restart; drain the queue.
//! Every acknowledged message must be there, nothing that was never published, nothing twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use conformance::process::{BrokerProcess, Rng};
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use super::support::{assert_none_lost, channel, drain, mqtt_publish_until_dead, sigkill, stop};

const QUEUE: &str = "mqtt-crash";
const ROUNDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_qos1_publishes_survive_sigkill_at_random_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = "[store]\nsegment_bytes = 65536\n";
    let mut rng = Rng::new();
    let mut sent: HashSet<String> = HashSet::new();
    let mut acked: HashSet<String> = HashSet::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for round in 0..ROUNDS {
        let b = BrokerProcess::start(&data, config);
        let (conn, ch) = channel(&b).await;
        ch.queue_declare(
            QUEUE,
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("durable queue");
        ch.queue_bind(
            QUEUE,
            "amq.topic",
            "crash.#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
        let pid = b.pid();
        let delay = Duration::from_millis(rng.range(100, 700));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            sigkill(pid);
        });
        let (s, a) =
            mqtt_publish_until_dead(b.mqtt_port, &format!("crash-pub-{round}"), move |n| {
                (format!("crash/r{round}/{}", n % 7), format!("r{round}-{n}"))
            })
            .await;
        killer.join().expect("killer");
        drop(conn);
        b.kill();
        eprintln!(
            "round {round}: killed after {delay:?}: {} sent, {} acknowledged",
            s.len(),
            a.len()
        );
        sent.extend(s);
        acked.extend(a);

        let b = BrokerProcess::start(&data, config);
        let (conn, ch) = channel(&b).await;
        for (body, _) in drain(&ch, QUEUE).await {
            let id = String::from_utf8(body).expect("utf-8 id");
            assert!(sent.contains(&id), "{id} was never published");
            let n = seen.entry(id.clone()).or_default();
            *n += 1;
            // Only an unacknowledged message may come twice: the client re-sends it (DUP)
            // when it was stored but its PUBACK died with the broker. Here nothing re-sends.
            assert_eq!(*n, 1, "{id} delivered twice");
        }
        assert_none_lost(&acked, &seen, &format!("round {round}: acknowledged"), &b);
        let _ = conn.close(200, "bye").await;
        stop(b);
    }
    assert!(
        acked.len() > 100,
        "the test acknowledged too little to mean much: {}",
        acked.len()
    );
}

/// Retained messages acknowledged before a SIGKILL are retained after the restart: replaced
/// ones by their last value, deleted ones (empty payload) gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_retained_messages_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    let mut options = MqttOptions::new("retainer", "127.0.0.1", b.mqtt_port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 64);
    let writes: [(&str, &[u8]); 5] = [
        ("ret/a", b"a1"),
        ("ret/b", b"b1"),
        ("ret/a", b"a2"),
        ("ret/c", b"c1"),
        ("ret/c", b""),
    ];
    for (topic, body) in writes {
        client
            .publish(topic, QoS::AtLeastOnce, true, body.to_vec())
            .await
            .expect("publish");
    }
    let mut acks = 0;
    while acks < writes.len() {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acks += 1,
            Ok(Ok(_)) => {}
            other => panic!("publisher failed: {other:?}"),
        }
    }
    sigkill(b.pid());
    b.kill();

    let b = BrokerProcess::start(&data, "");
    let mut options = MqttOptions::new("reader", "127.0.0.1", b.mqtt_port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 64);
    client
        .subscribe("ret/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    client
        .subscribe("end", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    let mut got = Vec::new();
    let mut subacks = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                subacks += 1;
                if subacks == 2 {
                    // Both SUBACKs are in: the retained messages of `ret/#` came before.
                    client
                        .publish("end", QoS::AtMostOnce, false, b"".to_vec())
                        .await
                        .expect("publish");
                }
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == "end" => break,
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                assert!(p.retain, "{} not flagged retained", p.topic);
                got.push((p.topic.clone(), p.payload.to_vec()));
            }
            Ok(Ok(_)) => {}
            other => panic!("reader failed: {other:?}\n{}", b.log()),
        }
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ret/a".to_string(), b"a2".to_vec()),
            ("ret/b".to_string(), b"b1".to_vec())
        ],
        "{}",
        b.log()
    );
    stop(b);
}
