"""Durable queues with pika across a broker crash, as RabbitMQ users rely on them: a durable
queue comes back with its persistent (delivery_mode=2) messages in order, its transient
messages and transient queues do not. The broker is killed with SIGKILL and restarted on the
same data directory.
"""

import pika
import pytest

from conftest import Broker


def connect(broker):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1",
        port=broker.amqp_port,
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1,
        socket_timeout=5,
        blocked_connection_timeout=5,
    ))


def test_durable_queue_keeps_persistent_messages_across_a_crash(tmp_path):
    workdir = tmp_path / "broker"
    b = Broker(workdir)
    try:
        conn = connect(b)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("pika-durable", durable=True)
        ch.queue_declare("pika-transient")
        for i in range(20):
            # With confirm_delivery, basic_publish returns once the broker confirmed.
            ch.basic_publish("", "pika-durable", f"m{i:02}".encode(),
                             pika.BasicProperties(delivery_mode=2))
        ch.basic_publish("", "pika-durable", b"not persistent", pika.BasicProperties(delivery_mode=1))
    finally:
        b.stop()  # SIGKILL
    b = Broker(workdir)
    try:
        conn = connect(b)
        ch = conn.channel()
        q = ch.queue_declare("pika-durable", passive=True)
        assert q.method.message_count == 20
        got = []
        while True:
            method, _props, body = ch.basic_get("pika-durable")
            if method is None:
                break
            got.append(body)
            ch.basic_ack(method.delivery_tag)
        assert got == [f"m{i:02}".encode() for i in range(20)]
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            ch.queue_declare("pika-transient", passive=True)
        assert err.value.reply_code == 404
        conn.close()
    finally:
        b.stop()
