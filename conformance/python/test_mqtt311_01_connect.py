"""MQTT 3.1.1 and 3.1: CONNECT / CONNACK, client identifiers, session present, takeover, keep
alive. Byte-exact checks use raw sockets; the rest uses paho."""

import time

import pytest

import rawmqtt as r
from pahoclient import V31, V311


def test_connack_bytes_v311(broker, raw):
    c = raw(broker)
    c.send(r.connect("conn-bytes", version=4))
    ack = c.expect(r.CONNACK)
    # [MQTT-3.2.2-1] clean session -> session present 0; return code 0 accepted.
    assert ack.raw == b"\x20\x02\x00\x00"


def test_connack_bytes_v31_mqisdp(broker, raw):
    c = raw(broker)
    c.send(r.connect("conn-v31", version=3))
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x00"
    c.expect_open()


@pytest.mark.parametrize("version", [V31, V311], ids=["v31", "v311"])
def test_paho_connect_accepted(broker, clients, version):
    ack = clients(broker, "paho-connect", version=version).connect()
    assert ack.reason_code == 0
    assert ack.session_present is False


def test_empty_client_id_with_clean_session_is_accepted(broker, raw):
    c = raw(broker)
    c.send(r.connect("", version=4, clean=True))
    # [MQTT-3.1.3-6] the server assigns an identifier; [MQTT-3.1.3-7] clean session required.
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x00"
    c.expect_open()


def test_empty_client_id_without_clean_session_is_refused(broker, raw):
    c = raw(broker)
    c.send(r.connect("", version=4, clean=False))
    # [MQTT-3.1.3-8] CONNACK return code 0x02 (identifier rejected), then close.
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x02"
    assert c.expect_closed() == []


def test_v31_client_id_longer_than_23_is_refused(broker, raw):
    c = raw(broker)
    c.send(r.connect("x" * 24, version=3))
    # MQTT 3.1: client identifiers are 1..23 characters; longer -> return code 2.
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x02"
    c.expect_closed()


def test_v31_client_id_of_23_is_accepted(broker, raw):
    c = raw(broker)
    c.send(r.connect("y" * 23, version=3))
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x00"


def test_unsupported_protocol_level_gets_return_code_1(broker, raw):
    c = raw(broker)
    c.send(r.connect("level6", version=6))
    # [MQTT-3.1.2-2] CONNACK 0x01 (unacceptable protocol level), then close.
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x01"
    assert c.expect_closed() == []


def test_wrong_protocol_name_closes(broker, raw):
    c = raw(broker)
    body = r.s("MQTX") + bytes([4, 0x02]) + r.u16(60) + r.s("badname")
    c.send(r.packet(0x10, body))
    # [MQTT-3.1.2-1] a wrong protocol name: the server MAY disconnect; it must not accept.
    got = c.expect_closed()
    assert all(p.type != r.CONNACK or p.reason() != 0 for p in got), got


def test_session_present_flag(broker, clients):
    cid = "persist-v311"
    a = clients(broker, cid, clean=False)
    # [MQTT-3.2.2-3] no stored session yet -> session present 0.
    assert a.connect().session_present is False
    a.subscribe("sp/t", 1)
    a.disconnect()
    b = clients(broker, cid, clean=False)
    # [MQTT-3.2.2-2] resumed session -> session present 1.
    assert b.connect().session_present is True
    b.disconnect()
    c = clients(broker, cid, clean=True)
    # [MQTT-3.2.2-1] clean session -> session present 0.
    assert c.connect().session_present is False
    c.disconnect()
    d = clients(broker, cid, clean=False)
    # [MQTT-3.1.2-6] the clean session discarded the stored one.
    assert d.connect().session_present is False


def test_v31_connack_has_no_session_present_flag(broker, raw):
    a = raw(broker)
    a.connect("persist-v31", version=3, clean=False)
    a.send(r.disconnect())
    a.expect_closed()
    b = raw(broker)
    b.send(r.connect("persist-v31", version=3, clean=False))
    # MQTT 3.1 has no session present flag: the acknowledge flags byte is reserved (0), even
    # when a stored session is resumed (as Mosquitto).
    assert b.expect(r.CONNACK).raw == b"\x20\x02\x00\x00"


def test_clean_session_discards_subscriptions(broker, clients):
    a = clients(broker, "clean-disc", clean=False)
    a.connect()
    a.subscribe("cd/t", 1)
    a.disconnect()
    b = clients(broker, "clean-disc", clean=True)
    b.connect()
    pub = clients(broker, "clean-disc-pub")
    pub.connect()
    pub.publish("cd/t", b"x", qos=1)
    pub.publish("cd/other", b"sentinel", qos=1)
    b.subscribe("cd/other", 1)
    pub.publish("cd/other", b"sentinel", qos=1)
    got = b.get_until("cd/other")
    # [MQTT-3.1.2-6] the previous session's subscription to cd/t is gone.
    assert [m.topic for m in got] == ["cd/other"]


@pytest.mark.parametrize("version", [4, 3], ids=["v311", "v31"])
def test_takeover_closes_the_first_connection(broker, raw, version):
    first = raw(broker)
    first.connect("dup-id", version=version)
    second = raw(broker)
    second.connect("dup-id", version=version)
    # [MQTT-3.1.4-2] the existing client is disconnected (v3: closed without a packet).
    assert first.expect_closed() == []
    second.expect_open()


def test_takeover_keeps_persistent_session(broker, clients):
    a = clients(broker, "takeover-keep", clean=False)
    a.connect()
    a.subscribe("tk/t", 1)
    b = clients(broker, "takeover-keep", clean=False)
    assert b.connect().session_present is True
    a.wait_disconnected()
    pub = clients(broker, "takeover-pub")
    pub.connect()
    pub.publish("tk/t", b"after", qos=1)
    m = b.get()
    assert (m.topic, m.payload, m.qos) == ("tk/t", b"after", 1)


def test_pingreq_gets_pingresp(broker, raw):
    c = raw(broker)
    c.connect("pinger")
    c.send(r.PINGREQ_BYTES)
    # [MQTT-3.12.4-1]
    assert c.expect(r.PINGRESP).raw == b"\xd0\x00"


@pytest.mark.parametrize("version", [4, 3], ids=["v311", "v31"])
def test_keepalive_timeout_closes_connection(broker, raw, version):
    c = raw(broker)
    c.connect("silent", version=version, keepalive=1)
    start = time.monotonic()
    # [MQTT-3.1.2-24] nothing received within 1.5 x keep alive -> disconnect.
    assert c.expect_closed(timeout=4) == []
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed <= 3.5, elapsed


def test_keepalive_is_reset_by_traffic(broker, raw):
    c = raw(broker)
    c.connect("chatty", keepalive=1)
    # Pings every 0.5 s keep a 1 s keep alive connection open beyond 1.5 s.
    for _ in range(5):
        c.send(r.PINGREQ_BYTES)
        c.expect(r.PINGRESP)
        time.sleep(0.5)  # pacing the client's traffic, not waiting for a result
    c.expect_open()


def test_keepalive_zero_disables_timeout(make_broker, raw):
    b = make_broker()
    c = raw(b)
    c.connect("no-ka", keepalive=0)
    # The only observable is "still open later": 2 s is longer than any timeout a small
    # keep alive would produce.
    time.sleep(2)
    c.expect_open()


@pytest.mark.parametrize("version", [4, 3], ids=["v311", "v31"])
def test_keepalive_above_broker_maximum_v3(make_broker, raw, version):
    b = make_broker(max_keepalive_secs=1)
    c = raw(b)
    c.send(r.connect("long-ka", version=version, keepalive=60))
    ack = c.expect(r.CONNACK)
    # 3.1.1 has no way to tell a client to use a shorter keep alive. Mosquitto refuses such a
    # client with return code 2 (its `max_keepalive` documentation); a broker that accepts it
    # must honour the client's 60 s, not drop it after 1.5 x its own maximum (3.1.1 [MQTT-3.1.2-24]).
    if ack.raw == b"\x20\x02\x00\x02":
        assert c.expect_closed() == []
        return
    assert ack.raw == b"\x20\x02\x00\x00", ack
    time.sleep(2.0)  # past 1.5 x the broker's 1 s maximum: the only observable is "still open"
    c.expect_open()


def test_reconnect_right_after_disconnect_sees_the_disconnect(broker, raw):
    # The DISCONNECT on the old socket and the CONNECT on the new one race inside the broker;
    # the new connection waits until the old one has handled what its client sent, so the clean
    # session is over every time, however the two connections are scheduled [MQTT-3.1.2-6].
    for i in range(20):
        old = raw(broker)
        old.connect(f"race-{i}", clean=True)
        old.subscribe([("race/t", 1)])
        old.send(r.disconnect())
        new = raw(broker)
        ack = new.connect(f"race-{i}", clean=False)
        assert ack.body[0] & 1 == 0, f"round {i}: session present after the clean session's DISCONNECT"
        new.send(r.disconnect())
        new.close()
        old.close()
