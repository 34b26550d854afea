//! Queue policies through the vhost: dead letters routed from the dead-letter exchange (with
//! `x-death`, the routing-key override and the cycle rule), `x-expires` removing a queue with its
//! bindings, refused publishes reported by `dispatch_with_outcome`, the `exclusive use` reply,
//! and queues not keeping their vhost alive.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::tests_declare::{args, declare, exchange, queue_with, s, vhost, C1};
use super::*;
use crate::broker::dispatch::dispatch;
use crate::broker::exchange::test_support::message;
use crate::broker::exchange::BindingKey;
use crate::broker::headers::HeaderValue;
use crate::broker::queue::{
    Admission, ConsumeError, ConsumerSink, ConsumerTag, Overflow, QueueDelivery,
};

struct ChannelSink(mpsc::UnboundedSender<QueueDelivery>);

impl ConsumerSink for ChannelSink {
    fn deliver(&self, delivery: QueueDelivery) {
        let _ = self.0.send(delivery);
    }
}

/// A consumer that acknowledges explicitly (prefetch unlimited).
fn consume_acking(q: &QueueInfo) -> mpsc::UnboundedReceiver<QueueDelivery> {
    let (tx, rx) = mpsc::unbounded_channel();
    q.handle
        .consume(ConsumerTag("c".into()), Arc::new(ChannelSink(tx)), 0, false);
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<QueueDelivery>) -> QueueDelivery {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivery in time")
        .expect("queue alive")
}

/// Publishes an AMQP-like message with routing key `key` (MQTT form) and `body` to `exchange`.
fn publish(v: &Vhost, exchange: &str, key: &str, body: &'static str) {
    let mut m = message(key, None);
    m.exchange = exchange.into();
    m.body = Bytes::from_static(body.as_bytes());
    let m = Arc::new(m);
    let routed = v.route(exchange, &m).expect("route");
    dispatch(&m, &routed, &mut Vec::new());
}

fn bind(v: &Vhost, queue: &str, exchange: &str, key: &str) {
    v.bind_queue(queue, exchange, BindingKey::Amqp(key), Headers::empty(), C1)
        .expect("bind");
}

/// The `x-death` entries of a delivered message.
fn deaths(d: &QueueDelivery) -> Vec<Headers> {
    match d.message.amqp_headers().and_then(|h| h.get("x-death")) {
        Some(HeaderValue::Array(a)) => a
            .iter()
            .map(|e| match e {
                HeaderValue::Table(t) => t.clone(),
                other => panic!("entry {other:?}"),
            })
            .collect(),
        other => panic!("x-death {other:?}"),
    }
}

fn field<'a>(t: &'a Headers, k: &str) -> &'a HeaderValue {
    t.get(k).unwrap_or_else(|| panic!("no {k}"))
}

async fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn rejected_message_is_routed_through_the_dead_letter_exchange() {
    let v = vhost();
    v.declare_exchange("dlx", exchange(ExchangeKind::Direct), false)
        .unwrap();
    let dead = declare(&v, "dead");
    // No dead-letter routing key: the message's own key ("work") routes it.
    bind(&v, "dead", "dlx", "work");
    let work = v
        .declare_queue(
            "work",
            queue_with(args(&[("x-dead-letter-exchange", s("dlx"))])),
            false,
            C1,
        )
        .unwrap();
    let mut rx = consume_acking(&work);
    publish(&v, "", "work", "job");
    let d = next(&mut rx).await;
    work.handle.reject(d.id, false);

    let mut dead_rx = consume_acking(&dead);
    let got = next(&mut dead_rx).await;
    assert_eq!(got.message.body, "job");
    assert_eq!(got.message.exchange.as_ref(), "dlx");
    let entry = &deaths(&got)[0];
    assert_eq!(field(entry, "reason"), &s("rejected"));
    assert_eq!(field(entry, "queue"), &s("work"));
    assert_eq!(field(entry, "exchange"), &s(""));
    assert_eq!(field(entry, "count"), &HeaderValue::I64(1));
    let h = got.message.amqp_headers().unwrap();
    assert_eq!(h.get("x-first-death-exchange"), Some(&s("")));
}

#[tokio::test]
async fn expired_messages_go_to_the_dead_letter_routing_key_without_consumers() {
    let v = vhost();
    let target = declare(&v, "target");
    let delay = queue_with(args(&[
        ("x-message-ttl", HeaderValue::I32(30)),
        ("x-dead-letter-exchange", s("")),
        ("x-dead-letter-routing-key", s("target")),
    ]));
    v.declare_queue("delay", delay, false, C1).unwrap();
    publish(&v, "", "delay", "later");
    // Nobody consumes "delay": its head timer dead-letters the message.
    let mut rx = consume_acking(&target);
    let got = next(&mut rx).await;
    assert_eq!(got.message.body, "later");
    assert_eq!(got.message.topic, "target", "the dead-letter routing key");
    let entry = &deaths(&got)[0];
    assert_eq!(field(entry, "reason"), &s("expired"));
    assert_eq!(
        field(entry, "routing-keys"),
        &HeaderValue::Array(vec![s("delay")])
    );
}

#[tokio::test]
async fn length_limits_dead_letter_and_refusals_reach_the_publisher() {
    let v = vhost();
    let dead = declare(&v, "dead");
    let limited = |overflow: &str| {
        queue_with(args(&[
            ("x-max-length", HeaderValue::I32(1)),
            ("x-overflow", s(overflow)),
            ("x-dead-letter-exchange", s("")),
            ("x-dead-letter-routing-key", s("dead")),
        ]))
    };
    v.declare_queue("dh", limited("drop-head"), false, C1)
        .unwrap();
    let full = v
        .declare_queue("full", limited("reject-publish-dlx"), false, C1)
        .unwrap();
    publish(&v, "", "dh", "old");
    publish(&v, "", "dh", "new");

    // A publisher in confirm mode learns of the refusal.
    let confirmed = |body: &'static str| {
        let mut m = message("full", None);
        m.exchange = "".into();
        m.body = Bytes::from_static(body.as_bytes());
        let m = Arc::new(m);
        let routed = v.route("", &m).unwrap();
        v.dispatch_with_outcome(&m, &routed, &mut Vec::new())
    };
    let first = confirmed("in");
    let second = confirmed("out");
    assert_eq!(first.reached, 1);
    assert_eq!(second.reached, 1, "routed, so no basic.return");
    assert_eq!(first.verdict.expect("verdict").await, Admission::Accepted);
    assert_eq!(second.verdict.expect("verdict").await, Admission::Refused);
    assert_eq!(full.handle.counts().await.ready, 1);

    let mut rx = consume_acking(&dead);
    let mut got = [next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|d| d.message.body.clone());
    assert_eq!(got[0].message.body, "old");
    assert_eq!(field(&deaths(&got[0])[0], "queue"), &s("dh"));
    assert_eq!(got[1].message.body, "out");
    assert_eq!(field(&deaths(&got[1])[0], "queue"), &s("full"));
    for d in &got {
        assert_eq!(field(&deaths(d)[0], "reason"), &s("maxlen"));
    }

    // Queues that cannot refuse: no verdict, no cost.
    let plain = Arc::new(message("dead", None));
    let routed = v.route("", &plain).unwrap();
    let out = v.dispatch_with_outcome(&plain, &routed, &mut Vec::new());
    assert_eq!(out.reached, 1);
    assert!(out.verdict.is_none());
}

#[tokio::test]
async fn expiry_cycles_are_dropped_but_rejections_break_them() {
    let v = vhost();
    // "loop" dead-letters its expired messages to a fanout that leads back to it, and to a spy.
    v.declare_exchange("fan", exchange(ExchangeKind::Fanout), false)
        .unwrap();
    let looping = queue_with(args(&[
        ("x-message-ttl", HeaderValue::I32(20)),
        ("x-dead-letter-exchange", s("fan")),
    ]));
    let lp = v.declare_queue("loop", looping, false, C1).unwrap();
    let spy = declare(&v, "spy");
    bind(&v, "loop", "fan", "");
    bind(&v, "spy", "fan", "");
    publish(&v, "", "loop", "once");
    let mut spy_rx = consume_acking(&spy);
    assert_eq!(next(&mut spy_rx).await.message.body, "once");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Without the rule it would come back to "loop" and reach the spy again every 20 ms.
    assert!(spy_rx.try_recv().is_err(), "dropped at the cycle");
    assert_eq!(lp.handle.counts().await.ready, 0);

    // The retry pattern: rejected in "w", parked in "r" until it expires, back to "w".
    let w = v
        .declare_queue(
            "w",
            queue_with(args(&[
                ("x-dead-letter-exchange", s("")),
                ("x-dead-letter-routing-key", s("r")),
            ])),
            false,
            C1,
        )
        .unwrap();
    let retry = queue_with(args(&[
        ("x-message-ttl", HeaderValue::I32(20)),
        ("x-dead-letter-exchange", s("")),
        ("x-dead-letter-routing-key", s("w")),
    ]));
    v.declare_queue("r", retry, false, C1).unwrap();
    let mut rx = consume_acking(&w);
    publish(&v, "", "w", "job");
    let first = next(&mut rx).await;
    w.handle.reject(first.id, false);
    let second = next(&mut rx).await;
    let d = deaths(&second);
    assert_eq!(field(&d[0], "queue"), &s("r"));
    assert_eq!(field(&d[1], "queue"), &s("w"));
    w.handle.reject(second.id, false);
    let third = next(&mut rx).await;
    let d = deaths(&third);
    assert_eq!(d.len(), 2);
    assert_eq!(field(&d[0], "queue"), &s("r"));
    assert_eq!(field(&d[0], "count"), &HeaderValue::I64(2));
    assert_eq!(field(&d[1], "count"), &HeaderValue::I64(2));

    // A rejection may even send a message straight back into its own queue.
    let own = queue_with(args(&[
        ("x-dead-letter-exchange", s("")),
        ("x-dead-letter-routing-key", s("self")),
    ]));
    let me = v.declare_queue("self", own, false, C1).unwrap();
    let mut rx = consume_acking(&me);
    publish(&v, "", "self", "again");
    let first = next(&mut rx).await;
    me.handle.reject(first.id, false);
    let back = next(&mut rx).await;
    assert_eq!(back.message.body, "again");
    assert!(!back.redelivered, "a new message, not a requeue");
    assert_eq!(field(&deaths(&back)[0], "queue"), &s("self"));
}

#[tokio::test]
async fn x_expires_removes_an_unused_queue_with_its_bindings() {
    let v = vhost();
    let expiring = || queue_with(args(&[("x-expires", HeaderValue::I32(80))]));
    v.declare_queue("idle", expiring(), false, C1).unwrap();
    bind(&v, "idle", "amq.direct", "k");
    let busy = v.declare_queue("busy", expiring(), false, C1).unwrap();
    let _rx = consume_acking(&busy);
    v.consumer_added("busy");
    v.declare_queue("renewed", expiring(), false, C1).unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        // Passive or not, a declaration renews the lease.
        v.declare_queue("renewed", expiring(), true, C1).unwrap();
    }
    let names = |v: &Vhost| {
        let mut n: Vec<String> = v.queue_names().iter().map(|q| q.to_string()).collect();
        n.sort();
        n
    };
    wait_until(|| !names(&v).contains(&"idle".to_string()), "idle removed").await;
    assert_eq!(names(&v), ["busy", "renewed"]);
    let m = message("k", None);
    assert!(
        v.route("amq.direct", &m).unwrap().is_empty(),
        "bindings gone"
    );
    // A new queue of the same name is a different queue.
    let again = v.declare_queue("idle", expiring(), false, C1).unwrap();
    assert!(!again.handle.is_closed());
}

#[tokio::test]
async fn queues_do_not_keep_their_vhost_alive() {
    let v = vhost();
    let dlx = queue_with(args(&[
        ("x-dead-letter-exchange", s("")),
        ("x-expires", HeaderValue::I32(60_000)),
    ]));
    let q = v.declare_queue("q", dlx, false, C1).unwrap();
    publish(&v, "", "q", "m");
    q.handle.counts().await;
    let weak = Arc::downgrade(&v);
    drop(v);
    assert!(weak.upgrade().is_none());
    // The registry's handles went with it; ours is the last.
    drop(q);
}

#[tokio::test]
async fn refused_consumers_get_rabbitmq_texts() {
    let v = vhost();
    let q = declare(&v, "q");
    let (tx, _rx) = mpsc::unbounded_channel();
    let sink: Arc<dyn ConsumerSink> = Arc::new(ChannelSink(tx));
    q.handle
        .consume_checked(ConsumerTag("a".into()), sink.clone(), 0, false, true)
        .await
        .unwrap();
    let refused = q
        .handle
        .consume_checked(ConsumerTag("b".into()), sink, 0, false, false)
        .await
        .unwrap_err();
    assert_eq!(
        v.consume_error("q", refused),
        VhostError::AccessRefused("queue 'q' in vhost '/' in exclusive use".into())
    );
    assert_eq!(
        v.consume_error("q", ConsumeError::QueueDeleted),
        VhostError::NotFound("no queue 'q' in vhost '/'".into())
    );
}

#[test]
fn queue_arguments_become_queue_policies() {
    let limits = super::args::queue_limits(
        "queue 'q' in vhost '/'",
        &args(&[
            ("x-overflow", s("reject-publish-dlx")),
            ("x-max-priority", HeaderValue::U8(10)),
            ("x-expires", HeaderValue::I32(60_000)),
            ("x-dead-letter-exchange", s("dlx")),
            ("x-dead-letter-routing-key", s("dead")),
            ("x-single-active-consumer", HeaderValue::Bool(true)),
        ]),
    )
    .unwrap();
    assert_eq!(limits.overflow, Overflow::RejectPublishDlx);
    assert_eq!(limits.max_priority, Some(10));
    assert_eq!(limits.expires, Some(Duration::from_secs(60)));
    assert_eq!(limits.dead_letter_exchange.as_deref(), Some("dlx"));
    assert_eq!(limits.dead_letter_routing_key.as_deref(), Some("dead"));
    assert!(limits.single_active_consumer);
    let max = super::args::queue_limits(
        "queue 'q' in vhost '/'",
        &args(&[("x-max-priority", HeaderValue::I32(255))]),
    )
    .unwrap();
    assert_eq!(max.max_priority, Some(255));
}
