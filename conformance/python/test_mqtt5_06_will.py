"""MQTT 5.0 wills: DISCONNECT 0x04 (with will), Will Delay Interval (published after the delay,
cancelled by a reconnect within it, capped by the session expiry), will properties."""

import time

from paho.mqtt.packettypes import PacketTypes

import rawmqtt as r
from pahoclient import V5, props


def _watcher(clients, broker):
    w = clients(broker, "w5-watcher", version=V5)
    w.connect()
    w.subscribe("will5/#", 1)
    w.subscribe("w5-end/s", 0)
    return w


def _will_client(clients, broker, cid, delay=None, expiry=None, **will):
    will_props = props(PacketTypes.WILLMESSAGE, WillDelayInterval=delay) if delay is not None else None
    connect_props = dict(SessionExpiryInterval=expiry) if expiry is not None else None
    return clients(broker, cid, version=V5, clean=True, properties=connect_props,
                   will=dict(topic=will.get("topic", "will5/t"), payload=will.get("payload", b"bye"),
                             qos=will.get("qos", 1), properties=will_props))


def test_disconnect_with_will_message_publishes_will(broker, clients):
    w = _watcher(clients, broker)
    c = _will_client(clients, broker, "w5-04")
    c.connect()
    c.disconnect(reason=0x04)
    # Section 3.14.2.1: 0x04 Disconnect with Will Message: the server publishes the will.
    m = w.get()
    assert (m.topic, m.payload) == ("will5/t", b"bye")


def test_normal_disconnect_discards_will(broker, clients):
    w = _watcher(clients, broker)
    c = _will_client(clients, broker, "w5-00")
    c.connect()
    c.disconnect(reason=0x00)
    pub = clients(broker, "w5-00-pub", version=V5)
    pub.connect()
    pub.publish("w5-end/s", b"")
    # [MQTT-3.14.4-3] DISCONNECT 0x00: the will is discarded.
    assert [m.topic for m in w.get_until("w5-end/s")] == ["w5-end/s"]


def test_will_delay_interval_postpones_will(broker, clients):
    w = _watcher(clients, broker)
    c = _will_client(clients, broker, "w5-delay", delay=2, expiry=30)
    c.connect()
    start = time.monotonic()
    c.drop()
    m = w.get(timeout=5)
    elapsed = time.monotonic() - start
    # [MQTT-3.1.3-9] the will is published only after the Will Delay Interval (2 s).
    assert m.payload == b"bye"
    assert 1.8 <= elapsed <= 4.0, elapsed


def test_reconnect_within_will_delay_cancels_will(broker, clients):
    w = _watcher(clients, broker)
    c = _will_client(clients, broker, "w5-cancel", delay=1, expiry=30)
    c.connect()
    c.drop()
    again = clients(broker, "w5-cancel", version=V5, clean=False, properties=dict(SessionExpiryInterval=30))
    again.connect()
    # Nothing observable marks "the delay passed without a will": wait past it (1 s) with margin.
    time.sleep(1.6)
    pub = clients(broker, "w5-cancel-pub", version=V5)
    pub.connect()
    pub.publish("w5-end/s", b"")
    # [MQTT-3.1.3-9] the session resumed before the delay elapsed: no will.
    assert [m.topic for m in w.get_until("w5-end/s")] == ["w5-end/s"]


def test_will_delay_is_capped_by_session_expiry(broker, clients):
    w = _watcher(clients, broker)
    c = _will_client(clients, broker, "w5-cap", delay=30, expiry=1)
    c.connect()
    start = time.monotonic()
    c.drop()
    m = w.get(timeout=4)
    # Section 3.1.3.2.2: the will is published when the session ends, if that comes first.
    assert m.payload == b"bye"
    assert time.monotonic() - start <= 3.5


def test_will_delay_with_session_expiry_zero_is_immediate(broker, clients):
    w = _watcher(clients, broker)
    c = _will_client(clients, broker, "w5-zero", delay=30)  # session expiry 0
    c.connect()
    start = time.monotonic()
    c.drop()
    w.get(timeout=2)
    assert time.monotonic() - start < 1.5


def test_will_properties_are_passed_through(broker, clients, raw):
    w = _watcher(clients, broker)
    c = raw(broker)
    will_props = r.props(
        r.prop(r.CONTENT_TYPE, "application/json"),
        r.prop(r.RESPONSE_TOPIC, "will5/reply"),
        r.prop(r.CORRELATION_DATA, b"cd"),
        r.prop(r.USER_PROPERTY, ("origin", "will")),
        r.prop(r.PAYLOAD_FORMAT, 1),
        r.prop(r.MESSAGE_EXPIRY, 100),
    )
    c.connect("w5-props", version=5, will=dict(topic="will5/props", payload=b"{}", qos=1, properties=will_props))
    c.close()
    m = w.get()
    # Section 3.1.3.2: will properties are sent with the will message.
    assert m.topic == "will5/props"
    assert m.prop("ContentType") == "application/json"
    assert m.prop("ResponseTopic") == "will5/reply"
    assert m.prop("CorrelationData") == b"cd"
    assert m.prop("UserProperty") == [("origin", "will")]
    assert m.prop("PayloadFormatIndicator") == 1
    assert m.prop("MessageExpiryInterval") in (99, 100)


def test_will_on_takeover_v5(broker, clients):
    w = _watcher(clients, broker)
    a = _will_client(clients, broker, "w5-take")
    a.connect()
    b = clients(broker, "w5-take", version=V5)
    b.connect()
    assert a.wait_disconnected()[1] == r.SESSION_TAKEN_OVER
    # The taken-over connection ended without DISCONNECT: its will is due (no delay set).
    assert w.get().payload == b"bye"
