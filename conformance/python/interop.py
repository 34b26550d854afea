"""Helpers for the MQTT <-> AMQP interop tests (`test_interop_*`): one broker per test module,
pika connections, AMQP queues bound on `amq.topic` that collect deliveries, and a publisher
interface that hides which protocol publishes.

Absence without sleeping: every publisher sends a *sentinel* after the message under test, on the
same MQTT session / AMQP channel, and every subscriber or queue is also subscribed / bound to the
sentinel. Publishes from one session are routed in order, so once a subscriber has the sentinel,
anything that was going to reach it from the message under test has arrived.
"""

import itertools
import time
from dataclasses import dataclass

import pika
import pytest

from conftest import Broker

TIMEOUT = 5.0
EXCHANGE = "amq.topic"  # the MQTT exchange (README, "MQTT and AMQP on one core")

_prefixes = itertools.count(1)


def unique_prefix(tag):
    """A first topic level no other test on the shared broker uses (no `/`, `.`, `+`, `#`)."""
    return f"{tag}{next(_prefixes)}"


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    """One broker for a whole module: the cases use disjoint topic prefixes, so they cannot see
    each other's messages (retained ones included), and the module runs in seconds instead of
    starting ~100 brokers."""
    b = Broker(tmp_path_factory.mktemp("interop-broker"))
    yield b
    b.stop()


@pytest.fixture
def broker(shared_broker, request):
    """The module's broker; its log is attached to the report of a failing test (conftest hook)."""
    request.node._ferromq_brokers = [shared_broker]
    assert shared_broker.alive(), f"shared broker died:\n{shared_broker.log()}"
    return shared_broker


@pytest.fixture(scope="module")
def _module_amqp(shared_broker):
    holder = {}
    yield holder
    conn = holder.get("conn")
    if conn is not None and conn.is_open:
        conn.close()


@pytest.fixture
def amqp(broker, _module_amqp):
    """A pika BlockingConnection shared by the module (reopened if a test left it closed)."""
    conn = _module_amqp.get("conn")
    if conn is None or not conn.is_open:
        conn = _module_amqp["conn"] = connect(broker)
    return conn


def connect(broker):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=broker.amqp_port, credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5,
    ))


@dataclass
class Delivery:
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties


class Queues:
    """Named, server-named exclusive queues on one channel, each bound on `amq.topic` with some
    binding keys and consumed with auto-ack; deliveries collect per name."""

    def __init__(self, conn):
        self.conn = conn
        self.ch = conn.channel()
        self.got = {}

    def add(self, name, *binding_keys):
        q = self.ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        for key in binding_keys:
            self.ch.queue_bind(q, EXCHANGE, routing_key=key)
        self.got[name] = []

        def on_message(_ch, method, properties, body):
            self.got[name].append(Delivery(method.exchange, method.routing_key, body, properties))

        self.ch.basic_consume(q, on_message, auto_ack=True)
        return q

    def until(self, name, routing_key, timeout=TIMEOUT):
        """Deliveries to `name` up to and including the first with `routing_key` (the sentinel)."""
        deadline = time.monotonic() + timeout
        got = self.got[name]
        while not any(d.routing_key == routing_key for d in got):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"sentinel {routing_key!r} not delivered to {name} within {timeout}s; "
                                     f"got {got}")
            # Returns as soon as a delivery has been dispatched, else after `remaining`.
            self.conn.process_data_events(time_limit=remaining)
        end = next(i for i, d in enumerate(got) if d.routing_key == routing_key)
        return got[:end + 1]

    def close(self):
        if self.ch.is_open:
            self.ch.close()


class MqttPublisher:
    """Publishes with a paho client (pahoclient.Client), topics in MQTT spelling."""

    protocol = "mqtt"

    def __init__(self, client):
        self.client = client

    def publish(self, topic, key, body, qos, retain=False):
        self.client.publish(topic, body, qos=qos, retain=retain)

    def barrier(self):
        """Returns once the broker has handled every earlier publish: packets of one connection
        are handled in order, and SUBACK answers a later packet (a QoS 0 PUBLISH has no ack)."""
        self.client.subscribe(f"{unique_prefix('barrier')}/x")


class AmqpPublisher:
    """Publishes with pika to `amq.topic`, routing keys in AMQP spelling; QoS 1 is persistent
    (delivery_mode 2), QoS 0 transient (1); retain is RabbitMQ's `x-mqtt-retain: true` header.
    The channel is in confirm mode, so each publish returns once the broker has routed it."""

    protocol = "amqp"

    def __init__(self, conn):
        self.ch = conn.channel()
        self.ch.confirm_delivery()

    def publish(self, topic, key, body, qos, retain=False):
        props = pika.BasicProperties(delivery_mode=2 if qos else 1,
                                     headers={"x-mqtt-retain": True} if retain else None)
        self.ch.basic_publish(EXCHANGE, key, body, props)

    def barrier(self):
        pass  # every publish already waited for its confirm

    def close(self):
        if self.ch.is_open:
            self.ch.close()
