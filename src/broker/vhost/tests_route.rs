//! Routing through the vhost: every exchange type, the default exchange, exchange-to-exchange
//! bindings and alternate exchanges (with cycles), MQTT meeting AMQP on `amq.topic`, and queue
//! limits and TTL declared through the registry.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::tests_declare::{args, declare, exchange, queue_with, s, vhost, C1};
use super::*;
use crate::broker::dispatch::dispatch;
use crate::broker::exchange::test_support::{destination, message, Recorder};
use crate::broker::exchange::BindingKey;
use crate::broker::headers::HeaderValue;
use crate::broker::queue::{ConsumerSink, ConsumerTag, QueueDelivery};
use crate::broker::routing_key::amqp_key_to_mqtt_topic;

/// The queue names `routed` leads to, sorted (destinations that are not queues are skipped).
fn queues(v: &Vhost, routed: &[Binding]) -> Vec<String> {
    let mut names: Vec<String> = routed
        .iter()
        .filter_map(|b| {
            v.queues
                .iter()
                .find(|q| q.binding().destination_key() == b.destination_key())
                .map(|q| q.key().to_string())
        })
        .collect();
    names.sort();
    names
}

/// Routes an AMQP publish with routing key `key` and returns the queues reached.
fn amqp_route(v: &Vhost, exchange: &str, key: &str) -> Vec<String> {
    let m = message(&amqp_key_to_mqtt_topic(key), None);
    queues(v, &v.route(exchange, &m).expect("route"))
}

fn bind(v: &Vhost, queue: &str, exchange: &str, key: &str) {
    v.bind_queue(queue, exchange, BindingKey::Amqp(key), Headers::empty(), C1)
        .expect("bind");
}

fn publish(v: &Vhost, exchange: &str, m: Message) -> usize {
    let m = Arc::new(m);
    let routed = v.route(exchange, &m).expect("route");
    dispatch(&m, &routed, &mut Vec::new())
}

struct ChannelSink(mpsc::UnboundedSender<QueueDelivery>);

impl ConsumerSink for ChannelSink {
    fn deliver(&self, delivery: QueueDelivery) {
        let _ = self.0.send(delivery);
    }
}

fn consume(q: &QueueInfo) -> mpsc::UnboundedReceiver<QueueDelivery> {
    let (tx, rx) = mpsc::unbounded_channel();
    q.handle
        .consume(ConsumerTag("c".into()), Arc::new(ChannelSink(tx)), 0, true);
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<QueueDelivery>) -> QueueDelivery {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivery in time")
        .expect("queue alive")
}

#[tokio::test]
async fn default_exchange_routes_to_the_queue_named_by_the_key() {
    let v = vhost();
    declare(&v, "orders");
    declare(&v, "fw.v1/2");
    assert_eq!(amqp_route(&v, "", "orders"), ["orders"]);
    assert!(amqp_route(&v, "", "missing").is_empty());
    // A dotted queue name is reached by its AMQP routing key, whatever the MQTT form.
    assert_eq!(amqp_route(&v, "", "fw.v1/2"), ["fw.v1/2"]);
    assert_eq!(
        v.route("nope", &message("x", None)).unwrap_err(),
        VhostError::NotFound("no exchange 'nope' in vhost '/'".into())
    );
}

#[tokio::test]
async fn each_exchange_type_routes_through_the_registry() {
    let v = vhost();
    for q in ["d", "f1", "f2", "t", "h"] {
        declare(&v, q);
    }
    bind(&v, "d", "amq.direct", "orders.new");
    bind(&v, "f1", "amq.fanout", "");
    bind(&v, "f2", "amq.fanout", "ignored");
    bind(&v, "t", "amq.topic", "orders.#");
    v.bind_queue(
        "h",
        "amq.match",
        BindingKey::Amqp(""),
        &args(&[("x-match", s("any")), ("kind", s("order"))]),
        C1,
    )
    .unwrap();
    assert_eq!(amqp_route(&v, "amq.direct", "orders.new"), ["d"]);
    assert!(amqp_route(&v, "amq.direct", "orders.*").is_empty());
    assert_eq!(amqp_route(&v, "amq.fanout", "x"), ["f1", "f2"]);
    assert_eq!(amqp_route(&v, "amq.topic", "orders.new.eu"), ["t"]);
    assert_eq!(amqp_route(&v, "amq.topic", "orders"), ["t"]);
    let with = message("k", Some(args(&[("kind", s("order"))])));
    assert_eq!(queues(&v, &v.route("amq.match", &with).unwrap()), ["h"]);
    assert!(amqp_route(&v, "amq.match", "k").is_empty());
}

#[tokio::test]
async fn mqtt_and_amqp_meet_on_amq_topic() {
    let v = vhost();
    let q = declare(&v, "temps");
    bind(&v, "temps", "amq.topic", "sensors.*.temp");
    declare(&v, "fw");
    bind(&v, "fw", "amq.topic", "fw.v1/2.status");

    // MQTT publishes route through the MQTT exchange (amq.topic here) to AMQP queues.
    let from_mqtt = message("sensors/x/temp", None);
    assert_eq!(queues(&v, &v.route_mqtt(&from_mqtt)), ["temps"]);
    assert_eq!(
        queues(&v, &v.route_mqtt(&message("fw/v1.2/status", None))),
        ["fw"]
    );
    assert!(queues(&v, &v.route_mqtt(&message("fw/v1/2/status", None))).is_empty());
    let mut rx = consume(&q);
    let m = Arc::new(from_mqtt);
    assert_eq!(dispatch(&m, &v.route_mqtt(&m), &mut Vec::new()), 1);
    assert_eq!(next(&mut rx).await.message.topic, "sensors/x/temp");

    // An AMQP publish reaches both the AMQP queue and an MQTT subscription.
    let (_sub, binding) = destination();
    v.mqtt_exchange().bind(
        BindingKey::Mqtt("sensors/+/temp"),
        Headers::empty(),
        binding,
    );
    let from_amqp = message(&amqp_key_to_mqtt_topic("sensors.y.temp"), None);
    assert_eq!(publish(&v, "amq.topic", from_amqp), 2);
    assert_eq!(next(&mut rx).await.message.topic, "sensors/y/temp");
}

#[tokio::test]
async fn mqtt_subscriber_receives_an_amqp_publish() {
    let v = vhost();
    let recorder = Arc::new(Recorder::default());
    let destination: Arc<dyn crate::broker::binding::Subscriber> = recorder.clone();
    v.mqtt_exchange().bind(
        BindingKey::Mqtt("sensors/+/temp"),
        Headers::empty(),
        Binding {
            destination,
            options: BindingOptions::default(),
        },
    );
    let m = message(&amqp_key_to_mqtt_topic("sensors.x.temp"), None);
    assert_eq!(publish(&v, "amq.topic", m), 1);
    assert_eq!(*recorder.0.lock(), ["sensors/x/temp"]);
}

#[tokio::test]
async fn exchange_to_exchange_bindings_expand_once_even_in_a_cycle() {
    let v = vhost();
    v.declare_exchange("e1", exchange(ExchangeKind::Topic), false)
        .unwrap();
    v.declare_exchange("e2", exchange(ExchangeKind::Fanout), false)
        .unwrap();
    for q in ["q1", "q2", "both"] {
        declare(&v, q);
    }
    v.bind_exchange("e1", "amq.topic", BindingKey::Amqp("a.#"), Headers::empty())
        .unwrap();
    v.bind_exchange("e2", "e1", BindingKey::Amqp("a.b"), Headers::empty())
        .unwrap();
    // The cycle: e2 -> e1 -> e2 ...
    v.bind_exchange("e1", "e2", BindingKey::Amqp(""), Headers::empty())
        .unwrap();
    bind(&v, "q1", "e1", "a.*");
    bind(&v, "q2", "e2", "");
    bind(&v, "both", "e1", "#");
    bind(&v, "both", "e2", "");
    bind(&v, "both", "amq.topic", "a.b");

    assert_eq!(amqp_route(&v, "amq.topic", "a.b"), ["both", "q1", "q2"]);
    assert_eq!(amqp_route(&v, "amq.topic", "a.c"), ["both", "q1"]);
    assert!(amqp_route(&v, "amq.topic", "b").is_empty());
    // A queue reached along several paths appears once.
    let m = message("a/b", None);
    let routed = v.route("amq.topic", &m).unwrap();
    assert_eq!(routed.len(), 3);
    // An MQTT publish takes the same paths.
    assert_eq!(queues(&v, &v.route_mqtt(&m).dedup()), ["both", "q1", "q2"]);

    v.unbind_exchange("e2", "e1", BindingKey::Amqp("a.b"), Headers::empty())
        .unwrap();
    assert_eq!(amqp_route(&v, "amq.topic", "a.b"), ["both", "q1"]);
}

#[tokio::test]
async fn alternate_exchange_takes_what_nothing_matched_even_in_a_cycle() {
    let v = vhost();
    let with_ae = |ae: &str, kind| ExchangeSettings {
        arguments: args(&[("alternate-exchange", s(ae))]),
        ..exchange(kind)
    };
    v.declare_exchange("x", with_ae("ae", ExchangeKind::Direct), false)
        .unwrap();
    v.declare_exchange("ae", exchange(ExchangeKind::Fanout), false)
        .unwrap();
    declare(&v, "matched");
    declare(&v, "unrouted");
    bind(&v, "matched", "x", "k");
    bind(&v, "unrouted", "ae", "");
    assert_eq!(amqp_route(&v, "x", "k"), ["matched"]);
    assert_eq!(amqp_route(&v, "x", "other"), ["unrouted"]);

    // a -> b -> a as alternates, nothing bound: routing ends with nothing.
    v.declare_exchange("a", with_ae("b", ExchangeKind::Direct), false)
        .unwrap();
    v.declare_exchange("b", with_ae("a", ExchangeKind::Direct), false)
        .unwrap();
    assert!(amqp_route(&v, "a", "k").is_empty());
    // A chain of alternates: c -> a (-> b -> a) and b's binding catches it.
    bind(&v, "matched", "b", "k");
    v.declare_exchange("c", with_ae("a", ExchangeKind::Topic), false)
        .unwrap();
    assert_eq!(amqp_route(&v, "c", "k"), ["matched"]);
    // An alternate that does not exist is no destination.
    v.declare_exchange("d", with_ae("missing", ExchangeKind::Direct), false)
        .unwrap();
    assert!(amqp_route(&v, "d", "k").is_empty());
}

#[tokio::test]
async fn internal_exchanges_take_no_publishes_but_route_bindings() {
    let v = vhost();
    let internal = ExchangeSettings {
        internal: true,
        ..exchange(ExchangeKind::Fanout)
    };
    v.declare_exchange("i", internal, false).unwrap();
    declare(&v, "q");
    bind(&v, "q", "i", "");
    assert_eq!(
        v.route("i", &message("k", None)).unwrap_err(),
        VhostError::AccessRefused("cannot publish to internal exchange 'i' in vhost '/'".into())
    );
    v.bind_exchange("i", "amq.direct", BindingKey::Amqp("k"), Headers::empty())
        .unwrap();
    assert_eq!(amqp_route(&v, "amq.direct", "k"), ["q"]);
}

#[tokio::test]
async fn mqtt_fast_path_shares_the_cached_result() {
    let v = vhost();
    let (_d, b) = destination();
    v.mqtt_exchange()
        .bind(BindingKey::Mqtt("a/#"), Headers::empty(), b);
    let m = message("a/b", None);
    assert!(matches!(v.route_mqtt(&m), Routed::Shared(ref r) if r.len() == 1));
    // An exchange-to-exchange binding makes it expand.
    v.declare_exchange("e", exchange(ExchangeKind::Fanout), false)
        .unwrap();
    v.bind_exchange("e", "amq.topic", BindingKey::Amqp("#"), Headers::empty())
        .unwrap();
    assert!(matches!(v.route_mqtt(&m), Routed::Owned(ref r) if r.len() == 1));
}

#[tokio::test]
async fn message_ttl_expires_queued_messages() {
    let v = vhost();
    let ttl = |ms: i32| queue_with(args(&[("x-message-ttl", HeaderValue::I32(ms))]));
    let q = v.declare_queue("short", ttl(50), false, C1).unwrap();
    assert_eq!(publish(&v, "", message("short", None)), 1);
    assert_eq!(q.handle.counts().await.ready, 1);
    tokio::time::sleep(Duration::from_millis(120)).await;
    // Dropped from the head on the actor's timer, with nobody asking.
    tokio::time::timeout(Duration::from_secs(5), async {
        while q.handle.stats().ready() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("expired");
    assert_eq!(q.handle.counts().await.ready, 0);

    // A message's own expiry counts when it is sooner than the queue's TTL.
    let q = v.declare_queue("long", ttl(60_000), false, C1).unwrap();
    let mut m = message("long", None);
    m.expires_at = Some(std::time::Instant::now() + Duration::from_millis(30));
    publish(&v, "", m);
    publish(&v, "", message("long", None));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(q.handle.counts().await.ready, 1);

    // TTL 0: delivered to a consumer that is there, dropped otherwise.
    let q = v.declare_queue("now", ttl(0), false, C1).unwrap();
    publish(&v, "", message("now", None));
    assert_eq!(q.handle.counts().await.ready, 0);
    let mut rx = consume(&q);
    q.handle.counts().await;
    publish(&v, "", message("now", None));
    assert_eq!(next(&mut rx).await.message.topic, "now");
}

#[tokio::test]
async fn max_length_and_overflow_from_queue_arguments() {
    let v = vhost();
    let limited = |overflow: &str| {
        queue_with(args(&[
            ("x-max-length", HeaderValue::I32(2)),
            ("x-overflow", s(overflow)),
        ]))
    };
    let drop_head = v
        .declare_queue("drop-head", limited("drop-head"), false, C1)
        .unwrap();
    let reject = v
        .declare_queue("reject", limited("reject-publish"), false, C1)
        .unwrap();
    for body in ["1", "2", "3"] {
        for q in ["drop-head", "reject"] {
            let mut m = message(q, None);
            m.body = bytes::Bytes::from_static(body.as_bytes());
            publish(&v, "", m);
        }
    }
    let bodies = |q: &QueueInfo| {
        let q = q.clone();
        async move {
            let mut rx = consume(&q);
            let a = next(&mut rx).await.message.body.clone();
            let b = next(&mut rx).await.message.body.clone();
            vec![a, b]
        }
    };
    assert_eq!(drop_head.handle.counts().await.ready, 2);
    assert_eq!(bodies(&drop_head).await, ["2", "3"]);
    assert_eq!(reject.handle.counts().await.ready, 2);
    assert_eq!(bodies(&reject).await, ["1", "2"]);

    let bytes_limited = queue_with(args(&[("x-max-length-bytes", HeaderValue::I64(3))]));
    let q = v.declare_queue("bytes", bytes_limited, false, C1).unwrap();
    for _ in 0..5 {
        publish(&v, "", message("bytes", None));
    }
    assert_eq!(q.handle.counts().await.ready, 3, "one-byte bodies");
}
