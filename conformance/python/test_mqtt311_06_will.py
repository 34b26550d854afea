"""Will messages (MQTT 3.1.1 section 3.1.2.5, same in 3.1): published when the connection ends
abnormally (socket closed without DISCONNECT, keep-alive timeout, protocol error), never after a
normal DISCONNECT; will QoS and retain are honoured."""

import time

import pytest

import rawmqtt as r
from pahoclient import V31, V311, V5, VERSION_IDS

ALL = pytest.mark.parametrize("version", [V31, V311, V5], ids=[VERSION_IDS[v] for v in (V31, V311, V5)])


def _watcher(clients, broker, topic="will/#", qos=2, version=V311):
    w = clients(broker, "will-watcher", version=version)
    w.connect()
    w.subscribe(topic, qos)
    w.subscribe("will-end/sentinel", 0)
    return w


@ALL
def test_will_published_on_socket_close(broker, clients, version):
    w = _watcher(clients, broker)
    c = clients(broker, "will-drop", version=version,
                will=dict(topic="will/drop", payload=b"gone", qos=1))
    c.connect()
    c.drop()
    m = w.get()
    # [MQTT-3.1.2-8] the will is published when the network connection closes without DISCONNECT.
    assert (m.topic, m.payload, m.qos, m.retain) == ("will/drop", b"gone", 1, False)


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
def test_will_published_on_raw_socket_close(broker, clients, raw, version):
    w = _watcher(clients, broker)
    c = raw(broker)
    c.connect("raw-will", version=version, will=dict(topic="will/raw", payload=b"raw-gone", qos=0))
    c.close()
    m = w.get()
    assert (m.topic, m.payload) == ("will/raw", b"raw-gone")


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
def test_will_published_on_keepalive_timeout(broker, clients, raw, version):
    w = _watcher(clients, broker)
    c = raw(broker)
    c.connect("ka-will", version=version, keepalive=1, will=dict(topic="will/ka", payload=b"timeout"))
    start = time.monotonic()
    # 3.1.1 [MQTT-3.1.2-24] / 5.0 [MQTT-3.1.2-22]: after 1.5 x keep alive the server disconnects; the
    # will is published (section 3.1.2.5: "fails to communicate within the Keep Alive time").
    m = w.get(timeout=4)
    elapsed = time.monotonic() - start
    assert (m.topic, m.payload) == ("will/ka", b"timeout")
    assert 1.0 <= elapsed <= 3.5, elapsed
    got = c.expect_closed(timeout=1)
    if version == 5:
        assert [p.reason() for p in got] == [r.KEEP_ALIVE_TIMEOUT]
    else:
        assert got == []


@ALL
def test_no_will_after_normal_disconnect(broker, clients, version):
    w = _watcher(clients, broker)
    c = clients(broker, "will-clean", version=version, will=dict(topic="will/clean", payload=b"no"))
    c.connect()
    c.disconnect()
    pub = clients(broker, "will-clean-pub")
    pub.connect()
    pub.publish("will-end/sentinel", b"", qos=0)
    # [MQTT-3.1.2-10] / [MQTT-3.14.4-3]: DISCONNECT discards the will without publishing it.
    # The disconnect completed before the sentinel was published, so a will would precede it.
    assert [m.topic for m in w.get_until("will-end/sentinel")] == ["will-end/sentinel"]


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
def test_will_published_on_protocol_violation(broker, clients, raw, version):
    w = _watcher(clients, broker)
    c = raw(broker)
    c.connect("bad-will", version=version, will=dict(topic="will/bad", payload=b"violated"))
    c.send(r.publish("bad/#", b"x", version=version))  # wildcard in a topic name
    c.expect_closed()
    # Section 3.1.2.5: the server closing the connection because of a protocol error
    # publishes the will.
    m = w.get()
    assert (m.topic, m.payload) == ("will/bad", b"violated")


@ALL
def test_will_retain_flag_stores_retained_will(broker, clients, version):
    w = _watcher(clients, broker)
    c = clients(broker, "will-ret", version=version,
                will=dict(topic="will/ret", payload=b"last words", qos=1, retain=True))
    c.connect()
    c.drop()
    # The live copy shows the will has been published (and therefore stored).
    assert w.get().payload == b"last words"
    late = clients(broker, "will-late", version=version)
    late.connect()
    late.subscribe("will-end/sentinel", 0)
    late.subscribe("will/ret", 1)
    late.publish("will-end/sentinel", b"", qos=0)
    got = [m for m in late.get_until("will-end/sentinel") if m.topic == "will/ret"]
    # [MQTT-3.1.2-17] will retain 1: published as a retained message.
    assert [(m.payload, m.retain, m.qos) for m in got] == [(b"last words", True, 1)]


@ALL
def test_will_qos2_is_delivered_at_qos2(broker, clients, version):
    w = _watcher(clients, broker, qos=2)
    c = clients(broker, "will-q2", version=version, will=dict(topic="will/q2", payload=b"two", qos=2))
    c.connect()
    c.drop()
    m = w.get()
    # Section 3.1.2.6: the will is published with its Will QoS.
    assert (m.topic, m.qos) == ("will/q2", 2)


def test_will_of_taken_over_connection_is_published(broker, clients, raw):
    w = _watcher(clients, broker)
    first = raw(broker)
    first.connect("will-takeover", will=dict(topic="will/takeover", payload=b"replaced"))
    second = raw(broker)
    second.connect("will-takeover")
    first.expect_closed()
    # The first connection ended without DISCONNECT: its will is published (as Mosquitto does).
    m = w.get()
    assert (m.topic, m.payload) == ("will/takeover", b"replaced")
