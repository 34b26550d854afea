"""Retained messages (MQTT 3.1.1 section 3.3.1.3; the same rules hold in 3.1 and 5.0): store,
replace, delete with an empty payload, delivery on subscribe (wildcards included) with RETAIN 1,
and RETAIN 0 on normal forwarding."""

import pytest

from pahoclient import V31, V311, V5, VERSION_IDS

ALL = pytest.mark.parametrize("version", [V31, V311, V5], ids=[VERSION_IDS[v] for v in (V31, V311, V5)])


def _subscribe_and_collect(client, topic_filter, qos=1, end="zz-end/sentinel"):
    """Subscribes, then publishes a live sentinel: every retained message queued by the
    SUBSCRIBE precedes it on the session."""
    client.subscribe(end, 0)
    client.subscribe(topic_filter, qos)
    client.publish(end, b"", qos=0)
    return [m for m in client.get_until(end) if m.topic != end]


@ALL
def test_retained_message_is_delivered_to_new_subscriber(broker, clients, version):
    pub = clients(broker, "ret-pub", version=version)
    pub.connect()
    pub.publish("ret/a", b"kept", qos=1, retain=True)
    sub = clients(broker, "ret-sub", version=version)
    sub.connect()
    got = _subscribe_and_collect(sub, "ret/a")
    # 3.1.1 [MQTT-3.3.1-5] stored, [MQTT-3.3.1-6] sent on subscribe, [MQTT-3.3.1-8] RETAIN 1.
    assert [(m.topic, m.payload, m.retain, m.qos) for m in got] == [("ret/a", b"kept", True, 1)]


@ALL
def test_retained_message_is_replaced(broker, clients, version):
    pub = clients(broker, "rep-pub", version=version)
    pub.connect()
    pub.publish("ret/r", b"old", qos=1, retain=True)
    pub.publish("ret/r", b"new", qos=0, retain=True)
    # QoS 0 has no answer: a QoS 1 round trip behind it on the same connection shows the broker
    # has handled it before another connection subscribes.
    pub.publish("ret/r-sync", b"", qos=1)
    sub = clients(broker, "rep-sub", version=version)
    sub.connect()
    # [MQTT-3.3.1-7] (3.1.1): a new retained message (even QoS 0) replaces the previous one.
    assert [(m.payload, m.qos) for m in _subscribe_and_collect(sub, "ret/r", qos=2)] == [(b"new", 0)]


@ALL
def test_empty_retained_payload_deletes(broker, clients, version):
    pub = clients(broker, "del-pub", version=version)
    pub.connect()
    pub.publish("ret/d", b"doomed", qos=1, retain=True)
    live = clients(broker, "del-live", version=version)
    live.connect()
    live.subscribe("ret/d", 1)
    assert live.get().payload == b"doomed"
    pub.publish("ret/d", b"", qos=1, retain=True)
    # [MQTT-3.3.1-10] (3.1.1): the empty message is forwarded to current subscribers as normal...
    m = live.get()
    assert (m.payload, m.retain) == (b"", False)
    late = clients(broker, "del-late", version=version)
    late.connect()
    # ...and removes the retained message; [MQTT-3.3.1-11] nothing empty is stored.
    assert _subscribe_and_collect(late, "ret/d") == []


@ALL
def test_non_retained_publish_leaves_retained_message(broker, clients, version):
    pub = clients(broker, "nr-pub", version=version)
    pub.connect()
    pub.publish("ret/n", b"retained", qos=1, retain=True)
    pub.publish("ret/n", b"transient", qos=1, retain=False)
    sub = clients(broker, "nr-sub", version=version)
    sub.connect()
    # [MQTT-3.3.1-12] (3.1.1): RETAIN 0 neither stores nor replaces.
    assert [m.payload for m in _subscribe_and_collect(sub, "ret/n")] == [b"retained"]


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("topic_filter,expected", [
    ("w/#", ["w", "w/a", "w/a/b", "w/c"]),
    ("w/+", ["w/a", "w/c"]),
    ("w/+/b", ["w/a/b"]),
    ("+/a", ["w/a"]),
    ("#", ["other", "w", "w/a", "w/a/b", "w/c"]),
    ("w/a/b/#", ["w/a/b"]),
    ("nomatch/+", []),
])
def test_retained_messages_match_wildcard_filters(broker, clients, version, topic_filter, expected):
    pub = clients(broker, "wret-pub", version=version)
    pub.connect()
    for t in ["w", "w/a", "w/a/b", "w/c", "other", "$SYS/fake"]:
        pub.publish(t, t.encode(), qos=1, retain=True)
    sub = clients(broker, "wret-sub", version=version)
    sub.connect()
    got = _subscribe_and_collect(sub, topic_filter)
    # [MQTT-3.3.1-6] (3.1.1) every matching retained message; [MQTT-4.7.2-1] not `$` topics.
    assert sorted(m.topic for m in got) == sorted(expected)
    assert all(m.retain and m.payload == m.topic.encode() for m in got)


@pytest.mark.parametrize("version", [V31, V311], ids=["v31", "v311"])
def test_retain_flag_cleared_on_normal_forwarding(broker, clients, version):
    sub = clients(broker, "rf-sub", version=version)
    sub.connect()
    sub.subscribe("rf/t", 1)
    pub = clients(broker, "rf-pub", version=version)
    pub.connect()
    pub.publish("rf/t", b"live", qos=1, retain=True)
    m = sub.get()
    # [MQTT-3.3.1-9] (3.1.1): RETAIN 0 towards an established subscription.
    assert (m.payload, m.retain) == (b"live", False)
    sub2 = clients(broker, "rf-sub2", version=version)
    sub2.connect()
    # ...while the same message sent because of a new subscription has RETAIN 1 [MQTT-3.3.1-8].
    assert [m.retain for m in _subscribe_and_collect(sub2, "rf/t")] == [True]


@ALL
def test_retained_delivery_qos_is_capped_by_subscription(broker, clients, version):
    pub = clients(broker, "rq-pub", version=version)
    pub.connect()
    pub.publish("rq/two", b"2", qos=2, retain=True)
    pub.publish("rq/one", b"1", qos=1, retain=True)
    sub = clients(broker, "rq-sub", version=version)
    sub.connect()
    got = {m.topic: m.qos for m in _subscribe_and_collect(sub, "rq/+", qos=1)}
    # Delivered at min(stored QoS, granted QoS).
    assert got == {"rq/two": 1, "rq/one": 1}
    sub0 = clients(broker, "rq-sub0", version=version)
    sub0.connect()
    assert {m.qos for m in _subscribe_and_collect(sub0, "rq/+", qos=0)} == {0}


def test_retained_sent_again_on_resubscribe_v311(broker, clients):
    pub = clients(broker, "rs2-pub")
    pub.connect()
    pub.publish("rs2/t", b"again", qos=1, retain=True)
    sub = clients(broker, "rs2-sub")
    sub.connect()
    assert len(_subscribe_and_collect(sub, "rs2/t")) == 1
    # [MQTT-3.8.4-3] a repeated SUBSCRIBE re-sends the retained messages (3.1.1).
    assert len(_subscribe_and_collect(sub, "rs2/t")) == 1


def test_retained_message_persists_after_publisher_leaves(broker, clients):
    pub = clients(broker, "gone-pub", version=V311)
    pub.connect()
    pub.publish("gone/t", b"still here", qos=1, retain=True)
    pub.disconnect()
    sub = clients(broker, "gone-sub")
    sub.connect()
    assert [m.payload for m in _subscribe_and_collect(sub, "gone/#")] == [b"still here"]
