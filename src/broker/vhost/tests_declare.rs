//! Declare, delete, bind and lifetime semantics of the vhost registry, with RabbitMQ's texts.

use std::sync::Arc;

use super::*;
use crate::broker::exchange::BindingKey;
use crate::broker::headers::HeaderValue;
use crate::store::MemoryStore;

pub(super) const C1: ConnectionId = ConnectionId(1);
pub(super) const C2: ConnectionId = ConnectionId(2);

pub(super) fn vhost() -> Arc<Vhost> {
    Vhost::new("/", "amq.topic", Arc::new(MemoryStore::default()))
}

pub(super) fn s(text: &str) -> HeaderValue {
    HeaderValue::string(text)
}

pub(super) fn args(entries: &[(&str, HeaderValue)]) -> Headers {
    entries.iter().cloned().collect()
}

pub(super) fn exchange(kind: ExchangeKind) -> ExchangeSettings {
    ExchangeSettings {
        kind,
        durable: false,
        auto_delete: false,
        internal: false,
        arguments: Headers::new(),
    }
}

pub(super) fn queue_with(arguments: Headers) -> QueueSettings {
    QueueSettings {
        arguments,
        ..QueueSettings::default()
    }
}

pub(super) fn declare(v: &Vhost, name: &str) -> QueueInfo {
    v.declare_queue(name, QueueSettings::default(), false, C1)
        .expect("declare")
}

fn text(r: Result<impl std::fmt::Debug, VhostError>) -> String {
    r.expect_err("refused").to_string()
}

#[tokio::test]
async fn built_in_exchanges_and_the_protected_default_exchange() {
    let v = vhost();
    let mut names = v.exchange_names();
    names.sort();
    let expected: [&str; 6] = [
        "",
        "amq.direct",
        "amq.fanout",
        "amq.headers",
        "amq.match",
        "amq.topic",
    ];
    assert_eq!(names.iter().map(|n| &**n).collect::<Vec<_>>(), expected);
    assert!(v
        .exchange("amq.match")
        .is_some_and(|x| x.settings.durable && x.kind() == ExchangeKind::Headers));

    let refused =
        VhostError::AccessRefused("operation not permitted on the default exchange".to_string());
    assert_eq!(
        v.declare_exchange("", exchange(ExchangeKind::Direct), false),
        Err(refused.clone())
    );
    assert_eq!(
        v.declare_exchange("", exchange(ExchangeKind::Direct), true),
        Err(refused.clone())
    );
    assert_eq!(v.delete_exchange("", false), Err(refused.clone()));
    declare(&v, "q");
    let none = Headers::empty();
    assert_eq!(
        v.bind_queue("q", "", BindingKey::Amqp("q"), none, C1),
        Err(refused.clone())
    );
    assert_eq!(
        v.unbind_queue("q", "", BindingKey::Amqp("q"), none, C1),
        Err(refused.clone())
    );
    assert_eq!(
        v.bind_exchange("", "amq.direct", BindingKey::Amqp("k"), none),
        Err(refused.clone())
    );
    assert_eq!(
        v.bind_exchange("amq.direct", "", BindingKey::Amqp("k"), none),
        Err(refused)
    );
    assert_eq!(
        text(v.delete_exchange("amq.topic", false)),
        "deletion of system exchange 'amq.topic' in vhost '/' not allowed"
    );
}

#[tokio::test]
async fn declare_exchange_passive_reserved_prefix_and_equivalence() {
    let v = vhost();
    assert_eq!(
        v.declare_exchange("x", exchange(ExchangeKind::Direct), true),
        Err(VhostError::NotFound(
            "no exchange 'x' in vhost '/'".to_string()
        ))
    );
    assert_eq!(
        v.declare_exchange("amq.foo", exchange(ExchangeKind::Direct), false),
        Err(VhostError::AccessRefused(
            "exchange name 'amq.foo' contains reserved prefix 'amq.*'".to_string()
        ))
    );
    // Redeclaring a built-in one alike is fine.
    v.declare_exchange(
        "amq.topic",
        ExchangeSettings::durable(ExchangeKind::Topic),
        false,
    )
    .expect("built-in redeclared alike");

    v.declare_exchange("x", exchange(ExchangeKind::Direct), false)
        .expect("declare");
    v.declare_exchange("x", exchange(ExchangeKind::Direct), false)
        .expect("redeclare");
    v.declare_exchange("x", exchange(ExchangeKind::Fanout), true)
        .expect("passive ignores the settings");
    assert_eq!(
        text(v.declare_exchange("x", exchange(ExchangeKind::Fanout), false)),
        "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current \
         is 'direct'"
    );
    let durable = ExchangeSettings {
        durable: true,
        ..exchange(ExchangeKind::Direct)
    };
    assert_eq!(
        text(v.declare_exchange("x", durable, false)),
        "inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current \
         is 'false'"
    );
    let internal = ExchangeSettings {
        internal: true,
        ..exchange(ExchangeKind::Direct)
    };
    assert!(matches!(
        v.declare_exchange("x", internal, false),
        Err(VhostError::PreconditionFailed(_))
    ));
    let with_ae = ExchangeSettings {
        arguments: args(&[("alternate-exchange", s("ae"))]),
        ..exchange(ExchangeKind::Direct)
    };
    assert_eq!(
        text(v.declare_exchange("x", with_ae, false)),
        "inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received the \
         value 'ae' of type 'longstr' but current is none"
    );
    // Other arguments are not compared (RabbitMQ compares `alternate-exchange` only).
    let other = ExchangeSettings {
        arguments: args(&[("x-anything", s("1"))]),
        ..exchange(ExchangeKind::Direct)
    };
    v.declare_exchange("x", other, false)
        .expect("other args ignored");
    let bad_ae = ExchangeSettings {
        arguments: args(&[("alternate-exchange", HeaderValue::I32(1))]),
        ..exchange(ExchangeKind::Direct)
    };
    assert_eq!(
        text(v.declare_exchange("y", bad_ae, false)),
        "invalid type 'signedint' for arg 'alternate-exchange' in exchange 'y' in vhost '/'"
    );
}

#[tokio::test]
async fn delete_exchange_if_unused_missing_and_as_destination() {
    let v = vhost();
    v.delete_exchange("missing", true)
        .expect("RabbitMQ 3.x: deleting a missing exchange is ok");
    v.declare_exchange("x", exchange(ExchangeKind::Direct), false)
        .unwrap();
    declare(&v, "q");
    v.bind_queue("q", "x", BindingKey::Amqp("k"), Headers::empty(), C1)
        .unwrap();
    assert_eq!(
        text(v.delete_exchange("x", true)),
        "exchange 'x' in vhost '/' in use"
    );
    v.delete_exchange("x", false).unwrap();
    assert!(v.exchange("x").is_none());
    assert!(v.queue("q", C1).is_ok(), "the queue stays");

    // Deleting a destination exchange removes the bindings that lead to it.
    v.declare_exchange("src", exchange(ExchangeKind::Fanout), false)
        .unwrap();
    v.declare_exchange("dst", exchange(ExchangeKind::Fanout), false)
        .unwrap();
    v.bind_exchange("dst", "src", BindingKey::Amqp(""), Headers::empty())
        .unwrap();
    assert!(v.exchange("src").unwrap().has_exchange_bindings());
    v.delete_exchange("dst", false).unwrap();
    assert!(!v.exchange("src").unwrap().has_exchange_bindings());
    v.delete_exchange("src", true)
        .expect("no bindings left from src");
}

#[tokio::test]
async fn server_named_and_reserved_queue_names() {
    let v = vhost();
    let q = declare(&v, "");
    let suffix = q.name.strip_prefix("amq.gen-").expect("server-named");
    assert_eq!(suffix.len(), 22);
    assert_ne!(declare(&v, "").name, q.name);
    // Passive use of a server-named queue is fine; declaring an `amq.` name is not, even one
    // that exists (RabbitMQ checks the name before looking).
    assert!(v
        .declare_queue(&q.name, QueueSettings::default(), true, C1)
        .is_ok());
    assert_eq!(
        text(v.declare_queue(&q.name, QueueSettings::default(), false, C1)),
        format!("queue name '{}' contains reserved prefix 'amq.*'", q.name)
    );
    assert_eq!(
        v.declare_queue("amq.q", QueueSettings::default(), false, C1)
            .unwrap_err(),
        VhostError::AccessRefused("queue name 'amq.q' contains reserved prefix 'amq.*'".into())
    );
    assert_eq!(
        v.declare_queue("nope", QueueSettings::default(), true, C1)
            .unwrap_err(),
        VhostError::NotFound("no queue 'nope' in vhost '/'".into())
    );
}

#[tokio::test]
async fn queue_redeclaration_must_be_equivalent() {
    let v = vhost();
    let five = args(&[
        ("x-max-length", HeaderValue::I64(5)),
        ("x-anything", s("ignored")),
    ]);
    v.declare_queue("q", queue_with(five), false, C1).unwrap();
    let durable = QueueSettings {
        durable: true,
        ..queue_with(args(&[("x-max-length", HeaderValue::I64(5))]))
    };
    assert_eq!(
        text(v.declare_queue("q", durable, false, C1)),
        "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is \
         'false'"
    );
    let auto_delete = QueueSettings {
        auto_delete: true,
        ..queue_with(args(&[("x-max-length", HeaderValue::I64(5))]))
    };
    assert!(matches!(
        v.declare_queue("q", auto_delete, false, C1),
        Err(VhostError::PreconditionFailed(_))
    ));
    assert_eq!(
        text(v.declare_queue(
            "q",
            queue_with(args(&[("x-max-length", HeaderValue::I32(10))])),
            false,
            C1
        )),
        "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '10' but current \
         is '5'"
    );
    assert_eq!(
        text(v.declare_queue("q", QueueSettings::default(), false, C1)),
        "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received none but current \
         is the value '5' of type 'long'"
    );
    // Same value in another integer type, other arguments, an explicit `classic`: equivalent.
    let alike = args(&[
        ("x-max-length", HeaderValue::I32(5)),
        ("x-queue-type", s("classic")),
        ("x-other", s("x")),
    ]);
    let info = v.declare_queue("q", queue_with(alike), false, C1).unwrap();
    assert_eq!(&*info.name, "q");
    assert_eq!(info.messages, 0);
}

#[tokio::test]
async fn queue_arguments_are_type_checked() {
    let v = vhost();
    let cases: [(&str, HeaderValue, &str); 8] = [
        ("x-max-length", s("10"), "{unacceptable_type,longstr}"),
        (
            "x-max-length-bytes",
            HeaderValue::I32(-1),
            "{value_negative,-1}",
        ),
        (
            "x-message-ttl",
            HeaderValue::F64(1.0),
            "{unacceptable_type,double}",
        ),
        (
            "x-overflow",
            s("drop-tail"),
            "{unknown_overflow_type,<<\"drop-tail\">>}",
        ),
        ("x-expires", HeaderValue::I32(0), "{value_zero,0}"),
        (
            "x-max-priority",
            HeaderValue::I32(300),
            "{max_value_exceeded,300}",
        ),
        (
            "x-single-active-consumer",
            HeaderValue::I32(1),
            "{unacceptable_type,signedint}",
        ),
        (
            "x-dead-letter-routing-key",
            s("rk"),
            "routing_key_but_no_dlx_defined",
        ),
    ];
    for (key, value, reason) in cases {
        assert_eq!(
            text(v.declare_queue("q", queue_with(args(&[(key, value)])), false, C1)),
            format!("invalid arg '{key}' for queue 'q' in vhost '/': {reason}"),
        );
    }
    let quorum = text(v.declare_queue(
        "q",
        queue_with(args(&[("x-queue-type", s("quorum"))])),
        false,
        C1,
    ));
    assert!(quorum.contains("'quorum' is not supported"), "{quorum}");
    let accepted = args(&[
        ("x-overflow", s("reject-publish-dlx")),
        ("x-max-priority", HeaderValue::U8(10)),
        ("x-expires", HeaderValue::I32(60_000)),
        ("x-dead-letter-exchange", s("dlx")),
        ("x-dead-letter-routing-key", s("dead")),
        ("x-single-active-consumer", HeaderValue::Bool(true)),
        ("x-queue-mode", s("lazy")),
        ("x-queue-type", s("classic")),
    ]);
    v.declare_queue("q", queue_with(accepted), false, C1)
        .expect("valid arguments");
}

#[tokio::test]
async fn exclusive_queues_belong_to_their_connection() {
    let v = vhost();
    let exclusive = QueueSettings {
        exclusive: true,
        ..QueueSettings::default()
    };
    v.declare_queue("q", exclusive.clone(), false, C1).unwrap();
    v.declare_queue("q", exclusive.clone(), false, C1)
        .expect("the owner redeclares");
    let locked = "cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be \
                  originally declared on another connection or the exclusive property value does \
                  not match that of the original declaration.";
    let is_locked = |r: Result<(), VhostError>| {
        assert_eq!(r, Err(VhostError::ResourceLocked(locked.to_string())));
    };
    is_locked(v.declare_queue("q", exclusive.clone(), false, C2).map(drop));
    is_locked(
        v.declare_queue("q", QueueSettings::default(), true, C2)
            .map(drop),
    );
    is_locked(v.queue("q", C2).map(drop));
    is_locked(v.queue_info("q", C2).map(drop));
    is_locked(v.bind_queue(
        "q",
        "amq.direct",
        BindingKey::Amqp("q"),
        Headers::empty(),
        C2,
    ));
    is_locked(v.delete_queue("q", false, false, C2).await.map(drop));
    is_locked(v.purge_queue("q", C2).await.map(drop));
    // RabbitMQ reports a different `exclusive` as a lock too, even for the owner.
    is_locked(
        v.declare_queue("q", QueueSettings::default(), false, C1)
            .map(drop),
    );
    v.declare_queue("shared", QueueSettings::default(), false, C2)
        .unwrap();
    assert!(matches!(
        v.declare_queue("shared", exclusive.clone(), false, C1),
        Err(VhostError::ResourceLocked(_))
    ));

    v.connection_closed(C2);
    assert!(v.queue("q", C1).is_ok(), "not C2's");
    let handle = v.queue("q", C1).unwrap();
    v.connection_closed(C1);
    assert!(matches!(v.queue("q", C1), Err(VhostError::NotFound(_))));
    assert!(v.queue("shared", C1).is_ok(), "not exclusive");
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !handle.is_closed() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the actor stops");
}

#[tokio::test]
async fn auto_delete_queue_goes_with_its_last_consumer() {
    let v = vhost();
    let auto = QueueSettings {
        auto_delete: true,
        ..QueueSettings::default()
    };
    v.declare_queue("q", auto, false, C1).unwrap();
    v.bind_queue(
        "q",
        "amq.fanout",
        BindingKey::Amqp(""),
        Headers::empty(),
        C1,
    )
    .unwrap();
    // Never consumed: stays.
    v.consumer_removed("q");
    assert!(v.queue("q", C1).is_ok());
    v.consumer_added("q");
    v.consumer_added("q");
    assert_eq!(v.queue_info("q", C1).unwrap().consumers, 2);
    v.consumer_removed("q");
    assert!(v.queue("q", C1).is_ok());
    v.consumer_removed("q");
    assert!(v.queue("q", C1).is_err(), "deleted with the last consumer");
    let m = crate::broker::exchange::test_support::message("k", None);
    assert!(v.route("amq.fanout", &m).unwrap().is_empty(), "unbound");

    // A plain queue stays.
    declare(&v, "plain");
    v.consumer_added("plain");
    v.consumer_removed("plain");
    assert!(v.queue("plain", C1).is_ok());
}

#[tokio::test]
async fn auto_delete_exchange_goes_with_its_last_binding() {
    let v = vhost();
    let auto = ExchangeSettings {
        auto_delete: true,
        ..exchange(ExchangeKind::Fanout)
    };
    v.declare_exchange("x", auto.clone(), false).unwrap();
    declare(&v, "q1");
    declare(&v, "q2");
    v.bind_queue("q1", "x", BindingKey::Amqp(""), Headers::empty(), C1)
        .unwrap();
    v.bind_queue("q2", "x", BindingKey::Amqp(""), Headers::empty(), C1)
        .unwrap();
    v.unbind_queue("q1", "x", BindingKey::Amqp(""), Headers::empty(), C1)
        .unwrap();
    assert!(v.exchange("x").is_some());
    // Deleting the last bound queue takes the exchange too.
    v.delete_queue("q2", false, false, C1).await.unwrap();
    assert!(v.exchange("x").is_none());

    // Cascade: y (auto-delete) -> x (auto-delete) -> q.
    v.declare_exchange("x", auto.clone(), false).unwrap();
    v.declare_exchange("y", auto, false).unwrap();
    v.bind_exchange("x", "y", BindingKey::Amqp(""), Headers::empty())
        .unwrap();
    v.bind_queue("q1", "x", BindingKey::Amqp(""), Headers::empty(), C1)
        .unwrap();
    v.delete_queue("q1", false, false, C1).await.unwrap();
    assert!(v.exchange("x").is_none());
    assert!(v.exchange("y").is_none());
}

#[tokio::test]
async fn delete_queue_if_unused_if_empty_and_missing() {
    let v = vhost();
    declare(&v, "q");
    v.bind_queue(
        "q",
        "amq.direct",
        BindingKey::Amqp("k"),
        Headers::empty(),
        C1,
    )
    .unwrap();
    let m = Arc::new(crate::broker::exchange::test_support::message("q", None));
    let mut pending = Vec::new();
    let routed = v.route("", &m).unwrap();
    assert_eq!(
        crate::broker::dispatch::dispatch(&m, &routed, &mut pending),
        1
    );
    assert_eq!(
        text(v.delete_queue("q", false, true, C1).await),
        "queue 'q' in vhost '/' not empty"
    );
    v.consumer_added("q");
    assert_eq!(
        text(v.delete_queue("q", true, false, C1).await),
        "queue 'q' in vhost '/' in use"
    );
    assert_eq!(v.purge_queue("q", C1).await, Ok(1));
    assert_eq!(v.delete_queue("q", false, true, C1).await, Ok(0));
    assert!(v.queue("q", C1).is_err());
    assert_eq!(
        v.delete_queue("q", true, true, C1).await,
        Ok(0),
        "missing is ok"
    );
    let k = crate::broker::exchange::test_support::message("k", None);
    assert!(
        v.route("amq.direct", &k).unwrap().is_empty(),
        "bindings removed"
    );
    assert!(matches!(
        v.purge_queue("q", C1).await,
        Err(VhostError::NotFound(_))
    ));

    // The count of dropped messages.
    declare(&v, "q");
    for _ in 0..3 {
        crate::broker::dispatch::dispatch(&m, &v.route("", &m).unwrap(), &mut pending);
    }
    assert_eq!(v.delete_queue("q", false, false, C1).await, Ok(3));
}

#[tokio::test]
async fn bind_and_unbind_identity() {
    let v = vhost();
    declare(&v, "q");
    let none = Headers::empty();
    assert_eq!(
        v.bind_queue("missing", "amq.topic", BindingKey::Amqp("a"), none, C1),
        Err(VhostError::NotFound(
            "no queue 'missing' in vhost '/'".into()
        ))
    );
    assert_eq!(
        v.bind_queue("q", "missing", BindingKey::Amqp("a"), none, C1),
        Err(VhostError::NotFound(
            "no exchange 'missing' in vhost '/'".into()
        ))
    );
    assert_eq!(
        v.bind_exchange("missing", "amq.topic", BindingKey::Amqp("a"), none),
        Err(VhostError::NotFound(
            "no exchange 'missing' in vhost '/'".into()
        ))
    );
    let m = crate::broker::exchange::test_support::message("a/b", None);
    let routes = |v: &Vhost| v.route("amq.topic", &m).unwrap().len();

    v.bind_queue("q", "amq.topic", BindingKey::Amqp("a.*"), none, C1)
        .unwrap();
    // The same binding twice, and in the other spelling: one binding.
    v.bind_queue("q", "amq.topic", BindingKey::Amqp("a.*"), none, C1)
        .unwrap();
    v.bind_queue("q", "amq.topic", BindingKey::Mqtt("a/+"), none, C1)
        .unwrap();
    assert_eq!(routes(&v), 1);
    v.unbind_queue("q", "amq.topic", BindingKey::Mqtt("a/+"), none, C1)
        .unwrap();
    assert_eq!(routes(&v), 0);
    v.unbind_queue("q", "amq.topic", BindingKey::Amqp("a.*"), none, C1)
        .expect("unbinding a missing binding is ok");

    // Same key, different arguments: two bindings; removing one keeps the route.
    let extra = args(&[("x-note", s("1"))]);
    v.bind_queue("q", "amq.topic", BindingKey::Amqp("a.*"), none, C1)
        .unwrap();
    v.bind_queue("q", "amq.topic", BindingKey::Amqp("a.*"), &extra, C1)
        .unwrap();
    v.unbind_queue("q", "amq.topic", BindingKey::Amqp("a.*"), none, C1)
        .unwrap();
    assert_eq!(routes(&v), 1, "the binding with arguments still routes");
    v.unbind_queue("q", "amq.topic", BindingKey::Amqp("a.*"), &extra, C1)
        .unwrap();
    assert_eq!(routes(&v), 0);

    // Headers exchanges check `x-match` before binding.
    assert_eq!(
        text(v.bind_queue(
            "q",
            "amq.headers",
            BindingKey::Amqp(""),
            &args(&[("x-match", s("most"))]),
            C1
        )),
        "Invalid x-match field value \"most\"; expected all, any, all-with-x, or any-with-x"
    );
}

#[tokio::test]
async fn deleted_queue_cancels_its_consumers() {
    use crate::broker::queue::{ConsumerSink, ConsumerTag, QueueDelivery};
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Sink(Mutex<Vec<ConsumerTag>>);
    impl ConsumerSink for Sink {
        fn deliver(&self, _delivery: QueueDelivery) {}
        fn cancelled(&self, tag: &ConsumerTag) {
            self.0.lock().push(tag.clone());
        }
    }
    let v = vhost();
    let q = declare(&v, "q");
    let sink = Arc::new(Sink::default());
    q.handle
        .consume(ConsumerTag("c".into()), sink.clone(), 0, false);
    v.consumer_added("q");
    v.delete_queue("q", false, false, C1).await.unwrap();
    assert_eq!(*sink.0.lock(), [ConsumerTag("c".into())]);
    assert!(q.handle.is_closed());
}

#[test]
fn async_operations_can_run_on_spawned_tasks() {
    fn send<T: Send>(_: T) {}
    let v = vhost();
    // Never polled: only the futures' types are checked (no lock is held across `.await`).
    send(v.delete_queue("q", true, true, C1));
    send(v.purge_queue("q", C1));
}
