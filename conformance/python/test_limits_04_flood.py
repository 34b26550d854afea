"""A publish flood beyond the memory high watermark: pika publishers push transient and
persistent messages, and raw MQTT clients QoS 0 publishes, into queues nobody consumes as fast
as they can. The broker must raise
its memory alarm, block the publishers, and keep its resident set (VmRSS of the child
process, sampled every 20 ms) under the watermark plus a bounded slack — it must not grow
until the OOM killer ends it. Purging the queues then clears the alarm."""

import socket
import threading
import time

import pika

import rawmqtt as r

WATERMARK_MIB = 200
# What lands after the alarm: messages already read (each held connection finishes the
# message it is reading), queue inboxes still being taken in, the store's copies of
# persistent bodies; measured peaks were 203-245 MiB over 10 runs on 2 shared cores.
SLACK_MIB = 64
BODY = b"x" * (128 * 1024)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def flood(port, queue, persistent, stop, counts, i):
    try:
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=port, credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1, socket_timeout=5, blocked_connection_timeout=300))
        ch = conn.channel()
        ch.queue_declare(queue, durable=persistent)
        props = pika.BasicProperties(delivery_mode=2 if persistent else 1)
        while not stop.is_set():
            ch.basic_publish("", queue, BODY, props)
            counts[i] += 1
    except Exception:  # the broker is killed at teardown while publishes are held
        pass


def mqtt_flood(port, i, stop):
    """QoS 0 publishes from a raw socket: once held, `sendall` blocks on TCP backpressure."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(r.connect(f"flood-mqtt-{i}"))
        packet = r.publish(f"flood/{i}", BODY)
        while not stop.is_set():
            s.sendall(packet)
    except OSError:  # the broker is killed at teardown while the socket is held
        pass


def queued(ch):
    """Messages in the flood queues, as the broker counts them (passive declare-ok)."""
    names = [f"flood-{i}" for i in range(4)] + ["flood-mqtt"]
    return sum(ch.queue_declare(n, passive=True).method.message_count for n in names)


def test_flood_beyond_watermark_blocks_publishers_and_bounds_rss(make_broker):
    b = make_broker(extra_toml=f'[limits]\nmemory_high_watermark = "{WATERMARK_MIB}MiB"\n')
    pid = b.proc.pid
    stop = threading.Event()
    counts = [0] * 4
    threads = [threading.Thread(target=flood, args=(b.amqp_port, f"flood-{i}", i % 2 == 1, stop, counts, i),
                                daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    # MQTT publishers into a queue bound to amq.topic (nobody consumes it either).
    setup = pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=b.amqp_port, credentials=pika.PlainCredentials("guest", "guest")))
    sch = setup.channel()
    sch.queue_declare("flood-mqtt")
    sch.queue_bind("flood-mqtt", "amq.topic", "flood.*")
    setup.close()
    threads += [threading.Thread(target=mqtt_flood, args=(b.port, i, stop), daemon=True) for i in range(2)]
    for t in threads[4:]:
        t.start()
    # A connection that never publishes is never held: it reads the queue depths.
    monitor = pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=b.amqp_port, credentials=pika.PlainCredentials("guest", "guest")))
    mch = monitor.channel()
    for i in range(4):
        mch.queue_declare(f"flood-{i}", durable=i % 2 == 1)
    peak = 0.0
    alarm_at = None
    deadline = time.monotonic() + 18
    try:
        while time.monotonic() < deadline:
            peak = max(peak, rss_mib(pid))
            if alarm_at is None and "memory resource limit alarm set" in b.log():
                alarm_at = time.monotonic()
            if alarm_at is not None and time.monotonic() - alarm_at > 3:
                break
            time.sleep(0.02)
        assert b.alive(), "broker died during the flood"
        assert alarm_at is not None, f"no memory alarm within the flood (peak RSS {peak:.0f} MiB)"
        # Publishers are held: once the queues have taken in what was already in their
        # inboxes, they stop growing (pika keeps buffering its publishes client-side, so the
        # client's own count says nothing).
        settle = time.monotonic() + 8  # queue actors of a debug build drain slowly under load
        held = queued(mch)
        while True:
            time.sleep(0.5)
            now = queued(mch)
            if now == held or time.monotonic() > settle:
                break
            held = now
        time.sleep(1.0)
        after = queued(mch) - held
        assert after == 0, f"{after} messages reached the queues while the alarm was on"
        peak = max(peak, rss_mib(pid))
        assert "AMQP: connection blocked" in b.log()
        assert mch.queue_declare("flood-mqtt", passive=True).method.message_count > 0, "MQTT did not flood"
        assert peak < WATERMARK_MIB + SLACK_MIB, f"peak RSS {peak:.0f} MiB"
        # Resources recover: draining the queues lowers RSS (freed heap is returned to the
        # system while the alarm is on) and the alarm clears, unblocking the publishers.
        for n in [f"flood-{i}" for i in range(4)] + ["flood-mqtt"]:
            mch.queue_purge(n)
        b.wait_log(r"memory resource limit alarm cleared", timeout=5)
        print(f"peak RSS {peak:.0f} MiB, {held} x 128 KiB queued when held")
    finally:
        stop.set()
