"""Resource alarms block publishers until resources recover (RabbitMQ's memory and disk
alarms). The disk alarm is forced with an absurd `disk_free_limit` and cleared by lowering it
and sending SIGHUP (the broker re-reads `[limits]`), so the tests do not depend on the
machine's free space. AMQP: a publishing pika connection gets connection.blocked with
"low on disk" and its publishes stall (none reaches the queue) while a consuming connection
keeps being served, then connection.unblocked and the held publishes arrive in order. MQTT: the publisher is not read
(no PUBACK) until the alarm clears."""

import signal
import time

import pika

import rawmqtt as r
from pahoclient import V311

ALARM_ON = '[limits]\ndisk_free_limit = "1000TB"\n'
ALARM_OFF = '[limits]\ndisk_free_limit = 1\n'


def clear_alarm(b):
    (b.data_dir.parent / "ferromq.toml").write_text("[mqtt]\n" + ALARM_OFF)
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"disk resource limit alarm cleared")


def params(b):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=b.amqp_port, credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=60)


def pump_until(conn, cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        conn.process_data_events(time_limit=0.05)


def test_amqp_publisher_blocked_consumer_served_then_unblocked(make_broker):
    b = make_broker(extra_toml=ALARM_ON)
    b.wait_log(r"disk resource limit alarm set")
    consumer = pika.BlockingConnection(params(b))
    cch = consumer.channel()
    cch.queue_declare("alarm-q")
    publisher = pika.BlockingConnection(params(b))
    events = []
    publisher.add_on_connection_blocked_callback(lambda _c, m: events.append(("blocked", m.method.reason)))
    publisher.add_on_connection_unblocked_callback(lambda _c, m: events.append(("unblocked",)))
    pch = publisher.channel()
    # The first publish makes the connection a publisher: the broker holds the connection
    # before routing it (as RabbitMQ, which blocks a connection when it publishes) and says why.
    pch.basic_publish("", "alarm-q", b"first")
    pump_until(publisher, lambda: events)
    assert events == [("blocked", "low on disk")]
    # pika does not stop writing on a blocked connection: this publish reaches the socket,
    # and the broker must not read it.
    pch.basic_publish("", "alarm-q", b"second")
    publisher.process_data_events(time_limit=0.5)
    # The consumer (never a publisher) is served while the publisher is held; nothing of
    # the held publisher reached the queue.
    method, _props, body = cch.basic_get("alarm-q", auto_ack=True)
    assert method is None, f"a publish was read during the alarm: {body!r}"
    clear_alarm(b)
    pump_until(publisher, lambda: len(events) == 2)
    assert events[1] == ("unblocked",)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2:
        assert time.monotonic() < deadline, f"held publishes did not arrive: {got}"
        publisher.process_data_events(time_limit=0.05)
        method, _props, body = cch.basic_get("alarm-q", auto_ack=True)
        if method is not None:
            got.append(body)
    assert got == [b"first", b"second"]
    b.wait_log(r"AMQP: connection blocked")


def test_mqtt_publisher_not_read_during_alarm(make_broker, clients, raw):
    b = make_broker(extra_toml=ALARM_ON)
    b.wait_log(r"disk resource limit alarm set")
    sub = clients(b, "alarm-sub", version=V311)
    sub.connect()
    sub.subscribe("alarm/t", 1)
    # Raw, so no client-side keep alive timer closes the held connection from our end.
    pub = raw(b)
    pub.connect("alarm-pub", version=5, keepalive=1)
    # The first publish is read and routed; from then on the client is a held publisher.
    pub.send(r.publish("alarm/t", b"1", qos=1, packet_id=1, version=5))
    assert pub.expect(r.PUBACK).packet_id() == 1
    assert sub.get().payload == b"1"
    pub.send(r.publish("alarm/t", b"2", qos=1, packet_id=2, version=5))
    sub.expect_none(1.0)
    # Held past 1.5 keep alive periods: the broker did not read (no PUBACK) and does not
    # count the unread PINGREQs it never saw against the client.
    try:
        got = pub.recv(timeout=2.0)
    except TimeoutError:
        got = "still open"
    assert got == "still open", got
    clear_alarm(b)
    assert pub.expect(r.PUBACK).packet_id() == 2
    assert sub.get().payload == b"2"
