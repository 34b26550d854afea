//! Outgoing QoS 2 exactly-once across crashes. A receiver with a persistent session (clean
//! session 0, subscribed at QoS 2) follows MQTT's "Method A" strictly: it hands a message on
//! when the PUBLISH arrives and then only remembers the packet identifier until PUBREL; a
//! PUBLISH with a remembered identifier is acknowledged and not handed on again
//! [MQTT-4.3.3-9]. It keeps that set across reconnects, as a real client's session does. A
//! publisher sends numbered QoS 2 (and some QoS 1) messages while the broker is SIGKILLed at
//! random points, several rounds. After the last restart the receiver must have handed on every
//! acknowledged message, each QoS 2 one exactly once (and no QoS 2 message at all twice), and
//! never have seen an identifier reused for another message before its PUBREL (that message
//! would be lost to it).
//!
//! The receiver speaks raw MQTT 3.1.1 over its socket (its packets are encoded here, not with
//! ferromq's codec) so that it behaves exactly as described.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use conformance::frame;
use conformance::process::{BrokerProcess, Rng};
use rumqttc::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::support::{mqtt_publish_qos_until_dead, sigkill, stop};

const RECEIVER: &str = "qos2-out-rx";
const ROUNDS: u64 = 4;

/// The receiver's session state, kept across connections, and what it observed.
#[derive(Default)]
struct Receiver {
    /// QoS 2 identifiers received and not yet released, with the body they carried.
    unreleased: HashMap<u16, String>,
    /// Times each body was handed on.
    delivered: HashMap<String, u32>,
    /// An unreleased identifier arrived with another message's body.
    reused: Vec<String>,
    /// PUBLISH packets with a remembered identifier (re-sends), and how many had DUP set.
    resent: u64,
    resent_dup: u64,
    /// PUBREL packets received.
    pubrels: u64,
    /// CONNACK session present, per connection.
    session_present: Vec<bool>,
    /// How the last connection ended (for failure messages).
    ended: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_qos2_is_delivered_exactly_once_across_sigkills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // A small memory window, so recovered backlogs are read back from the log too; no
    // `max_queued_messages` refusals (those are dropped by design, acknowledged or not).
    let config = "[store]\nsegment_bytes = 262144\nmemory_window = 300\n\
                  [mqtt]\nmax_queued_messages = 1000000\n";
    let mut rng = Rng::new();
    let mut rx = Receiver::default();
    let (mut acked_q2, mut acked_q1, mut sent) = (HashSet::new(), HashSet::new(), HashSet::new());
    for round in 0..ROUNDS {
        let b = BrokerProcess::start(&data, config);
        let (ready_tx, ready_rx) = oneshot::channel();
        let port = b.mqtt_port;
        let receiving =
            tokio::spawn(async move { receive(port, rx, round == 0, Some(ready_tx), None).await });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("receiver ready in time")
            .expect("receiver connected");
        let pid = b.pid();
        let delay = Duration::from_millis(rng.range(300, 1500));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            sigkill(pid);
        });
        let (s, q2, q1) = publish_until_dead(b.mqtt_port, round).await;
        killer.join().expect("killer");
        b.kill();
        rx = receiving.await.expect("receiver task");
        eprintln!(
            "round {round}: killed after {delay:?}; {} sent, {} QoS 2 + {} QoS 1 acknowledged; \
             receiver holds {} unreleased ids",
            s.len(),
            q2.len(),
            q1.len(),
            rx.unreleased.len()
        );
        sent.extend(s);
        acked_q2.extend(q2);
        acked_q1.extend(q1);
    }
    assert!(
        acked_q2.len() > 100,
        "too little acknowledged: {}",
        acked_q2.len()
    );

    let b = BrokerProcess::start(&data, config);
    let wanted: HashSet<String> = acked_q2.union(&acked_q1).cloned().collect();
    let port = b.mqtt_port;
    let rx = receive(port, rx, false, None, Some(wanted.clone())).await;
    let twice: Vec<(&String, &u32)> = rx
        .delivered
        .iter()
        .filter(|(body, n)| **n > 1 && body.ends_with("q2"))
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|body| !rx.delivered.contains_key(*body))
        .collect();
    eprintln!(
        "receiver: ended {}; {} handed on, {} QoS 2 twice, {} acknowledged missing, {} ids \
         reused before PUBREL, {} re-sent PUBLISH ({} with DUP), {} PUBREL, sessions present {:?}",
        rx.ended,
        rx.delivered.len(),
        twice.len(),
        missing.len(),
        rx.reused.len(),
        rx.resent,
        rx.resent_dup,
        rx.pubrels,
        rx.session_present
    );
    assert!(
        rx.session_present.iter().skip(1).all(|p| *p),
        "the session must be present after every restart: {:?}",
        rx.session_present
    );
    assert!(
        rx.reused.is_empty(),
        "identifiers reused before PUBREL (those messages are lost to the receiver): {:?}",
        &rx.reused[..rx.reused.len().min(5)]
    );
    assert_eq!(
        rx.resent, rx.resent_dup,
        "a re-sent PUBLISH must have DUP set"
    );
    // Every identifier the receiver held at a crash was settled after it: re-sent as PUBLISH
    // (then released) or as PUBREL; one never released would stay unusable for the session.
    assert!(
        rx.unreleased.is_empty(),
        "identifiers never released: {:?}",
        rx.unreleased
    );
    assert!(
        twice.is_empty(),
        "{} QoS 2 messages handed on more than once, e.g. {:?}\n{}",
        twice.len(),
        &twice[..twice.len().min(5)],
        b.log()
    );
    if !missing.is_empty() {
        let (_conn, ch) = super::support::channel(&b).await;
        let q = ch
            .queue_declare(
                &format!("mqtt-subscription-{RECEIVER}qos1"),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("the session's queue exists");
        panic!(
            "{} acknowledged messages lost, e.g. {:?}; the session's queue holds {} ready, \
             {} consumers\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            q.message_count(),
            q.consumer_count(),
            b.log()
        );
    }
    let unknown: Vec<&String> = rx
        .delivered
        .keys()
        .filter(|body| !sent.contains(*body))
        .collect();
    assert!(unknown.is_empty(), "never published: {unknown:?}");
    stop(b);
}

/// Connects the receiver (clean session 0), subscribes in the first round, then handles
/// packets until the connection ends, or, with `until`, until every body in it was handed on
/// and nothing more came for a while (deadline 30 s). `ready` is told once it is set up.
async fn receive(
    port: u16,
    mut rx: Receiver,
    subscribe: bool,
    ready: Option<oneshot::Sender<()>>,
    until: Option<HashSet<String>>,
) -> Receiver {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp connect");
    // CONNECT 3.1.1, clean session 0, keep alive 60.
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x00, 0, 60];
    body.extend_from_slice(&(RECEIVER.len() as u16).to_be_bytes());
    body.extend_from_slice(RECEIVER.as_bytes());
    s.write_all(&frame(0x10, &body)).await.expect("CONNECT");
    let (first, connack) = read_packet(&mut s, deadline).await.expect("CONNACK");
    assert_eq!(
        (first, connack.get(1)),
        (0x20, Some(&0)),
        "CONNACK accepted"
    );
    rx.session_present.push(connack[0] & 1 == 1);
    if subscribe {
        let mut sub = vec![0, 1];
        sub.extend_from_slice(&4u16.to_be_bytes());
        sub.extend_from_slice(b"q2/#");
        sub.push(2);
        s.write_all(&frame(0x82, &sub)).await.expect("SUBSCRIBE");
    }
    let mut ready = ready;
    if !subscribe {
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
    }
    let quiet = Duration::from_millis(1500);
    loop {
        let done = until
            .as_ref()
            .is_some_and(|want| want.iter().all(|b| rx.delivered.contains_key(b)));
        let limit = if done {
            deadline.min(tokio::time::Instant::now() + quiet)
        } else {
            deadline
        };
        let Some((first, body)) = read_packet(&mut s, limit).await else {
            rx.ended = format!(
                "{} s before the deadline, {} unreleased",
                (deadline - tokio::time::Instant::now()).as_secs(),
                rx.unreleased.len()
            );
            return rx;
        };
        let reply = match first >> 4 {
            3 => publish(&mut rx, first, &body),
            6 => {
                // PUBREL: the identifier is released; PUBCOMP even for an unknown one.
                rx.pubrels += 1;
                if let Some(id) = body.get(..2) {
                    rx.unreleased.remove(&u16::from_be_bytes([id[0], id[1]]));
                }
                body.get(..2).map(|id| frame(0x70, id))
            }
            9 => {
                assert_eq!(body.get(2), Some(&2), "QoS 2 granted");
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                None
            }
            _ => None,
        };
        if let Some(reply) = reply {
            if s.write_all(&reply).await.is_err() {
                return rx;
            }
        }
    }
}

/// Handles one PUBLISH by Method A; returns the acknowledgement to send.
fn publish(rx: &mut Receiver, first: u8, body: &[u8]) -> Option<Vec<u8>> {
    let qos = (first >> 1) & 3;
    let dup = first & 0x08 != 0;
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let mut at = 2 + topic_len;
    let id = if qos > 0 {
        let id = body.get(at..at + 2)?;
        at += 2;
        Some([id[0], id[1]])
    } else {
        None
    };
    let payload = String::from_utf8_lossy(body.get(at..)?).into_owned();
    match (qos, id) {
        (2, Some(id)) => {
            let n = u16::from_be_bytes(id);
            match rx.unreleased.get(&n) {
                Some(held) => {
                    // A re-send: acknowledged, not handed on again.
                    rx.resent += 1;
                    rx.resent_dup += u64::from(dup);
                    if *held != payload {
                        rx.reused.push(format!("id {n}: {held} then {payload}"));
                    }
                }
                None => {
                    *rx.delivered.entry(payload.clone()).or_default() += 1;
                    rx.unreleased.insert(n, payload);
                }
            }
            Some(frame(0x50, &id))
        }
        (1, Some(id)) => {
            *rx.delivered.entry(payload).or_default() += 1;
            Some(frame(0x40, &id))
        }
        _ => {
            *rx.delivered.entry(payload).or_default() += 1;
            None
        }
    }
}

/// Reads one packet (first byte, body); `None` at EOF, on error or at `deadline`.
async fn read_packet(s: &mut TcpStream, deadline: tokio::time::Instant) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.ok()?;
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.ok()?;
            len |= usize::from(b[0] & 0x7f) << shift;
            shift += 7;
            if b[0] & 0x80 == 0 || shift > 21 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.ok()?;
        Some((first[0], body))
    };
    tokio::time::timeout_at(deadline, read).await.ok().flatten()
}

/// Publishes `r<round>-m<n>-q2` at QoS 2 (every fourth `...-q1` at QoS 1) to `q2/<n % 3>`
/// until the connection dies. Returns the bodies handed to the socket, the QoS 2 ones a PUBREC
/// acknowledged and the QoS 1 ones a PUBACK did.
async fn publish_until_dead(
    port: u16,
    round: u64,
) -> (HashSet<String>, HashSet<String>, HashSet<String>) {
    let client_id = format!("qos2-out-pub-{round}");
    let (sent, acked) = mqtt_publish_qos_until_dead(port, &client_id, move |n| {
        let (qos, tag) = if n % 4 == 3 {
            (QoS::AtLeastOnce, "q1")
        } else {
            (QoS::ExactlyOnce, "q2")
        };
        (format!("q2/{}", n % 3), format!("r{round}-m{n}-{tag}"), qos)
    })
    .await;
    let (q2, q1) = acked.into_iter().partition(|body| body.ends_with("-q2"));
    (sent, q2, q1)
}
