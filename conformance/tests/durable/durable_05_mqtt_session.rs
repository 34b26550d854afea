//! Persistent MQTT sessions survive a crash: a clean-session-0 subscriber that is offline while
//! a QoS 1 publisher is acknowledged, then the broker is SIGKILLed at a random moment, finds on
//! reconnecting after the restart its session present, every acknowledged message, and its
//! subscription still working.

use std::collections::HashSet;
use std::time::Duration;

use conformance::process::{BrokerProcess, Rng};
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS};

use super::support::{mqtt_publish_until_dead, sigkill, stop, wait_for, will_delayed};

const SUBSCRIBER: &str = "crash-session";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_and_its_acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Room for everything a fast run acknowledges: beyond `max_queued_messages` (10 000 by
    // default) the session's queue refuses newer messages, acknowledged all the same.
    let config = "[store]\nsegment_bytes = 65536\n[mqtt]\nmax_queued_messages = 1000000\n";
    let b = BrokerProcess::start(&data, config);
    let (sub, mut sub_events) = client(b.mqtt_port, SUBSCRIBER, false);
    wait_connack(&mut sub_events, false).await;
    sub.subscribe("sess/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    wait_for(&mut sub_events, "SUBACK", |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;
    sub.disconnect().await.expect("disconnect");
    drop(sub_events);

    let pid = b.pid();
    let delay = Duration::from_millis(Rng::new().range(150, 600));
    let killer = std::thread::spawn(move || {
        std::thread::sleep(delay);
        sigkill(pid);
    });
    let (sent, acked) = mqtt_publish_until_dead(b.mqtt_port, "crash-session-pub", |n| {
        (format!("sess/{}", n % 5), format!("m{n}"))
    })
    .await;
    killer.join().expect("killer");
    b.kill();
    eprintln!(
        "killed after {delay:?}: {} sent, {} acknowledged",
        sent.len(),
        acked.len()
    );
    assert!(acked.len() > 50, "too little acknowledged: {}", acked.len());

    let b = BrokerProcess::start(&data, config);
    let (sub, mut sub_events) = client(b.mqtt_port, SUBSCRIBER, false);
    wait_connack(&mut sub_events, true).await;
    // The subscription came back too: a message published now arrives after the backlog.
    let (publ, mut pub_events) = client(b.mqtt_port, "after-restart", true);
    wait_connack(&mut pub_events, false).await;
    publ.publish("sess/end", QoS::AtLeastOnce, false, b"end".to_vec())
        .await
        .expect("publish");
    tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    let mut got: HashSet<String> = HashSet::new();
    loop {
        let p = wait_for(&mut sub_events, "PUBLISH", |p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .await;
        let body = String::from_utf8(p.payload.to_vec()).expect("utf-8");
        if body == "end" {
            break;
        }
        assert!(sent.contains(&body), "{body} was never published");
        assert!(got.insert(body.clone()), "{body} delivered twice");
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !got.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}\n{}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        b.log()
    );
    drop(sub);
    stop(b);
}

fn client(port: u16, id: &str, clean: bool) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean);
    options.set_inflight(64);
    AsyncClient::new(options, 128)
}

async fn wait_connack(events: &mut EventLoop, session_present: bool) {
    let ack = wait_for(events, "CONNACK", |p| match p {
        Packet::ConnAck(a) => Some(a),
        _ => None,
    })
    .await;
    assert_eq!(ack.session_present, session_present, "session present");
}

/// QoS 2 exactly-once across a crash: a PUBLISH acknowledged with PUBREC but not yet released
/// when the broker is SIGKILLed is recognised when the client re-sends it after the restart
/// (same packet id, DUP), so it is routed once in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_packet_id_received_before_a_crash_is_not_routed_twice() {
    use super::support::{channel, drain, durable_queue_on_topic};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn connect(port: u16) -> (TcpStream, u8) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
        // CONNECT 3.1.1, clean session 0, keep alive 60, client id "q2pub".
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x00, 0, 60, 0, 5];
        body.extend_from_slice(b"q2pub");
        let mut packet = vec![0x10, body.len() as u8];
        packet.extend(body);
        s.write_all(&packet).await.expect("CONNECT");
        let connack = read(&mut s, 4).await;
        assert_eq!((connack[0], connack[3]), (0x20, 0), "CONNACK {connack:?}");
        (s, connack[2] & 1)
    }
    async fn read(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        buf
    }
    fn publish(dup: bool) -> Vec<u8> {
        let mut body = vec![0, 4];
        body.extend_from_slice(b"q2/x");
        body.extend_from_slice(&[0, 7]);
        body.extend_from_slice(b"once");
        let mut packet = vec![if dup { 0x3C } else { 0x34 }, body.len() as u8];
        packet.extend(body);
        packet
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    durable_queue_on_topic(&ch, "q2", "q2.#").await;
    let (mut s, present) = connect(b.mqtt_port).await;
    assert_eq!(present, 0);
    s.write_all(&publish(false)).await.expect("PUBLISH");
    assert_eq!(read(&mut s, 4).await, vec![0x50, 2, 0, 7], "PUBREC");
    sigkill(b.pid());
    b.kill();

    let b = BrokerProcess::start(&data, "");
    let (mut s, present) = connect(b.mqtt_port).await;
    assert_eq!(present, 1, "the session survived");
    // [MQTT-4.3.3-...] the sender re-sends the unreleased PUBLISH with DUP set.
    s.write_all(&publish(true)).await.expect("PUBLISH again");
    assert_eq!(read(&mut s, 4).await, vec![0x50, 2, 0, 7], "PUBREC again");
    s.write_all(&[0x62, 2, 0, 7]).await.expect("PUBREL");
    assert_eq!(read(&mut s, 4).await, vec![0x70, 2, 0, 7], "PUBCOMP");
    let (_conn, ch) = channel(&b).await;
    let got: Vec<Vec<u8>> = drain(&ch, "q2").await.into_iter().map(|(m, _)| m).collect();
    assert_eq!(got, vec![b"once".to_vec()], "{}", b.log());
    stop(b);
}

/// A v5 will waiting out its Will Delay Interval when the broker is SIGKILLed is published
/// after the restart (once the delay passed again), and only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_will_pending_at_a_crash_is_published_after_the_restart() {
    use super::support::{channel, drain, durable_queue_on_topic};
    use rumqttc::v5::mqttbytes::v5::{ConnectProperties, LastWill};
    use rumqttc::v5::mqttbytes::QoS as Q5;

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    durable_queue_on_topic(&ch, "wills", "wills.#").await;
    let mut options = rumqttc::v5::MqttOptions::new("willer", "127.0.0.1", b.mqtt_port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_start(false);
    let mut props = ConnectProperties::new();
    props.session_expiry_interval = Some(300);
    options.set_connect_properties(props);
    let will_props = will_delayed(2);
    options.set_last_will(LastWill::new(
        "wills/dev",
        b"gone".to_vec(),
        Q5::AtLeastOnce,
        false,
        Some(will_props),
    ));
    let (client, mut events) = rumqttc::v5::AsyncClient::new(options, 16);
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(
                _,
            ))) = events.poll().await
            {
                return;
            }
        }
    })
    .await;
    assert!(connected.is_ok(), "CONNACK in time");
    // Gone without DISCONNECT: the will's delay starts.
    drop(events);
    drop(client);
    // The pending will is recorded with the session (fsynced) before the broker answers
    // anyone; watch the definitions log for it rather than sleeping.
    let log = data.join("definitions.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read(&log)
        .map(|bytes| bytes.windows(4).any(|w| w == b"gone"))
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the will was never recorded\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigkill(b.pid());
    b.kill();

    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the will never came\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = drain(&ch, "wills").await;
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, b"gone".to_vec());
    // And not again (its record went when it was published).
    stop(b);
    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(drain(&ch, "wills").await.is_empty(), "the will came twice");
    stop(b);
}
