//! Wall-clock time across a crash: a persistent session's expiry counts from when it went
//! offline and a delayed will from when it was set, not from the restart. A session whose
//! expiry passed while the broker was down is gone when its client comes back
//! [MQTT-3.1.2-23]; one with a long expiry is still present; a will that fell due while the
//! broker was down is published as soon as it is back.

use std::time::{Duration, Instant};

use conformance::process::BrokerProcess;
use rumqttc::v5::mqttbytes::v5::{ConnectProperties, LastWill, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

use super::support::{channel, drain, durable_queue_on_topic, sigkill, stop, will_delayed};

/// The short expiry; the broker is down for longer than it.
const SHORT_EXPIRY: u32 = 4;

fn options(port: u16, id: &str, expiry: u32) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_start(false);
    let mut props = ConnectProperties::new();
    props.session_expiry_interval = Some(expiry);
    o.set_connect_properties(props);
    o
}

/// Connects and returns the CONNACK's session present flag, with the client.
async fn connect(o: MqttOptions) -> (bool, AsyncClient, EventLoop) {
    let (client, mut events) = AsyncClient::new(o, 16);
    let present = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.session_present,
                Ok(_) => {}
                Err(e) => panic!("connection failed before CONNACK: {e}"),
            }
        }
    })
    .await
    .expect("CONNACK in time");
    (present, client, events)
}

/// Subscribes, waits for SUBACK, then DISCONNECTs and waits for the broker to close the
/// socket (it records the offline session before that).
async fn subscribe_and_leave(client: AsyncClient, mut events: EventLoop, filter: &str) {
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    client.disconnect().await.expect("disconnect");
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while events.poll().await.is_ok() {}
    })
    .await;
    assert!(closed.is_ok(), "the broker closed the connection in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_counts_from_the_disconnect_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    let short = options(b.mqtt_port, "expires-soon", SHORT_EXPIRY);
    let long = options(b.mqtt_port, "expires-late", 3600);
    let (present, client, events) = connect(short).await;
    assert!(!present);
    subscribe_and_leave(client, events, "exp/short").await;
    let offline = Instant::now();
    let (present, client, events) = connect(long).await;
    assert!(!present);
    subscribe_and_leave(client, events, "exp/long").await;
    sigkill(b.pid());
    b.kill();

    // Down until well after the short expiry ran out (counted from the restart, it would
    // still have its whole interval left).
    let back = offline + Duration::from_secs(u64::from(SHORT_EXPIRY)) + Duration::from_millis(1500);
    tokio::time::sleep_until(back.into()).await;
    let b = BrokerProcess::start(&data, "");
    let (present, client, events) = connect(options(b.mqtt_port, "expires-soon", 60)).await;
    assert!(
        !present,
        "a session whose expiry passed while the broker was down is discarded\n{}",
        b.log()
    );
    drop((client, events));
    let (present, client, events) = connect(options(b.mqtt_port, "expires-late", 3600)).await;
    assert!(present, "a long-lived session is kept\n{}", b.log());
    drop((client, events));
    stop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_due_while_the_broker_was_down_is_published_at_start() {
    const DELAY: u32 = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, "");
    let (_conn, ch) = channel(&b).await;
    durable_queue_on_topic(&ch, "due-wills", "due.#").await;
    let mut o = options(b.mqtt_port, "due-willer", 3600);
    o.set_last_will(LastWill::new(
        "due/dev",
        b"fell-due".to_vec(),
        QoS::AtLeastOnce,
        false,
        Some(will_delayed(DELAY)),
    ));
    let (_, client, events) = connect(o).await;
    // Gone without DISCONNECT: the will's delay starts.
    drop((client, events));
    let gone = Instant::now();
    let log = data.join("definitions.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read(&log)
        .map(|bytes| bytes.windows(8).any(|w| w == b"fell-due"))
        .unwrap_or(false)
    {
        assert!(
            Instant::now() < deadline,
            "the will was never recorded\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigkill(b.pid());
    b.kill();

    let back = gone + Duration::from_secs(u64::from(DELAY)) + Duration::from_millis(1500);
    tokio::time::sleep_until(back.into()).await;
    let b = BrokerProcess::start(&data, "");
    let started = Instant::now();
    let (_conn, ch) = channel(&b).await;
    let mut got = Vec::new();
    // Counted from the restart the will would come DELAY seconds from now; it is due already.
    while got.is_empty() && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = drain(&ch, "due-wills").await;
    }
    assert_eq!(
        got.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
        vec![b"fell-due".to_vec()],
        "the will that fell due while the broker was down, at once\n{}",
        b.log()
    );
    stop(b);
}
