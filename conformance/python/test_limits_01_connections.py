"""Connection limits (`[limits]`): `max_connections` over all listeners, checked at accept:
an MQTT socket above it is closed unanswered (Mosquitto), an AMQP one gets connection.close
530 at connection.open (RabbitMQ's node connection limit), a few at a time, and is closed
unanswered beyond that; `max_connections_per_user`, refused after login with MQTT CONNACK 0x97
Quota exceeded (3.1.1: return code 3 Server unavailable) and AMQP connection.close 530
NOT_ALLOWED (RabbitMQ's user connection limit). Slots come back when connections close."""

import socket
import time

import pika
import pytest

import rawmqtt as r
from pahoclient import V311, V5


REFUSED = (pika.exceptions.ConnectionClosedByBroker, pika.exceptions.ProbableAccessDeniedError)


def amqp_params(b, user="guest", password="guest"):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=b.amqp_port, credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=30)


def closed_without_answer(port, payload):
    """Connects, sends `payload`, and reports whether the broker closed without a byte."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(payload)
        try:
            return s.recv(64) == b""
        except ConnectionResetError:
            return True
    finally:
        s.close()


def test_max_connections_spans_protocols_and_frees_on_close(make_broker, clients):
    b = make_broker(extra_toml="[limits]\nmax_connections = 2\n")
    mqtt = clients(b, "limit-1")
    mqtt.connect()
    amqp = pika.BlockingConnection(amqp_params(b))
    # Both listeners share the count: a third MQTT socket is closed unanswered, as Mosquitto;
    # a third AMQP client is told why at connection.open, as RabbitMQ tells it.
    assert closed_without_answer(b.port, r.connect("limit-3"))
    with pytest.raises(REFUSED) as e:
        pika.BlockingConnection(amqp_params(b))
    assert "(530)" in str(e.value)
    assert "node connection limit (2) is reached" in str(e.value)
    b.wait_log(r"connection limit reached: refusing new connections")
    amqp.close()
    # The closed connection's slot is free again (its task may take a moment to end).
    deadline = time.monotonic() + 5
    while closed_without_answer(b.port, r.connect("limit-again")):
        assert time.monotonic() < deadline, "slot not released"
        time.sleep(0.05)


def test_amqp_refusals_past_the_limit_are_bounded(make_broker):
    b = make_broker(extra_toml="[limits]\nmax_connections = 1\n")
    held = socket.create_connection(("127.0.0.1", b.port), timeout=5)
    # Wait for its CONNACK: only then has the broker accepted it and taken the one slot.
    held.sendall(r.connect("holds-the-slot"))
    assert held.recv(4)[:1] == b"\x20", "expected CONNACK"
    # Sockets above the limit that stall in the handshake each hold a refusal; past 16 of
    # them the broker stops answering and closes new sockets at once, so a flood past the
    # limit cannot make it run handshakes without bound.
    stalled = []
    try:
        deadline = time.monotonic() + 10
        for _ in range(16):
            s = socket.create_connection(("127.0.0.1", b.amqp_port), timeout=5)
            s.sendall(b"AMQP\x00\x00\x09\x01")
            assert s.recv(7)[:1] == b"\x01", "expected connection.start"
            stalled.append(s)
        while not closed_without_answer(b.amqp_port, b"AMQP\x00\x00\x09\x01"):
            assert time.monotonic() < deadline, "refusals not bounded"
            time.sleep(0.05)
    finally:
        for s in stalled:
            s.close()
        held.close()


def test_max_connections_per_user_mqtt_v5_and_v311(make_broker, clients):
    b = make_broker(extra_toml="[limits]\nmax_connections_per_user = 1\n")
    first = clients(b, "per-user-1", version=V5, username="guest", password="guest")
    first.connect()
    v5 = clients(b, "per-user-2", version=V5, username="guest", password="guest")
    assert v5.connect(expect_success=False).reason_code == 0x97
    v3 = clients(b, "per-user-3", version=V311, username="guest", password="guest")
    # 3.1.1 has no Quota exceeded: 3 Server unavailable, which paho reports as 3.
    assert v3.connect(expect_success=False).reason_code in (3, 0x88)
    # Anonymous clients are not a user: not counted.
    clients(b, "anon-1").connect()
    clients(b, "anon-2").connect()
    first.disconnect()
    deadline = time.monotonic() + 5
    while clients(b, "per-user-4", version=V5, username="guest",
                  password="guest").connect(expect_success=False).reason_code != 0:
        assert time.monotonic() < deadline, "user slot not released"
        time.sleep(0.05)


def test_max_connections_per_user_amqp_530(make_broker, clients):
    b = make_broker(extra_toml="[limits]\nmax_connections_per_user = 1\n")
    first = pika.BlockingConnection(amqp_params(b))
    # pika reports a 530 at connection.open as a probable access denial, quoting the close.
    with pytest.raises(REFUSED) as e:
        pika.BlockingConnection(amqp_params(b))
    assert "(530)" in str(e.value)
    assert "user connection limit (1) is reached" in str(e.value)
    # The same user over MQTT counts against the same limit.
    m = clients(b, "guest-mqtt", version=V5, username="guest", password="guest")
    assert m.connect(expect_success=False).reason_code == 0x97
    first.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            pika.BlockingConnection(amqp_params(b)).close()
            break
        except REFUSED:
            assert time.monotonic() < deadline, "user slot not released"
            time.sleep(0.05)
