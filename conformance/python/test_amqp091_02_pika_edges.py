"""AMQP 0-9-1 edge cases with pika: large content, many channels, recover / reject, exchange-to-
exchange and headers routing, consumer cancel notification, prefetch fairness, and the channel
and connection exceptions RabbitMQ raises for internal exchanges, in-use and exclusive queues.

Each test runs against its own broker; waits are bounded (`process_data_events` with a deadline,
`inactivity_timeout`, publisher confirms as a barrier), never bare sleeps.
"""

import os
import threading
import time

import pika
import pytest

from test_amqp091_01_pika import connect

TIMEOUT = 5.0


def drive(conn, until, timeout=TIMEOUT):
    """Runs `conn`'s I/O until `until()` is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        left = deadline - time.monotonic()
        assert left > 0, f"condition not reached within {timeout}s"
        conn.process_data_events(time_limit=min(0.05, left))


def get_all(ch, queue):
    """Bodies of every message `basic_get` finds in `queue` (auto-ack), in order."""
    bodies = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


# --- content larger than frame_max ------------------------------------------------------------


@pytest.mark.parametrize("frame_max", [8192, 131072])
def test_message_larger_than_frame_max_both_ways(broker, frame_max):
    # A 1 MB body crosses the wire as ~128 (frame_max 8192) or 8 body frames each way; bodies
    # of exactly one frame payload and one byte more check the split boundary.
    conn = connect(broker, frame_max=frame_max)
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    payload = frame_max - 8
    bodies = [os.urandom(1024 * 1024 + 3), os.urandom(payload), os.urandom(payload + 1), b""]
    for body in bodies:
        ch.basic_publish(exchange="", routing_key=q, body=body,
                         properties=pika.BasicProperties(message_id=str(len(body))))
    assert ch.queue_declare(queue=q, passive=True).method.message_count == len(bodies)
    # First one through basic.get (get-ok + content), the rest through basic.deliver.
    method, props, body = ch.basic_get(q, auto_ack=False)
    assert body == bodies[0] and props.message_id == str(len(bodies[0]))
    ch.basic_ack(method.delivery_tag)
    got = []
    for method, props, body in ch.consume(q, inactivity_timeout=TIMEOUT):
        assert method is not None, f"only {len(got)} of {len(bodies) - 1} deliveries arrived"
        got.append(body)
        assert props.message_id == str(len(body))
        ch.basic_ack(method.delivery_tag)
        if len(got) == len(bodies) - 1:
            break
    ch.cancel()
    assert got == bodies[1:]
    conn.close()


# --- channels -------------------------------------------------------------------------------


def test_many_channels_on_one_connection(broker):
    conn = connect(broker)
    channels = [conn.channel() for _ in range(100)]
    assert len({c.channel_number for c in channels}) == 100
    for c in channels:
        c.confirm_delivery()
        c.queue_declare(queue=f"per-channel-{c.channel_number}")
        c.basic_publish(exchange="", routing_key=f"per-channel-{c.channel_number}",
                        body=str(c.channel_number).encode())
    # Closing every other channel leaves the rest (and their queues) untouched.
    for c in channels[::2]:
        c.close()
    for c in channels[1::2]:
        assert get_all(c, f"per-channel-{c.channel_number}") == [str(c.channel_number).encode()]
    # The numbers of closed channels can be reused.
    again = conn.channel()
    assert again.is_open
    assert again.queue_declare(queue="per-channel-1", passive=True).method.message_count == 1
    conn.close()


# --- recover / reject -----------------------------------------------------------------------


def test_basic_recover_requeues_unacked_as_redelivered(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue="rec")
    for i in range(3):
        ch.basic_publish(exchange="", routing_key="rec", body=b"r%d" % i)
    first = [ch.basic_get("rec", auto_ack=False) for _ in range(3)]
    assert [m.redelivered for m, _p, _b in first] == [False] * 3
    assert ch.basic_get("rec")[0] is None
    ch.basic_recover(requeue=True)
    again = [ch.basic_get("rec", auto_ack=False) for _ in range(3)]
    # Requeued messages keep their original order (RabbitMQ: "their original position").
    assert [b for _m, _p, b in again] == [b"r0", b"r1", b"r2"]
    assert all(m.redelivered for m, _p, _b in again)
    # The tags handed out before recover are settled: acking one is a channel error (406).
    ch.basic_ack(again[-1][0].delivery_tag, multiple=True)
    assert ch.queue_declare(queue="rec", passive=True).method.message_count == 0
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_ack(first[0][0].delivery_tag)
        ch.queue_declare(queue="rec", passive=True)
    assert e.value.reply_code == 406
    # Closing a channel requeues its unacked deliveries, also in their original order.
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish(exchange="", routing_key="rec", body=b"c%d" % i)
    for _ in range(3):
        assert ch.basic_get("rec", auto_ack=False)[0] is not None
    ch.close()
    ch = conn.channel()
    assert get_all(ch, "rec") == [b"c0", b"c1", b"c2"]
    conn.close()


def test_reject_and_nack_with_requeue_set_redelivered(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue="rj")
    for body in (b"a", b"b", b"c"):
        ch.basic_publish(exchange="", routing_key="rj", body=body)
    m, _p, body = ch.basic_get("rj", auto_ack=False)
    assert (body, m.redelivered) == (b"a", False)
    ch.basic_reject(m.delivery_tag, requeue=True)
    m, _p, body = ch.basic_get("rj", auto_ack=False)
    assert (body, m.redelivered) == (b"a", True), "a requeued message goes back to the head"
    ch.basic_reject(m.delivery_tag, requeue=False)
    # nack with multiple=True requeues both outstanding deliveries.
    m1 = ch.basic_get("rj", auto_ack=False)[0]
    m2 = ch.basic_get("rj", auto_ack=False)[0]
    ch.basic_nack(m2.delivery_tag, multiple=True, requeue=True)
    got = [ch.basic_get("rj", auto_ack=True) for _ in range(2)]
    assert [(b, m.redelivered) for m, _p, b in got] == [(b"b", True), (b"c", True)]
    assert m1.delivery_tag < m2.delivery_tag
    assert ch.basic_get("rj")[0] is None, "the message rejected without requeue is gone"
    conn.close()


# --- routing --------------------------------------------------------------------------------


def test_exchange_to_exchange_binding(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("e2e.src", exchange_type="topic")
    ch.exchange_declare("e2e.dst", exchange_type="fanout")
    ch.queue_declare(queue="e2e.q")
    ch.queue_bind("e2e.q", "e2e.dst")
    ch.exchange_bind(destination="e2e.dst", source="e2e.src", routing_key="orders.#")
    ch.basic_publish(exchange="e2e.src", routing_key="orders.eu.new", body=b"routed")
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(exchange="e2e.src", routing_key="invoices.eu", body=b"not", mandatory=True)
    assert get_all(ch, "e2e.q") == [b"routed"]
    ch.exchange_unbind(destination="e2e.dst", source="e2e.src", routing_key="orders.#")
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(exchange="e2e.src", routing_key="orders.eu.new", body=b"gone", mandatory=True)
    assert get_all(ch, "e2e.q") == []
    conn.close()


def test_headers_exchange_x_match_any_and_all(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("hdrs", exchange_type="headers")
    for q, match in (("h.all", "all"), ("h.any", "any")):
        ch.queue_declare(queue=q)
        ch.queue_bind(q, "hdrs", arguments={"x-match": match, "format": "pdf", "type": "report"})
    cases = [
        ("both", {"format": "pdf", "type": "report"}),
        ("both-extra", {"format": "pdf", "type": "report", "lang": "en"}),
        ("one", {"format": "pdf"}),
        ("one-wrong", {"format": "pdf", "type": "log"}),
        ("none", {"format": "zip", "lang": "en"}),
        ("no-headers", None),
    ]
    for body, headers in cases:
        ch.basic_publish(exchange="hdrs", routing_key="ignored", body=body.encode(),
                         properties=pika.BasicProperties(headers=headers))
    assert get_all(ch, "h.all") == [b"both", b"both-extra"]
    assert get_all(ch, "h.any") == [b"both", b"both-extra", b"one", b"one-wrong"]
    conn.close()


def test_passive_declare_counts_after_confirmed_publishes(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue="counted")
    ok = ch.queue_declare(queue="counted", passive=True).method
    assert (ok.message_count, ok.consumer_count) == (0, 0)
    for i in range(25):
        ch.basic_publish(exchange="", routing_key="counted", body=b"%d" % i)
    ok = ch.queue_declare(queue="counted", passive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == ("counted", 25, 0)
    # A consumer with prefetch 5 holds 5 unacked; they no longer count as ready.
    other = conn.channel()
    other.basic_qos(prefetch_count=5)
    held = []
    other.basic_consume("counted", lambda c, m, p, b: held.append(m.delivery_tag))
    drive(conn, lambda: len(held) == 5)
    ok = ch.queue_declare(queue="counted", passive=True).method
    assert (ok.message_count, ok.consumer_count) == (20, 1)
    other.close()  # the 5 unacked go back
    ok = ch.queue_declare(queue="counted", passive=True).method
    assert (ok.message_count, ok.consumer_count) == (25, 0)
    conn.close()


# --- consumers ------------------------------------------------------------------------------


def test_consumer_cancel_notification_when_queue_is_deleted(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare(queue="doomed")
    cancels = []
    ch.add_on_cancel_callback(lambda frame: cancels.append(frame.method))
    tag = ch.basic_consume("doomed", lambda *a: None, consumer_tag="watcher")
    assert tag == "watcher"
    other = connect(broker)
    other.channel().queue_delete("doomed")
    drive(conn, lambda: cancels)
    assert cancels[0].NAME == "Basic.Cancel" and cancels[0].consumer_tag == "watcher"
    assert "watcher" not in ch.consumer_tags
    # The channel is still usable after the broker-side cancel.
    assert ch.queue_declare(queue="after-cancel").method.queue == "after-cancel"
    other.close()
    conn.close()


def test_prefetch_1_does_not_starve_a_second_consumer(broker):
    # Consumer A takes one message and never acks; with prefetch_count=1 every other message
    # must go to consumer B (RabbitMQ: a consumer at its limit is skipped).
    conn = connect(broker)
    a, b, pub = conn.channel(), conn.channel(), conn.channel()
    pub.confirm_delivery()
    pub.queue_declare(queue="fair")
    got_a, got_b = [], []
    for ch, got, ack in ((a, got_a, False), (b, got_b, True)):
        ch.basic_qos(prefetch_count=1)

        def on_message(c, m, _p, body, got=got, ack=ack):
            got.append(body)
            if ack:
                c.basic_ack(m.delivery_tag)

        ch.basic_consume("fair", on_message)
    for i in range(10):
        pub.basic_publish(exchange="", routing_key="fair", body=b"%d" % i)
    drive(conn, lambda: len(got_a) + len(got_b) == 10)
    assert len(got_a) == 1 and len(got_b) == 9, (got_a, got_b)
    assert sorted(got_a + got_b, key=int) == [b"%d" % i for i in range(10)]
    conn.close()


# --- channel and connection exceptions -----------------------------------------------------


def test_publish_to_internal_exchange_is_403(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("inner", exchange_type="fanout", internal=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish(exchange="inner", routing_key="", body=b"x")
    assert e.value.reply_code == 403
    assert "ACCESS_REFUSED" in e.value.reply_text
    # Routing through an internal exchange from another exchange is allowed.
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("outer", exchange_type="fanout")
    ch.exchange_bind(destination="inner", source="outer")
    ch.queue_declare(queue="behind-inner")
    ch.queue_bind("behind-inner", "inner")
    ch.basic_publish(exchange="outer", routing_key="", body=b"via-outer")
    assert get_all(ch, "behind-inner") == [b"via-outer"]
    conn.close()


def test_user_id_must_be_the_authenticated_user(broker):
    # RabbitMQ's validated user-id: claiming another user is 406 PRECONDITION_FAILED.
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish(exchange="", routing_key=q, body=b"mine",
                     properties=pika.BasicProperties(user_id="guest"))
    method, props, _body = ch.basic_get(q, auto_ack=True)
    assert method is not None and props.user_id == "guest"
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish(exchange="", routing_key=q, body=b"spoofed",
                         properties=pika.BasicProperties(user_id="admin"))
    assert e.value.reply_code == 406
    assert "user_id property set to 'admin'" in e.value.reply_text
    ch = conn.channel()
    assert ch.queue_declare(queue=q, passive=True).method.message_count == 0
    conn.close()


def test_queue_delete_if_unused_with_consumer_is_406(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare(queue="busy")
    ch.basic_consume("busy", lambda *a: None)
    other = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        other.queue_delete("busy", if_unused=True)
    assert e.value.reply_code == 406
    assert "PRECONDITION_FAILED" in e.value.reply_text
    # The queue and its consumer survived; without the consumer if_unused succeeds.
    assert ch.queue_declare(queue="busy", passive=True).method.consumer_count == 1
    for tag in list(ch.consumer_tags):
        ch.basic_cancel(tag)
    assert ch.queue_delete("busy", if_unused=True).method.NAME == "Queue.DeleteOk"
    conn.close()


def test_exclusive_queue_from_another_connection_is_405(broker):
    owner = connect(broker)
    och = owner.channel()
    och.queue_declare(queue="mine", exclusive=True)
    intruder = connect(broker)
    attempts = [
        lambda ch: ch.queue_declare(queue="mine", exclusive=True),
        lambda ch: ch.queue_declare(queue="mine", passive=True),
        lambda ch: ch.basic_consume("mine", lambda *a: None),
        lambda ch: ch.queue_delete("mine"),
    ]
    for attempt in attempts:
        ch = intruder.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            attempt(ch)
        assert e.value.reply_code == 405, e.value
        assert "RESOURCE_LOCKED" in e.value.reply_text
    assert intruder.is_open, "405 is a channel exception"
    # The owner still has it; once the owner disconnects the queue is gone.
    assert och.queue_declare(queue="mine", passive=True).method.queue == "mine"
    owner.close()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        intruder.channel().queue_declare(queue="mine", passive=True)
    assert e.value.reply_code == 404
    intruder.close()


# --- heartbeats -----------------------------------------------------------------------------


def test_heartbeat_1s_connection_keeps_consuming(broker):
    # With heartbeat=1 the broker drops a silent peer after ~2 s; here the consumer connection
    # receives nothing but heartbeats in its idle gaps for 3.5 s and must survive, while a
    # publisher connection (no heartbeats) sends a message every 0.7 s from another thread.
    conn = connect(broker, heartbeat=1)
    ch = conn.channel()
    ch.queue_declare(queue="hb")
    got = []
    ch.basic_consume("hb", lambda c, m, _p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
    stop = threading.Event()

    def publish():
        p = connect(broker, heartbeat=0)
        pch = p.channel()
        for i in range(5):
            if stop.wait(0.7):
                break
            pch.basic_publish(exchange="", routing_key="hb", body=b"%d" % i)
        p.close()

    t = threading.Thread(target=publish)
    t.start()
    try:
        start = time.monotonic()
        deadline = start + 3.5
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
        assert conn.is_open
        drive(conn, lambda: len(got) == 5)
        assert got == [b"%d" % i for i in range(5)]
    finally:
        stop.set()
        t.join(10)
    conn.close()
