//! Dead lettering at the queue: which events dead-letter (reject, expiry without consumers,
//! drop-head, reject-publish-dlx), the `x-death` header RabbitMQ writes and updates, the routing
//! key override, and the cycle rule. Routing itself is the vhost's (`vhost::tests_policies`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::dead_letter::dead_letter;
use super::*;
use crate::broker::binding::Pending;
use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::message::{AmqpProperties, Message, Origin, Properties};
use crate::store::MemoryStore;

/// Records what a queue hands its host.
#[derive(Default)]
pub(super) struct RecordingHost {
    pub letters: Mutex<Vec<DeadLetter>>,
    pub expired: Mutex<Vec<String>>,
}

impl QueueHost for RecordingHost {
    fn dead_letter(&self, letter: DeadLetter, _pending: &mut Vec<Pending>) {
        self.letters.lock().push(letter);
    }

    fn unused_expired(&self, queue: &str) {
        self.expired.lock().push(queue.to_string());
    }
}

impl RecordingHost {
    /// Waits until `n` dead letters arrived; returns them.
    pub async fn wait_letters(&self, n: usize) -> Vec<DeadLetter> {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if self.letters.lock().len() >= n {
                    return self.letters.lock().clone();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("dead letters in time")
    }
}

struct ChannelSink(mpsc::UnboundedSender<QueueDelivery>);

impl ConsumerSink for ChannelSink {
    fn deliver(&self, delivery: QueueDelivery) {
        let _ = self.0.send(delivery);
    }
}

fn amqp_message(body: &str, expiration: Option<&str>, headers: Option<Headers>) -> Arc<Message> {
    Arc::new(Message {
        exchange: "orders".into(),
        topic: "new/eu".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        qos: 1,
        retain: false,
        expires_at: None,
        properties: Properties {
            amqp: Some(Box::new(AmqpProperties {
                expiration: expiration.map(|e| Bytes::copy_from_slice(e.as_bytes())),
                headers,
                ..AmqpProperties::default()
            })),
            ..Properties::default()
        },
        origin: Origin::default(),
    })
}

fn with_dlx(limits: QueueLimits) -> QueueLimits {
    QueueLimits {
        dead_letter_exchange: Some("dlx".into()),
        ..limits
    }
}

fn hosted(name: &str, limits: QueueLimits) -> (QueueHandle, Arc<RecordingHost>) {
    let host = Arc::new(RecordingHost::default());
    let q = spawn_hosted(name, limits, Arc::new(MemoryStore::default()), host.clone());
    (q, host)
}

fn headers(letter: &DeadLetter) -> &Headers {
    letter.message.amqp_headers().expect("headers")
}

fn deaths(letter: &DeadLetter) -> &[HeaderValue] {
    match headers(letter).get("x-death") {
        Some(HeaderValue::Array(d)) => d,
        other => panic!("x-death {other:?}"),
    }
}

fn death(letter: &DeadLetter, i: usize) -> &Headers {
    match &deaths(letter)[i] {
        HeaderValue::Table(t) => t,
        other => panic!("entry {other:?}"),
    }
}

fn s(text: &str) -> HeaderValue {
    HeaderValue::string(text)
}

#[tokio::test]
async fn rejected_message_is_dead_lettered_with_x_death() {
    let (q, host) = hosted("work", with_dlx(QueueLimits::default()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    q.consume(ConsumerTag("c".into()), Arc::new(ChannelSink(tx)), 0, false);
    let user = Headers::from(vec![("app".to_string(), s("x"))]);
    q.publish(amqp_message("m", Some("60000"), Some(user)));
    let d = rx.recv().await.expect("delivery");
    q.reject(d.id, false);
    let letters = host.wait_letters(1).await;
    let letter = &letters[0];
    assert_eq!(letter.reason, DeathReason::Rejected);
    assert_eq!(letter.exchange(), "dlx");
    // No dead-letter routing key: the message keeps its own.
    assert_eq!(letter.message.topic, "new/eu");
    assert_eq!(letter.message.body, "m");
    let amqp = letter.message.properties.amqp.as_ref().expect("amqp");
    assert_eq!(amqp.expiration, None, "expiration removed");
    assert!(letter.message.expires_at.is_none());

    let h = headers(letter);
    assert_eq!(h.get("app"), Some(&s("x")), "user headers kept");
    assert_eq!(h.get("x-first-death-reason"), Some(&s("rejected")));
    assert_eq!(h.get("x-first-death-queue"), Some(&s("work")));
    assert_eq!(h.get("x-first-death-exchange"), Some(&s("orders")));
    assert_eq!(deaths(letter).len(), 1);
    let entry = death(letter, 0);
    assert_eq!(entry.get("count"), Some(&HeaderValue::I64(1)));
    assert_eq!(entry.get("reason"), Some(&s("rejected")));
    assert_eq!(entry.get("queue"), Some(&s("work")));
    assert_eq!(entry.get("exchange"), Some(&s("orders")));
    // Routing keys in AMQP form.
    assert_eq!(
        entry.get("routing-keys"),
        Some(&HeaderValue::Array(vec![s("new.eu")]))
    );
    assert_eq!(entry.get("original-expiration"), Some(&s("60000")));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    match entry.get("time") {
        Some(HeaderValue::Timestamp(t)) => assert!(now.abs_diff(*t) <= 5),
        other => panic!("time {other:?}"),
    }
    // Requeued messages are not dead-lettered; acked ones neither.
    q.publish(amqp_message("n", None, None));
    let d = rx.recv().await.expect("delivery");
    q.reject(d.id, true);
    let d = rx.recv().await.expect("redelivery");
    q.ack(d.id);
    q.counts().await;
    assert_eq!(host.letters.lock().len(), 1);
}

#[tokio::test]
async fn expired_messages_are_dead_lettered_without_a_consumer() {
    let limits = with_dlx(QueueLimits {
        message_ttl: Some(Duration::from_millis(30)),
        ..QueueLimits::default()
    });
    let (q, host) = hosted("ttl", limits);
    q.publish(amqp_message("a", None, None));
    q.publish(amqp_message("b", Some("10"), None));
    // Nobody consumes or asks: the head timer fires on its own.
    let letters = host.wait_letters(2).await;
    let bodies: Vec<&[u8]> = letters.iter().map(|l| &l.message.body[..]).collect();
    assert_eq!(
        bodies,
        [b"a", b"b"],
        "head first; the one behind waited its turn"
    );
    for l in &letters {
        assert_eq!(l.reason, DeathReason::Expired);
        assert_eq!(death(l, 0).get("reason"), Some(&s("expired")));
    }
    assert_eq!(
        death(&letters[1], 0).get("original-expiration"),
        Some(&s("10"))
    );
    assert_eq!(q.counts().await.ready, 0);
}

#[tokio::test]
async fn drop_head_dead_letters_with_reason_maxlen() {
    let limits = with_dlx(QueueLimits {
        max_length: Some(2),
        ..QueueLimits::default()
    });
    let (q, host) = hosted("short", limits);
    for b in ["1", "2", "3", "4"] {
        q.publish(amqp_message(b, None, None));
    }
    assert_eq!(q.counts().await.ready, 2);
    let letters = host.wait_letters(2).await;
    assert_eq!(letters[0].message.body, "1");
    assert_eq!(letters[1].message.body, "2");
    assert!(letters.iter().all(|l| l.reason == DeathReason::MaxLen));
    assert_eq!(death(&letters[0], 0).get("reason"), Some(&s("maxlen")));
    assert_eq!(q.stats().dropped(), 2);
}

#[tokio::test]
async fn reject_publish_dlx_refuses_at_the_tail_and_dead_letters() {
    let limits = with_dlx(QueueLimits {
        max_length: Some(1),
        overflow: Overflow::RejectPublishDlx,
        ..QueueLimits::default()
    });
    let (q, host) = hosted("full", limits);
    let Outcome::Decided(first) = q.publish_with_outcome(amqp_message("kept", None, None)) else {
        panic!("a queue that can refuse gives a verdict");
    };
    let Outcome::Decided(second) = q.publish_with_outcome(amqp_message("refused", None, None))
    else {
        panic!("a queue that can refuse gives a verdict");
    };
    assert_eq!(first.await, Admission::Accepted);
    assert_eq!(second.await, Admission::Refused);
    let letters = host.wait_letters(1).await;
    assert_eq!(letters[0].message.body, "refused");
    assert_eq!(letters[0].reason, DeathReason::MaxLen);
    // The head stays: reject-publish never drops what is queued.
    let (got, _) = q.get(ConsumerTag("g".into()), true).await.expect("ready");
    assert_eq!(got.message.body, "kept");
}

#[tokio::test]
async fn without_a_dead_letter_exchange_nothing_is_republished() {
    let (q, host) = hosted(
        "plain",
        QueueLimits {
            max_length: Some(1),
            message_ttl: Some(Duration::from_millis(10)),
            ..QueueLimits::default()
        },
    );
    q.publish(amqp_message("1", None, None));
    q.publish(amqp_message("2", None, None));
    let (got, _) = q.get(ConsumerTag("g".into()), false).await.expect("ready");
    q.reject(got.id, false);
    // Control requests are handled in order: once `counts` answers, the reject was handled
    // (and any dead-lettering it caused happened on the actor's task).
    assert_eq!(q.counts().await.ready, 0);
    assert!(host.letters.lock().is_empty());
}

#[tokio::test]
async fn dead_letter_routing_key_replaces_the_key_and_drops_cc() {
    let limits = QueueLimits {
        dead_letter_exchange: Some("".into()),
        dead_letter_routing_key: Some("parked.v1".into()),
        ..QueueLimits::default()
    };
    let (q, host) = hosted("work", limits);
    let h = Headers::from(vec![("CC".to_string(), HeaderValue::Array(vec![s("k")]))]);
    q.publish(amqp_message("m", None, Some(h)));
    let (got, _) = q.get(ConsumerTag("g".into()), false).await.expect("ready");
    q.reject(got.id, false);
    let letters = host.wait_letters(1).await;
    let l = &letters[0];
    assert_eq!(l.exchange(), "");
    assert_eq!(l.message.topic, "parked/v1");
    assert!(headers(l).get("CC").is_none());
    // x-death records the key it was published with, not the new one.
    assert_eq!(
        death(l, 0).get("routing-keys"),
        Some(&HeaderValue::Array(vec![s("new.eu")]))
    );
}

#[test]
fn x_death_counts_repeats_and_keeps_the_most_recent_first() {
    let now = SystemTime::now();
    let dlx: Arc<str> = "dlx".into();
    let m = amqp_message("m", None, None);
    let first = dead_letter(&m, DeathReason::Rejected, "w", &dlx, None, now);
    let second = dead_letter(&first.message, DeathReason::Expired, "r", &dlx, None, now);
    let third = dead_letter(&second.message, DeathReason::Rejected, "w", &dlx, None, now);
    assert_eq!(deaths(&third).len(), 2);
    // The repeated (queue, reason) moved to the front with its count raised, its first
    // exchange kept; the other entry stays.
    assert_eq!(death(&third, 0).get("queue"), Some(&s("w")));
    assert_eq!(death(&third, 0).get("count"), Some(&HeaderValue::I64(2)));
    assert_eq!(death(&third, 0).get("exchange"), Some(&s("orders")));
    assert_eq!(death(&third, 1).get("queue"), Some(&s("r")));
    assert_eq!(death(&third, 1).get("exchange"), Some(&s("dlx")));
    // Updated entries have their fields sorted by name, as RabbitMQ sorts them.
    let names: Vec<&str> = death(&third, 0).iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "count",
            "exchange",
            "queue",
            "reason",
            "routing-keys",
            "time"
        ]
    );
    // The first death's top-level headers are never touched again.
    assert_eq!(
        headers(&third).get("x-first-death-reason"),
        Some(&s("rejected"))
    );
    assert_eq!(headers(&third).get("x-first-death-queue"), Some(&s("w")));

    // An x-death mangled by a client (not an array) starts over.
    let mangled = Headers::from(vec![("x-death".to_string(), s("oops"))]);
    let m = amqp_message("m", None, Some(mangled));
    let l = dead_letter(&m, DeathReason::Expired, "q", &dlx, None, now);
    assert_eq!(deaths(&l).len(), 1);
    assert_eq!(death(&l, 0).get("count"), Some(&HeaderValue::I64(1)));
}

#[test]
fn mqtt_messages_gain_amqp_headers_and_keep_their_delivery_mode() {
    let m = Arc::new(Message {
        exchange: "amq.topic".into(),
        topic: "sensors/t".into(),
        body: Bytes::from_static(b"21"),
        qos: 1,
        retain: false,
        expires_at: Some(std::time::Instant::now()),
        properties: Properties::default(),
        origin: Origin::default(),
    });
    let l = dead_letter(
        &m,
        DeathReason::Expired,
        "q",
        &"dlx".into(),
        None,
        SystemTime::now(),
    );
    let amqp = l.message.properties.amqp.as_ref().expect("amqp");
    assert_eq!(amqp.delivery_mode, Some(2));
    assert!(l.message.expires_at.is_none());
    assert_eq!(
        death(&l, 0).get("routing-keys"),
        Some(&HeaderValue::Array(vec![s("sensors.t")]))
    );
}

#[test]
fn cycle_rule_follows_rabbitmq() {
    let now = SystemTime::now();
    let dlx: Arc<str> = "".into();
    let m = amqp_message("m", None, None);
    // Expired in q, dead-lettered back to q: it would reach q twice with only timers involved.
    let looped = dead_letter(&m, DeathReason::Expired, "q", &dlx, None, now);
    assert!(looped.cycles_into("q"));
    assert!(!looped.cycles_into("other"), "a queue it never died in");
    // a -> b -> a by expiry alone: a cycle at a, not at b's first visit.
    let in_a = dead_letter(&m, DeathReason::Expired, "a", &dlx, None, now);
    assert!(!in_a.cycles_into("b"));
    let in_b = dead_letter(&in_a.message, DeathReason::Expired, "b", &dlx, None, now);
    assert!(in_b.cycles_into("a"));
    // The retry pattern: rejected in w, expired in r, back to w — a client was in the loop.
    let rejected = dead_letter(&m, DeathReason::Rejected, "w", &dlx, None, now);
    assert!(!rejected.cycles_into("w"), "rejections never cycle");
    let retried = dead_letter(
        &rejected.message,
        DeathReason::Expired,
        "r",
        &dlx,
        None,
        now,
    );
    assert!(!retried.cycles_into("w"));
    assert!(retried.cycles_into("r"));
    let names: Vec<&[u8]> = retried.death_queues().collect();
    assert_eq!(names, [b"r".as_slice(), b"w".as_slice()]);
}

/// Answers every dead letter with a wait, as a full inbox would, and records when it ran.
#[derive(Default)]
struct BlockedHost(Arc<Mutex<Vec<String>>>);

impl QueueHost for BlockedHost {
    fn dead_letter(&self, letter: DeadLetter, pending: &mut Vec<Pending>) {
        let done = Arc::clone(&self.0);
        pending.push(Box::pin(async move {
            tokio::task::yield_now().await;
            let body = String::from_utf8_lossy(&letter.message.body).into_owned();
            done.lock().push(body);
        }));
    }

    fn unused_expired(&self, _queue: &str) {}
}

#[tokio::test]
async fn dead_letters_meeting_a_full_inbox_are_awaited_off_the_queue_task() {
    let host = BlockedHost::default();
    let done = Arc::clone(&host.0);
    let q = spawn_hosted(
        "q",
        with_dlx(QueueLimits {
            max_length: Some(1),
            ..QueueLimits::default()
        }),
        Arc::new(MemoryStore::default()),
        Arc::new(host),
    );
    for b in ["1", "2", "3"] {
        q.publish(amqp_message(b, None, None));
    }
    // The queue answers while its dead letters still wait: it never blocks on them.
    assert_eq!(q.counts().await.ready, 1);
    tokio::time::timeout(Duration::from_secs(5), async {
        while done.lock().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the waits ran");
    assert_eq!(*done.lock(), ["1", "2"], "in order");
}
