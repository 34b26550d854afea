"""AMQP 0-9-1 through kombu (py-amqp transport), the messaging layer of Celery, and Celery itself
with an in-process worker and the `rpc://` result backend.

Publishes use `confirm_publish` so that a later `get` or passive declare on another channel sees
them (the confirm is the barrier); consumers drain with `drain_events(timeout=...)` in a bounded
loop.
"""

import socket
import time
import uuid

import celery
import pytest
from celery.contrib.testing.worker import start_worker
from kombu import Connection, Consumer, Exchange, Producer, Queue

TIMEOUT = 5.0


def url(broker):
    return f"amqp://guest:guest@127.0.0.1:{broker.amqp_port}//"


def connection(broker, **kw):
    kw.setdefault("transport_options", {"confirm_publish": True})
    return Connection(url(broker), connect_timeout=TIMEOUT, heartbeat=0, **kw)


def drain_until(conn, until, timeout=TIMEOUT):
    """Drains events until `until()` is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        left = deadline - time.monotonic()
        assert left > 0, f"condition not reached within {timeout}s"
        try:
            conn.drain_events(timeout=min(0.2, left))
        except socket.timeout:
            pass


def ready_count(conn, queue_name):
    return conn.default_channel.queue_declare(queue_name, passive=True).message_count


# --- connection ---------------------------------------------------------------------------


def test_connect_and_ensure_connection(broker):
    with connection(broker) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0)
        assert conn.connected
        assert conn.transport.driver_type == "amqp"
        assert conn.connection.server_properties["product"] == "ferromq"
        assert conn.connection.server_properties["capabilities"]["publisher_confirms"] is True


def test_ensure_republishes_after_connection_loss(broker):
    q = Queue("revived", Exchange("revived", "direct"), routing_key="k")
    with connection(broker) as conn:
        producer = Producer(conn.default_channel)
        publish = conn.ensure(producer, producer.publish, max_retries=3, interval_start=0)
        publish("before", exchange=q.exchange, routing_key="k", declare=[q])
        # Cut the socket under kombu; the next publish fails, kombu reconnects, revives the
        # producer on a new channel and publishes again.
        old_sock = conn.connection.sock
        old_sock.shutdown(socket.SHUT_RDWR)
        publish("after", exchange=q.exchange, routing_key="k", declare=[q])
        assert conn.connection.sock is not old_sock, "kombu did not reconnect"
    with connection(broker) as check:
        bound = q(check.default_channel)
        bodies = [bound.get(no_ack=True), bound.get(no_ack=True), bound.get(no_ack=True)]
        assert [m.payload if m else None for m in bodies] == ["before", "after", None]


# --- declaration and routing ----------------------------------------------------------------


def test_declare_on_publish_routes_direct_topic_fanout(broker):
    direct = Exchange("k.direct", "direct")
    topic = Exchange("k.topic", "topic", durable=False)
    fanout = Exchange("k.fanout", "fanout", auto_delete=True)
    qd = Queue("k.d", direct, routing_key="red")
    qt = Queue("k.t", topic, routing_key="*.eu.#")
    qf1, qf2 = Queue("k.f1", fanout), Queue("k.f2", fanout)
    with connection(broker) as conn:
        producer = Producer(conn.default_channel, serializer="json")
        producer.publish({"c": "red"}, exchange=direct, routing_key="red", declare=[qd])
        producer.publish({"c": "blue"}, exchange=direct, routing_key="blue", declare=[qd])
        producer.publish("eu", exchange=topic, routing_key="orders.eu.de.new", declare=[qt])
        producer.publish("us", exchange=topic, routing_key="orders.us", declare=[qt])
        producer.publish("all", exchange=fanout, routing_key="ignored", declare=[qf1, qf2])

        def bodies(queue):
            bound, out = queue(conn.default_channel), []
            while (m := bound.get(no_ack=True)) is not None:
                out.append(m.payload)
            return out

        assert bodies(qd) == [{"c": "red"}]
        assert bodies(qt) == ["eu"]
        assert bodies(qf1) == ["all"] and bodies(qf2) == ["all"]
        # The declarations are real: a passive redeclare finds them, a different type is 406.
        ch = conn.channel()
        assert ch.exchange_declare("k.topic", "topic", passive=True) is None
        with pytest.raises(conn.channel_errors) as e:
            ch.exchange_declare("k.topic", "fanout")
        assert e.value.code == 406


def test_simple_queue_put_get(broker):
    with connection(broker) as conn:
        sq = conn.SimpleQueue("simple")
        for i in range(3):
            sq.put({"i": i}, headers={"seq": i})
        assert sq.qsize() == 3
        got = []
        for _ in range(3):
            m = sq.get(block=True, timeout=TIMEOUT)
            got.append((m.payload, m.headers["seq"]))
            m.ack()
        assert got == [({"i": i}, i) for i in range(3)]
        start = time.monotonic()
        with pytest.raises(sq.Empty):
            sq.get(block=True, timeout=0.3)
        assert 0.25 <= time.monotonic() - start < 3
        sq.close()
        assert ready_count(conn, "simple") == 0


# --- consuming ------------------------------------------------------------------------------


def test_consumer_ack_reject_requeue(broker):
    q = Queue("work", Exchange("work", "direct"), routing_key="work")
    with connection(broker) as conn:
        with conn.Producer() as p:
            for i in range(4):
                p.publish(f"m{i}", exchange=q.exchange, routing_key="work", declare=[q])
        seen = []

        def on_message(body, message):
            redelivered = message.delivery_info["redelivered"]
            seen.append((body, redelivered))
            if body == "m1" and not redelivered:
                message.requeue()
            elif body == "m2":
                message.reject()  # dropped
            elif body == "m3" and not redelivered:
                message.reject(requeue=True)
            else:
                message.ack()

        with Consumer(conn, [q], callbacks=[on_message], prefetch_count=10,
                      accept=["json", "text/plain"]):
            drain_until(conn, lambda: len(seen) == 6)
        assert seen[:4] == [("m0", False), ("m1", False), ("m2", False), ("m3", False)]
        assert sorted(seen[4:]) == [("m1", True), ("m3", True)]
        assert ready_count(conn, "work") == 0


def test_message_properties_and_headers_round_trip(broker):
    q = Queue("props", Exchange("props", "direct"), routing_key="p")
    headers = {"trace": "abc", "n": 7, "neg": -3, "big": 2**40, "ok": True, "ratio": 0.5,
               "nested": {"x": "y"}, "list": [1, "a"]}
    with connection(broker) as conn:
        # kombu takes `expiration` in seconds and sends milliseconds.
        Producer(conn.default_channel).publish(
            {"k": [1, 2]}, exchange=q.exchange, routing_key="p", declare=[q], serializer="json",
            headers=headers, priority=5, correlation_id="cid-1", reply_to="replies", expiration=60,
            message_id="mid-1", delivery_mode=2, type="kind", app_id="tests", user_id="guest",
            timestamp=1700000000,
        )
        got = []
        with Consumer(conn, [q], callbacks=[lambda body, m: (got.append((body, m)), m.ack())]):
            drain_until(conn, lambda: got)
    body, m = got[0]
    assert body == {"k": [1, 2]}
    assert m.content_type == "application/json" and m.content_encoding == "utf-8"
    assert m.headers == headers
    props = m.properties
    expected = {"priority": 5, "correlation_id": "cid-1", "reply_to": "replies", "expiration": "60000",
                "message_id": "mid-1", "delivery_mode": 2, "type": "kind", "app_id": "tests",
                "user_id": "guest"}
    assert {k: props.get(k) for k in expected} == expected
    assert props["timestamp"] == 1700000000  # py-amqp: seconds as an int
    assert m.delivery_info["exchange"] == "props" and m.delivery_info["routing_key"] == "p"


def test_drain_events_times_out(broker):
    with connection(broker) as conn:
        with Consumer(conn, [Queue("quiet")], callbacks=[lambda body, m: None]):
            start = time.monotonic()
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.3)
            assert 0.25 <= time.monotonic() - start < 3


def test_consumer_prefetch_count_limits_unacked(broker):
    q = Queue("prefetched")
    with connection(broker) as conn:
        with conn.Producer() as p:
            for i in range(6):
                p.publish(i, routing_key="prefetched", declare=[q], serializer="json")
        held = []
        with Consumer(conn, [q], callbacks=[lambda body, m: held.append(m)], prefetch_count=2,
                      accept=["json"]):
            drain_until(conn, lambda: len(held) == 2)
            # Nothing more arrives while two are unacked; nothing marks "nothing more came", so
            # drain for a fixed 0.3 s.
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.3)
            assert len(held) == 2 and ready_count(conn, "prefetched") == 4
            held[0].ack()
            drain_until(conn, lambda: len(held) == 3)
            assert [m.payload for m in held] == [0, 1, 2]


# --- Celery ---------------------------------------------------------------------------------


def test_celery_task_result_over_rpc_backend(broker):
    app = celery.Celery(f"ferromq-{uuid.uuid4().hex[:8]}")
    app.conf.broker_url = url(broker)
    app.conf.result_backend = "rpc://"
    app.conf.broker_connection_retry_on_startup = False
    # With an AMQP heartbeat, kombu's event loop polls for up to 10 s per turn and the embedded
    # worker misses start_worker's shutdown deadline; heartbeats are covered by other tests.
    app.conf.broker_heartbeat = 0

    @app.task(name="ferromq.add")
    def add(x, y):
        return x + y

    @app.task(name="ferromq.fail")
    def fail(text):
        raise ValueError(text)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        r = add.delay(2, 3)
        assert r.get(timeout=10) == 5
        assert r.status == "SUCCESS"
        results = [add.delay(i, i) for i in range(5)]
        assert [x.get(timeout=10) for x in results] == [0, 2, 4, 6, 8]
        bad = fail.delay("boom")
        with pytest.raises(ValueError, match="boom"):
            bad.get(timeout=10)
        assert bad.status == "FAILURE"
    app.close()
