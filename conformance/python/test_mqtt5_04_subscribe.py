"""MQTT 5.0 SUBSCRIBE options and features: Subscription Identifiers, No Local, Retain As
Published, Retain Handling, shared subscriptions, SUBACK / UNSUBACK reason codes."""

import collections

import rawmqtt as r
from pahoclient import V5

END = "zz-end/sentinel"


def _client(clients, broker, cid, **kw):
    c = clients(broker, cid, version=V5, **kw)
    c.connect()
    return c


def _collect_after_subscribe(c, topic_filter, qos=1, **opts):
    """Subscribe, then a live sentinel: what the SUBSCRIBE triggered arrives before it."""
    c.subscribe(END, 0)
    c.subscribe(topic_filter, qos, **opts)
    c.publish(END, b"")
    return [m for m in c.get_until(END) if m.topic != END]


def test_subscription_identifier_on_delivery(broker, clients):
    sub = _client(clients, broker, "sid-sub")
    sub.subscribe("sid/a/#", 1, sub_id=7)
    sub.subscribe("sid/other", 1, sub_id=268435455)
    pub = _client(clients, broker, "sid-pub")
    pub.publish("sid/a/b", b"x", qos=1)
    pub.publish("sid/other", b"y", qos=1)
    a, b = sub.get(), sub.get()
    # [MQTT-3.3.4-3] the Subscription Identifier of the matching subscription is sent.
    assert (a.topic, a.prop("SubscriptionIdentifier")) == ("sid/a/b", [7])
    assert (b.topic, b.prop("SubscriptionIdentifier")) == ("sid/other", [268435455])


def test_overlapping_subscription_identifiers(broker, clients):
    sub = _client(clients, broker, "sido-sub")
    sub.subscribe("so/#", 1, sub_id=3)
    sub.subscribe("so/+", 2, sub_id=5)
    sub.subscribe("so/x", 0)  # no identifier
    pub = _client(clients, broker, "sido-pub")
    pub.publish("so/x", b"x", qos=2)
    pub.publish(END, b"")
    sub.subscribe(END, 0)
    pub.publish(END, b"")
    got = [m for m in sub.get_until(END) if m.topic == "so/x"]
    ids = sorted(i for m in got for i in (m.prop("SubscriptionIdentifier") or []))
    # [MQTT-3.3.4-4] one copy carrying every matching identifier, or [MQTT-3.3.4-5] one copy per
    # subscription with its own identifier: either way 3 and 5, each once, at the highest QoS.
    assert ids == [3, 5]
    assert max(m.qos for m in got) == 2


def test_subscription_identifier_on_retained_delivery(broker, clients):
    pub = _client(clients, broker, "sidr-pub")
    pub.publish("sidr/t", b"kept", qos=1, retain=True)
    sub = _client(clients, broker, "sidr-sub")
    sub.subscribe(END, 0)
    sub.subscribe("sidr/+", 1, sub_id=11)
    sub.publish(END, b"")
    got = [m for m in sub.get_until(END) if m.topic == "sidr/t"]
    assert [(m.retain, m.prop("SubscriptionIdentifier")) for m in got] == [(True, [11])]


def test_resubscribe_without_identifier_removes_it(broker, clients):
    sub = _client(clients, broker, "sidrm-sub")
    sub.subscribe("sidrm/t", 1, sub_id=9)
    sub.subscribe("sidrm/t", 1)
    pub = _client(clients, broker, "sidrm-pub")
    pub.publish("sidrm/t", b"x", qos=1)
    # [MQTT-3.8.4-3] the replacing subscription has no identifier.
    assert sub.get().prop("SubscriptionIdentifier") is None


def test_no_local(broker, clients):
    me = _client(clients, broker, "nl-me")
    me.subscribe("nl/t", 1, no_local=True)
    me.subscribe(END, 0)
    other = _client(clients, broker, "nl-other")
    me.publish("nl/t", b"mine", qos=1)
    other.publish("nl/t", b"theirs", qos=1)
    other.publish(END, b"")
    # [MQTT-3.8.3-3] No Local: the client's own publications are not forwarded to it.
    assert [m.payload for m in me.get_until(END)] == [b"theirs", b""]


def test_no_local_with_overlapping_subscription(broker, clients):
    me = _client(clients, broker, "nlo-me")
    me.subscribe("nlo/t", 1, no_local=True)
    me.subscribe("nlo/#", 1)
    me.publish("nlo/t", b"mine", qos=1)
    # The other matching subscription has No Local 0: the message still arrives through it.
    assert me.get().payload == b"mine"


def test_no_local_on_shared_subscription_is_protocol_error(broker, raw):
    c = raw(broker)
    c.connect("nl-shared", version=5)
    c.send(r.subscribe(1, [("$share/g/nls/t", 0x01 | 0x04)], version=5))
    got = c.expect_closed()
    # [MQTT-3.8.3-4] No Local 1 on a shared subscription is a Protocol Error.
    assert [(p.type, p.reason()) for p in got] == [(r.DISCONNECT, r.PROTOCOL_ERROR)]


def test_retain_as_published(broker, clients):
    rap = _client(clients, broker, "rap-1")
    rap.subscribe("rap/t", 1, retain_as_published=True)
    plain = _client(clients, broker, "rap-0")
    plain.subscribe("rap/t", 1)
    pub = _client(clients, broker, "rap-pub")
    pub.publish("rap/t", b"r", qos=1, retain=True)
    pub.publish("rap/t", b"n", qos=1, retain=False)
    # [MQTT-3.3.1-13] RAP 1: the forwarded RETAIN flag is the published one;
    # [MQTT-3.3.1-12] RAP 0: RETAIN 0 on forwarding.
    assert [(m.payload, m.retain) for m in rap.get_n(2)] == [(b"r", True), (b"n", False)]
    assert [(m.payload, m.retain) for m in plain.get_n(2)] == [(b"r", False), (b"n", False)]


def test_retain_handling_0_sends_on_every_subscribe(broker, clients):
    pub = _client(clients, broker, "rh0-pub")
    pub.publish("rh0/t", b"kept", qos=1, retain=True)
    sub = _client(clients, broker, "rh0-sub")
    # [MQTT-3.3.1-9] Retain Handling 0: retained messages are sent on every SUBSCRIBE.
    assert [m.payload for m in _collect_after_subscribe(sub, "rh0/t", retain_handling=0)] == [b"kept"]
    assert [m.payload for m in _collect_after_subscribe(sub, "rh0/t", retain_handling=0)] == [b"kept"]


def test_retain_handling_1_sends_only_for_new_subscription(broker, clients):
    pub = _client(clients, broker, "rh1-pub")
    pub.publish("rh1/t", b"kept", qos=1, retain=True)
    sub = _client(clients, broker, "rh1-sub")
    # [MQTT-3.3.1-10] Retain Handling 1: sent only if the subscription did not exist.
    assert [m.payload for m in _collect_after_subscribe(sub, "rh1/t", retain_handling=1)] == [b"kept"]
    assert _collect_after_subscribe(sub, "rh1/t", retain_handling=1) == []


def test_retain_handling_2_never_sends(broker, clients):
    pub = _client(clients, broker, "rh2-pub")
    pub.publish("rh2/t", b"kept", qos=1, retain=True)
    sub = _client(clients, broker, "rh2-sub")
    # [MQTT-3.3.1-11] Retain Handling 2: no retained messages at subscribe.
    assert _collect_after_subscribe(sub, "rh2/t", retain_handling=2) == []
    # Live messages still flow.
    pub.publish("rh2/t", b"live", qos=1)
    assert sub.get().payload == b"live"


def test_suback_reason_codes_are_granted_qos(broker, raw):
    c = raw(broker)
    c.connect("suback-codes", version=5)
    c.send(r.subscribe(5, [("sc/0", 0), ("sc/1", 1), ("sc/2", 2)], version=5))
    ack = c.expect(r.SUBACK)
    # [MQTT-3.9.3-1] one reason code per filter, in order; [MQTT-3.8.4-2] same packet id.
    # SUBACK body: packet id, property length 0, then the codes.
    assert ack.body == b"\x00\x05\x00\x00\x01\x02"


def test_unsuback_reason_codes(broker, raw):
    c = raw(broker)
    c.connect("unsuback-codes", version=5)
    c.subscribe([("uc/a", 1)], version=5)
    c.send(r.packet(0xA2, r.u16(9) + r.props() + r.s("uc/a") + r.s("uc/never")))
    ack = c.expect(r.UNSUBACK)
    # Section 3.11.3: 0x00 Success for the existing one, 0x11 No subscription existed.
    assert ack.body == b"\x00\x09\x00\x00\x11"


def test_unsuback_v311_bytes(broker, raw):
    c = raw(broker)
    c.connect("unsuback-v311")
    c.send(r.unsubscribe(0x0102, ["never/subscribed"]))
    # [MQTT-3.10.4-4]/[MQTT-3.10.4-5] UNSUBACK even if nothing matched, same packet id.
    assert c.expect(r.UNSUBACK).raw == b"\xb0\x02\x01\x02"


def test_shared_subscription_distributes_each_message_once(broker, clients):
    a = _client(clients, broker, "share-a")
    b = _client(clients, broker, "share-b")
    a.subscribe("$share/grp/sh/t", 1)
    b.subscribe("$share/grp/sh/t", 1)
    normal = _client(clients, broker, "share-normal")
    normal.subscribe("sh/t", 1)
    pub = _client(clients, broker, "share-pub")
    n = 20
    for i in range(n):
        pub.publish("sh/t", str(i).encode(), qos=1)
    # A non-shared subscriber gets every message.
    assert sorted(int(m.payload) for m in normal.get_n(n)) == list(range(n))
    got_a = a.drain()
    got_b = b.drain()
    # Drain may run ahead of delivery: collect the rest (they are all due).
    while len(got_a) + len(got_b) < n:
        try:
            got_a.append(a.get(timeout=0.2))
        except AssertionError:
            got_b.append(b.get())
    counts = collections.Counter(int(m.payload) for m in got_a + got_b)
    # Section 4.8.2: each message goes to exactly one member of the group.
    assert sorted(counts) == list(range(n)) and set(counts.values()) == {1}
    assert got_a and got_b, "one member received nothing"
    assert all(m.topic == "sh/t" for m in got_a + got_b)
    a.expect_none(0.2)
    b.expect_none(0.2)


def test_shared_subscription_survivor_gets_everything(broker, clients):
    a = _client(clients, broker, "surv-a")
    b = _client(clients, broker, "surv-b")
    a.subscribe("$share/g2/sv/+", 1)
    b.subscribe("$share/g2/sv/+", 1)
    a.disconnect()
    pub = _client(clients, broker, "surv-pub")
    for i in range(6):
        pub.publish(f"sv/{i}", str(i).encode(), qos=1)
    # The departed member's share goes to the remaining member.
    assert sorted(int(m.payload) for m in b.get_n(6)) == list(range(6))


def test_shared_and_separate_groups(broker, clients):
    g1a = _client(clients, broker, "g1a")
    g1b = _client(clients, broker, "g1b")
    g2 = _client(clients, broker, "g2")
    g1a.subscribe("$share/one/grp/t", 0)
    g1b.subscribe("$share/one/grp/t", 0)
    g2.subscribe("$share/two/grp/t", 0)
    pub = _client(clients, broker, "groups-pub")
    for i in range(4):
        pub.publish("grp/t", str(i).encode(), qos=1)
    # Each group gets every message once: group "two" has one member, which gets all of them.
    assert [int(m.payload) for m in g2.get_n(4)] == [0, 1, 2, 3]


def test_retained_not_sent_to_shared_subscription(broker, clients):
    pub = _client(clients, broker, "shr-pub")
    pub.publish("shr/t", b"kept", qos=1, retain=True)
    sub = _client(clients, broker, "shr-sub")
    # Section 4.8.2: retained messages are not sent when a shared subscription is made.
    assert _collect_after_subscribe(sub, "$share/g/shr/t") == []


def test_shared_subscription_qos_is_capped(broker, clients):
    a = _client(clients, broker, "shq-a")
    a.subscribe("$share/q/shq/t", 0)
    pub = _client(clients, broker, "shq-pub")
    pub.publish("shq/t", b"x", qos=2)
    assert a.get().qos == 0


def test_unsubscribe_from_shared_group(broker, clients):
    a = _client(clients, broker, "shu-a")
    b = _client(clients, broker, "shu-b")
    a.subscribe("$share/u/shu/t", 1)
    b.subscribe("$share/u/shu/t", 1)
    assert a.unsubscribe("$share/u/shu/t") == [0]
    pub = _client(clients, broker, "shu-pub")
    for i in range(4):
        pub.publish("shu/t", str(i).encode(), qos=1)
    assert [int(m.payload) for m in b.get_n(4)] == [0, 1, 2, 3]


def _member_holding_one(raw, clients, broker, qos):
    """A raw member `a` and a paho member `b` of one group; publishes until `a` holds one
    unacknowledged message. Returns (a, b, publisher, held payload)."""
    a = raw(broker)
    a.connect("held-a", version=5)
    a.subscribe([("$share/h/held/t", qos)], version=5)
    b = _client(clients, broker, "held-b")
    b.subscribe("$share/h/held/t", qos)
    pub = _client(clients, broker, "held-pub")
    for i in range(10):
        pub.publish("held/t", str(i).encode(), qos=qos)
        try:
            p = a.recv(timeout=0.3)
        except TimeoutError:
            continue
        return a, b, pub, p.publish(5)[3]
    raise AssertionError("member a never received a message")


def test_shared_qos2_in_flight_is_not_sent_to_another_member(broker, raw, clients):
    a, b, pub, held = _member_holding_one(raw, clients, broker, qos=2)
    a.close()  # no PUBREC; session expiry 0, so the session ends with the connection
    pub.publish("held/t", b"sentinel", qos=2)
    got = []
    while b"sentinel" not in got:
        got.append(b.get().payload)
    # [MQTT-4.8.2-5] a QoS 2 message the server was sending to a member whose session then
    # terminated MUST NOT be sent to any other subscribed client.
    assert held not in got, f"QoS 2 message {held!r} sent again to another member: {got}"


def test_shared_qos1_in_flight_goes_to_another_member(broker, raw, clients):
    a, b, pub, held = _member_holding_one(raw, clients, broker, qos=1)
    a.close()  # no PUBACK; the session ends
    pub.publish("held/t", b"sentinel", qos=1)
    got = []
    while b"sentinel" not in got or held not in got:
        got.append(b.get().payload)
    # Section 4.8.2: the QoS 1 message SHOULD be sent to another member when the session ends.
    assert held in got
