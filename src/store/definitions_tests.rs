//! Tests of the definitions log: round trips, compaction, vhost-tagged records and MQTT
//! session records.

use super::*;

fn queue_binding(q: &str) -> BindingDef {
    BindingDef {
        source: "x".into(),
        destination: BoundTo::Queue(q.into()),
        key: "a.*".into(),
        mqtt_key: false,
        arguments: Headers::new(),
    }
}

#[test]
fn mqtt_sessions_replay_replaced_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("definitions.log");
    let sub = |filter: &str, id| MqttSubscriptionDef {
        filter: filter.into(),
        qos: 1,
        no_local: true,
        retain_as_published: false,
        retain_handling: 2,
        id,
    };
    {
        let (defs, _) = Definitions::open(&path, true).expect("open");
        for (client, expiry) in [("a", 60), ("b", u32::MAX)] {
            defs.record(
                "/",
                &Change::MqttSession(
                    client.into(),
                    MqttSessionDef {
                        expiry_secs: expiry,
                        subscriptions: vec![sub("t/+", None)],
                        will: None,
                        ..MqttSessionDef::default()
                    },
                ),
            );
        }
        defs.record(
            "/",
            &Change::MqttSession(
                "a".into(),
                MqttSessionDef {
                    expiry_secs: 30,
                    subscriptions: vec![sub("x/#", Some(7)), sub("$share/g/y", None)],
                    will: Some((
                        12,
                        crate::broker::message::Message {
                            exchange: "amq.topic".into(),
                            topic: "dev/a/status".into(),
                            body: bytes::Bytes::from_static(b"offline"),
                            qos: 1,
                            retain: true,
                            expires_at: None,
                            properties: Default::default(),
                            origin: Default::default(),
                        },
                    )),
                    offline_since: Some(1_700_000_000),
                    will_due: Some(1_700_000_012),
                },
            ),
        );
        defs.record("/", &Change::DeleteMqttSession("b".into()));
    }
    for _ in 0..2 {
        // Twice: the second open reads the compacted file the first one wrote.
        let (_, sets) = Definitions::open(&path, true).expect("reopen");
        let set = &sets["/"];
        assert_eq!(set.mqtt_sessions.len(), 1);
        let a = &set.mqtt_sessions["a"];
        assert_eq!(a.expiry_secs, 30);
        assert_eq!(
            a.subscriptions,
            vec![sub("x/#", Some(7)), sub("$share/g/y", None)]
        );
        let (delay, will) = a.will.as_ref().expect("the will is kept");
        assert_eq!(*delay, 12);
        assert_eq!(
            (will.topic.as_str(), &will.body[..]),
            ("dev/a/status", &b"offline"[..])
        );
        assert!(will.retain);
        assert_eq!(a.offline_since, Some(1_700_000_000));
        assert_eq!(a.will_due, Some(1_700_000_012));
    }
}

#[test]
fn changes_replay_after_reopen_and_a_torn_tail_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("definitions.log");
    {
        let (defs, sets) = Definitions::open(&path, true).expect("open");
        assert!(sets.is_empty());
        let mut settings = ExchangeSettings::durable(ExchangeKind::Topic);
        settings.arguments.0.push((
            "alternate-exchange".into(),
            crate::broker::headers::HeaderValue::LongString("ae".into()),
        ));
        defs.record("/", &Change::Exchange("x".into(), settings));
        for q in ["q1", "q2", "q3"] {
            defs.record(
                "/",
                &Change::Queue(
                    q.into(),
                    QueueDef {
                        auto_delete: false,
                        arguments: Headers::new(),
                    },
                ),
            );
            defs.record("/", &Change::Bind(queue_binding(q)));
        }
        defs.record("/", &Change::DeleteQueue("q2".into()));
        defs.record("/", &Change::Unbind(queue_binding("q3")));
        defs.record(
            "/",
            &Change::Queue(
                "torn".into(),
                QueueDef {
                    auto_delete: true,
                    arguments: Headers::new(),
                },
            ),
        );
    }
    let len = std::fs::metadata(&path).expect("meta").len();
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(len - 2).expect("truncate");
    drop(f);
    let (_, sets) = Definitions::open(&path, true).expect("reopen");
    let set = &sets["/"];
    assert_eq!(set.exchanges["x"].kind, ExchangeKind::Topic);
    assert!(set.exchanges["x"]
        .arguments
        .get("alternate-exchange")
        .is_some());
    assert_eq!(
        set.queues.keys().cloned().collect::<Vec<_>>(),
        vec!["q1".to_string(), "q3".to_string()]
    );
    assert_eq!(set.bindings, vec![queue_binding("q1")]);
    // The compacted file replays to the same set.
    let (_, again) = Definitions::open(&path, true).expect("reopen");
    let again = &again["/"];
    assert_eq!(again.queues.len(), 2);
    assert_eq!(again.bindings, set.bindings);
}

#[test]
fn vhosts_keep_their_own_definitions_and_a_deleted_vhost_is_forgotten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("definitions.log");
    let queue = |auto_delete| QueueDef {
        auto_delete,
        arguments: Headers::new(),
    };
    {
        let (defs, _) = Definitions::open(&path, true).expect("open");
        defs.record("/", &Change::Queue("q".into(), queue(false)));
        defs.record("prod", &Change::Queue("q".into(), queue(true)));
        defs.record("prod", &Change::Bind(queue_binding("q")));
        defs.record("gone", &Change::Queue("g".into(), queue(false)));
        defs.record("prod", &Change::Incarnation("b1".into()));
        defs.record("idonly", &Change::Incarnation("c2".into()));
        // Written without waiting, then synced as a declare does after its lock.
        let at = defs.append("prod", &Change::Queue("p2".into(), queue(false)));
        defs.sync_to(at);
        defs.forget_vhost("gone");
    }
    for _ in 0..2 {
        let (_, sets) = Definitions::open(&path, true).expect("reopen");
        assert_eq!(
            sets.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["/", "idonly", "prod"],
            "a vhost with only its incarnation is kept through compaction"
        );
        assert_eq!(sets["prod"].incarnation.as_deref(), Some("b1"));
        assert_eq!(sets["idonly"].incarnation.as_deref(), Some("c2"));
        assert_eq!(sets["/"].incarnation, None);
        assert!(!sets["/"].queues["q"].auto_delete);
        assert!(sets["/"].bindings.is_empty());
        assert!(sets["prod"].queues["q"].auto_delete);
        assert!(sets["prod"].queues.contains_key("p2"));
        assert_eq!(sets["prod"].bindings, vec![queue_binding("q")]);
    }
}
