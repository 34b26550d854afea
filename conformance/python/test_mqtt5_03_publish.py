"""MQTT 5.0 PUBLISH: reason codes on PUBACK / PUBREC, properties passed through unchanged
(Response Topic, Correlation Data, User Properties, Content Type, Payload Format Indicator), and
the Message Expiry Interval (decremented on delivery, expired messages dropped)."""

import time

import pytest

import rawmqtt as r
from pahoclient import V311, V5


def test_no_matching_subscribers_reason_on_puback(broker, clients):
    pub = clients(broker, "nms-pub", version=V5)
    pub.connect()
    # Section 3.4.2.1: PUBACK 0x10 No matching subscribers (as Mosquitto).
    assert pub.publish("nobody/here", b"x", qos=1) == 0x10
    sub = clients(broker, "nms-sub", version=V5)
    sub.connect()
    sub.subscribe("nobody/+", 0)
    assert pub.publish("nobody/here", b"x", qos=1) == 0x00


def test_pubrec_without_subscribers_is_success_class(broker, raw):
    c = raw(broker)
    c.connect("nms-q2", version=5)
    c.send(r.publish("nobody/q2", b"x", qos=2, packet_id=3, version=5))
    rec = c.expect(r.PUBREC)
    # Section 3.5.2.1: 0x00 (Mosquitto) or 0x10; either way below 0x80, so the flow continues.
    assert rec.packet_id() == 3 and rec.reason() in (0x00, 0x10)
    c.send(r.ack(r.PUBREL, 3))
    comp = c.expect(r.PUBCOMP)
    assert comp.packet_id() == 3 and comp.reason() == 0


def test_properties_are_passed_through(broker, clients):
    sub = clients(broker, "pp-sub", version=V5)
    sub.connect()
    sub.subscribe("pp/t", 1)
    pub = clients(broker, "pp-pub", version=V5)
    pub.connect()
    user = [("z", "1"), ("a", "2"), ("z", "3")]
    pub.publish("pp/t", "héllo".encode(), qos=1, properties=dict(
        ResponseTopic="pp/reply", CorrelationData=b"\x00\x01corr", UserProperty=user,
        ContentType="text/plain; charset=utf-8", PayloadFormatIndicator=1))
    m = sub.get()
    # [MQTT-3.3.2-15] Response Topic, [MQTT-3.3.2-16] Correlation Data, [MQTT-3.3.2-17]/[MQTT-3.3.2-18]
    # User Properties in order, [MQTT-3.3.2-20] Content Type, [MQTT-3.3.2-4] Payload Format Indicator
    # are sent unaltered.
    assert m.prop("ResponseTopic") == "pp/reply"
    assert m.prop("CorrelationData") == b"\x00\x01corr"
    assert m.prop("UserProperty") == user
    assert m.prop("ContentType") == "text/plain; charset=utf-8"
    assert m.prop("PayloadFormatIndicator") == 1
    assert m.payload == "héllo".encode()


def test_absent_properties_stay_absent(broker, clients):
    sub = clients(broker, "ap-sub", version=V5)
    sub.connect()
    sub.subscribe("ap/t", 1)
    pub = clients(broker, "ap-pub", version=V5)
    pub.connect()
    pub.publish("ap/t", b"bare", qos=1)
    m = sub.get()
    for name in ("ResponseTopic", "CorrelationData", "UserProperty", "ContentType", "PayloadFormatIndicator",
                 "MessageExpiryInterval", "SubscriptionIdentifier"):
        assert m.prop(name) is None, name


def test_request_response_roundtrip(broker, clients):
    responder = clients(broker, "rr-responder", version=V5)
    responder.connect()
    responder.subscribe("rr/request", 1)
    requester = clients(broker, "rr-requester", version=V5)
    requester.connect()
    requester.subscribe("rr/reply/me", 1)
    requester.publish("rr/request", b"ping", qos=1,
                      properties=dict(ResponseTopic="rr/reply/me", CorrelationData=b"42"))
    req = responder.get()
    responder.publish(req.prop("ResponseTopic"), b"pong", qos=1,
                      properties=dict(CorrelationData=req.prop("CorrelationData")))
    resp = requester.get()
    assert (resp.topic, resp.payload, resp.prop("CorrelationData")) == ("rr/reply/me", b"pong", b"42")


def test_v5_properties_do_not_leak_to_v311(broker, clients, raw):
    c = raw(broker)
    c.connect("v3-recv", version=4)
    c.subscribe([("leak/t", 1)])
    pub = clients(broker, "leak-pub", version=V5)
    pub.connect()
    pub.publish("leak/t", b"plain", qos=1, properties=dict(UserProperty=[("k", "v")], ContentType="x"))
    p = c.expect(r.PUBLISH)
    topic, pid, _, payload = p.publish(version=4)
    # A 3.1.1 PUBLISH has no property block: the payload follows the packet id directly.
    assert (topic, payload) == ("leak/t", b"plain")


def test_message_expiry_is_decremented_while_queued(broker, clients):
    a = clients(broker, "mx-dec", version=V5, clean=False, properties=dict(SessionExpiryInterval=60))
    a.connect()
    a.subscribe("mx/t", 1)
    a.disconnect()
    pub = clients(broker, "mx-dec-pub", version=V5)
    pub.connect()
    pub.publish("mx/t", b"ages", qos=1, properties=dict(MessageExpiryInterval=30))
    time.sleep(1.2)  # time spent queued is the thing under test; nothing to wait on
    b = clients(broker, "mx-dec", version=V5, clean=False, properties=dict(SessionExpiryInterval=60))
    b.connect()
    m = b.get()
    # [MQTT-3.3.2-6] the forwarded interval is the received one minus the time spent waiting.
    assert m.payload == b"ages"
    assert 26 <= m.prop("MessageExpiryInterval") <= 29


def test_message_expiry_on_live_delivery(broker, clients):
    sub = clients(broker, "mx-live", version=V5)
    sub.connect()
    sub.subscribe("mxl/t", 1)
    pub = clients(broker, "mx-live-pub", version=V5)
    pub.connect()
    pub.publish("mxl/t", b"fresh", qos=1, properties=dict(MessageExpiryInterval=100))
    assert sub.get().prop("MessageExpiryInterval") in (99, 100)


def test_expired_message_is_not_delivered(broker, clients):
    a = clients(broker, "mx-drop", version=V5, clean=False, properties=dict(SessionExpiryInterval=60))
    a.connect()
    a.subscribe("mxd/#", 1)
    a.disconnect()
    pub = clients(broker, "mx-drop-pub", version=V5)
    pub.connect()
    pub.publish("mxd/short", b"expires", qos=1, properties=dict(MessageExpiryInterval=1))
    pub.publish("mxd/long", b"survives", qos=1, properties=dict(MessageExpiryInterval=60))
    pub.publish("mxd/none", b"no expiry", qos=1)
    time.sleep(1.6)  # let the 1 s expiry pass while the session is offline (no observable event)
    b = clients(broker, "mx-drop", version=V5, clean=False, properties=dict(SessionExpiryInterval=60))
    b.connect()
    got = b.get_until("mxd/none")
    # [MQTT-3.3.2-5] a message whose interval has passed is not delivered.
    assert [m.topic for m in got] == ["mxd/long", "mxd/none"]


def test_retained_message_expires(broker, clients):
    pub = clients(broker, "rx-pub", version=V5)
    pub.connect()
    pub.publish("rx/t", b"short-lived", qos=1, retain=True, properties=dict(MessageExpiryInterval=1))
    pub.publish("rx/u", b"long-lived", qos=1, retain=True)
    time.sleep(1.6)  # let the retained message's 1 s expiry pass (no observable event)
    sub = clients(broker, "rx-sub", version=V5)
    sub.connect()
    sub.subscribe("rx-end/s", 0)
    sub.subscribe("rx/+", 1)
    sub.publish("rx-end/s", b"")
    # Section 3.3.2.3.3: an expired retained message is no longer delivered.
    assert [m.topic for m in sub.get_until("rx-end/s")] == ["rx/u", "rx-end/s"]


def test_topic_alias_from_client(broker, clients):
    sub = clients(broker, "ta-sub", version=V5)
    sub.connect()
    sub.subscribe("ta/#", 1)
    pub = clients(broker, "ta-pub", version=V5)
    pub.connect()
    pub.publish("ta/long/topic/name", b"first", qos=1, properties=dict(TopicAlias=1))
    pub.publish("", b"second", qos=1, properties=dict(TopicAlias=1))
    pub.publish("ta/other", b"third", qos=1, properties=dict(TopicAlias=1))  # re-map alias 1
    pub.publish("", b"fourth", qos=1, properties=dict(TopicAlias=1))
    got = sub.get_n(4)
    # Section 3.3.2.3.4: an empty topic with a known alias means the aliased topic; a topic plus
    # an alias (re)defines the mapping.
    assert [(m.topic, m.payload) for m in got] == [
        ("ta/long/topic/name", b"first"), ("ta/long/topic/name", b"second"),
        ("ta/other", b"third"), ("ta/other", b"fourth")]
    # Aliases are per connection: the subscriber sees full topics (it set no Topic Alias Maximum).
    assert all(m.wire_topic == m.topic and m.prop("TopicAlias") is None for m in got)


@pytest.mark.parametrize("alias", [0, 65])
def test_topic_alias_out_of_range_is_rejected(broker, raw, alias):
    c = raw(broker)
    c.connect("ta-bad", version=5)  # default topic_alias_maximum = 64
    c.send(r.publish("tab/t", b"x", version=5, properties=r.props(r.prop(r.TOPIC_ALIAS, alias))))
    got = c.expect_closed()
    # [MQTT-3.3.2-8] alias 0, [MQTT-3.3.2-9] alias above Topic Alias Maximum: DISCONNECT 0x94.
    assert [(p.type, p.reason()) for p in got] == [(r.DISCONNECT, r.TOPIC_ALIAS_INVALID)]


def test_unknown_topic_alias_is_protocol_error(broker, raw):
    c = raw(broker)
    c.connect("ta-unknown", version=5)
    c.send(r.publish("", b"x", version=5, properties=r.props(r.prop(r.TOPIC_ALIAS, 5))))
    got = c.expect_closed()
    # Section 3.3.4: an alias not yet mapped on this connection is a Protocol Error.
    assert [(p.type, p.reason()) for p in got] == [(r.DISCONNECT, r.PROTOCOL_ERROR)]


def test_topic_alias_to_client(broker, clients):
    sub = clients(broker, "tac-sub", version=V5, properties=dict(TopicAliasMaximum=2))
    sub.connect()
    sub.subscribe("tac/#", 1)
    pub = clients(broker, "tac-pub", version=V5)
    pub.connect()
    topics = ["tac/a", "tac/a", "tac/b", "tac/b", "tac/c", "tac/a", "tac/c"]
    for i, t in enumerate(topics):
        pub.publish(t, str(i).encode(), qos=1)
    got = sub.get_n(len(topics))
    # Resolved through the aliases the broker chose, every topic is the one published.
    assert [(m.topic, int(m.payload)) for m in got] == list(zip(topics, range(len(topics))))
    aliases = [m.prop("TopicAlias") for m in got]
    # [MQTT-3.3.2-11] / [MQTT-3.1.2-26] never above the client's Topic Alias Maximum (2)...
    assert all(a is None or 1 <= a <= 2 for a in aliases), aliases
    # ...and at least one PUBLISH actually used an alias with an empty topic.
    assert any(m.wire_topic == "" for m in got), [(m.wire_topic, m.prop("TopicAlias")) for m in got]


def test_no_topic_alias_to_client_without_maximum(broker, raw, clients):
    c = raw(broker)
    c.connect("tac-none", version=5)
    c.subscribe([("tn/t", 0)], version=5)
    pub = clients(broker, "tac-none-pub", version=V5)
    pub.connect()
    for _ in range(3):
        pub.publish("tn/t", b"x")
    for _ in range(3):
        topic, _, properties, _ = c.expect(r.PUBLISH).publish(5)
        # [MQTT-3.1.2-27] no Topic Alias to a client that announced none (maximum absent).
        assert topic == "tn/t" and r.TOPIC_ALIAS not in properties


def test_publish_from_v311_reaches_v5_without_properties(broker, clients):
    sub = clients(broker, "x-sub", version=V5)
    sub.connect()
    sub.subscribe("x/t", 2)
    pub = clients(broker, "x-pub", version=V311)
    pub.connect()
    pub.publish("x/t", b"from 3.1.1", qos=2)
    m = sub.get()
    assert (m.payload, m.qos, m.prop("UserProperty")) == (b"from 3.1.1", 2, None)


def test_client_subscription_identifier_does_not_reach_subscribers(broker, raw, clients):
    sub = clients(broker, "csid-sub", version=V5)
    sub.connect()
    sub.subscribe("csid/t", 1, sub_id=5)
    c = raw(broker)
    c.connect("csid-pub", version=5)
    c.send(r.publish("csid/t", b"x", qos=1, packet_id=1, version=5,
                     properties=r.props(r.prop(r.SUBSCRIPTION_ID, 99))))
    # [MQTT-3.3.4-6] a client must not send a Subscription Identifier in PUBLISH: the server
    # either treats it as a Protocol Error (DISCONNECT 0x82) or ignores it; it never forwards it.
    first = c.recv()
    if first is not None and first.type == r.DISCONNECT:
        assert first.reason() == r.PROTOCOL_ERROR
        return
    assert first is not None and first.type == r.PUBACK, first
    assert sub.get().prop("SubscriptionIdentifier") == [5]
