"""MQTT <-> AMQP interop matrix (issue 4): paho-mqtt (3.1.1, 5.0) and pika over real sockets
against one broker, through the one routing core that both protocols share (`amq.topic`).

Parametrized over MQTT version x direction (MQTT publisher -> AMQP consumer, AMQP publisher ->
MQTT subscriber, MQTT -> MQTT as the control) x QoS 0 / 1 x topic case (plain levels, `+`, `#`,
a dotted MQTT level = a slashed AMQP word, `#` matching zero levels) x retained (-> MQTT only:
published first with retain / `x-mqtt-retain: true`, then the wildcard subscription gets it with
RETAIN set). Each case asserts the exact topic or routing key, body and QoS / delivery_mode, and
that subscriptions / bindings that must not match get nothing: they receive only the sentinel
published after the message under test (see interop.py).

Every case writes both spellings out in full (README, "MQTT and AMQP on one core"); nothing is
derived from the broker's own mapping. `{p}` is a prefix unique to the case, so the module shares
one broker.
"""

from dataclasses import dataclass

import pytest

from interop import (  # noqa: F401  (fixtures are used by name)
    AmqpPublisher, MqttPublisher, Queues, _module_amqp, amqp, broker, shared_broker, unique_prefix,
)
from pahoclient import V311, V5, VERSION_IDS


@dataclass(frozen=True)
class Case:
    """A topic in both spellings, a filter that must match it and filters that must not."""
    id: str
    topic: str  # MQTT topic name
    key: str  # the same as an AMQP routing key
    hit: tuple  # (MQTT filter, AMQP binding key) that matches
    misses: tuple  # ((MQTT filter, AMQP binding key), ...) that must not match

    def at(self, p):
        """The case with `{p}` filled in."""
        def f(s):
            return s.format(p=p)

        return Case(self.id, f(self.topic), f(self.key), tuple(map(f, self.hit)),
                    tuple(tuple(map(f, m)) for m in self.misses))


CASES = [
    Case("plain", "{p}/x/temp", "{p}.x.temp", ("{p}/x/temp", "{p}.x.temp"),
         (("{p}/x/humidity", "{p}.x.humidity"), ("{p}/x", "{p}.x"), ("{p}/x/temp/y", "{p}.x.temp.y"))),
    Case("plus", "{p}/x/temp", "{p}.x.temp", ("{p}/+/temp", "{p}.*.temp"),
         (("{p}/+", "{p}.*"), ("{p}/+/temp/+", "{p}.*.temp.*"), ("{p}/+/+/+/temp", "{p}.*.*.*.temp"))),
    Case("hash", "{p}/x/temp", "{p}.x.temp", ("{p}/#", "{p}.#"),
         (("{p}/y/#", "{p}.y.#"), ("{p}/x/temp/+/#", "{p}.x.temp.*.#"))),
    # One level in both protocols: `+` / `*` matches "v1.2" / "v1/2" whole; the filters that
    # would match if the `.` were a separator do not.
    Case("dotted", "{p}/fw/v1.2/status", "{p}.fw.v1/2.status", ("{p}/fw/+/status", "{p}.fw.*.status"),
         (("{p}/fw/v1/#", "{p}.fw.v1.#"), ("{p}/fw/+/+/status", "{p}.fw.*.*.status"),
          ("{p}/fw/v1/2/status", "{p}.fw.v1.2.status"))),
    # Edges of the mapping: an empty level, a level ending in `.`, a level that is only `.`.
    Case("edge_levels", "{p}//x./.", "{p}..x/./", ("{p}/+/+/+", "{p}.*.*.*"),
         (("{p}/+/+", "{p}.*.*"), ("{p}/+/x/#", "{p}.*.x.#"), ("{p}/+/+/+/+", "{p}.*.*.*.*"))),
    # `a/#` matches `a` itself [MQTT-4.7.1-2]; RabbitMQ's `a.#` matches `a` too; `+` / `*` needs a level.
    Case("hash_zero", "{p}/a", "{p}.a", ("{p}/a/#", "{p}.a.#"),
         (("{p}/a/+", "{p}.a.*"), ("{p}/a/+/#", "{p}.a.*.#"))),
]

VERSION_PARAMS = [pytest.param(v, id=VERSION_IDS[v]) for v in (V311, V5)]
QOS_PARAMS = [pytest.param(q, id=f"qos{q}") for q in (0, 1)]
CASE_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


def body_for(p):
    # Binary and non-UTF-8, so any text handling of the body on the way would show.
    return b"\x00\xff interop " + p.encode()


def sentinel(p):
    """A topic (and key) that no case filter matches; every subscriber also subscribes to it."""
    return f"{p}end/sentinel", f"{p}end.sentinel"


@pytest.mark.parametrize("case", CASE_PARAMS)
@pytest.mark.parametrize("qos", QOS_PARAMS)
@pytest.mark.parametrize("version", VERSION_PARAMS)
def test_mqtt_publisher_to_amqp_consumer(broker, clients, amqp, version, qos, case):
    p = unique_prefix("m2a")
    c = case.at(p)
    end_topic, end_key = sentinel(p)
    queues = Queues(amqp)
    try:
        queues.add("hit", c.hit[1], end_key)
        queues.add("miss", *(m[1] for m in c.misses), end_key)
        pub = clients(broker, version=version)
        pub.connect()
        body = body_for(p)
        pub.publish(c.topic, body, qos=qos)
        pub.publish(end_topic, b"end", qos=qos)

        hit = queues.until("hit", end_key)
        assert [d.routing_key for d in hit] == [c.key, end_key]
        d = hit[0]
        assert (d.exchange, d.body) == ("amq.topic", body)
        # QoS >= 1 is persistent; RabbitMQ's x-mqtt-publish-qos tells the QoS it was sent with.
        assert d.properties.delivery_mode == (2 if qos else 1)
        assert d.properties.headers == {"x-mqtt-publish-qos": qos}
        assert [d.routing_key for d in queues.until("miss", end_key)] == [end_key]
    finally:
        queues.close()


@pytest.mark.parametrize("retained", [pytest.param(False, id="live"), pytest.param(True, id="retained")])
@pytest.mark.parametrize("case", CASE_PARAMS)
@pytest.mark.parametrize("qos", QOS_PARAMS)
@pytest.mark.parametrize("source", ["amqp", "mqtt"])
@pytest.mark.parametrize("version", VERSION_PARAMS)
def test_to_mqtt_subscriber(broker, clients, amqp, version, source, qos, case, retained):
    """AMQP publisher -> MQTT subscriber, and MQTT -> MQTT (same version) as the control."""
    p = unique_prefix(f"{source}2m")
    c = case.at(p)
    end_topic, end_key = sentinel(p)
    if source == "amqp":
        pub = AmqpPublisher(amqp)
    else:
        pub_client = clients(broker, version=version)
        pub_client.connect()
        pub = MqttPublisher(pub_client)
    try:
        hit = clients(broker, version=version)
        miss = clients(broker, version=version)
        body = body_for(p)

        def subscribe():
            hit.connect()
            miss.connect()
            assert hit.subscribe_many([(c.hit[0], 1), (end_topic, 1)]) == [1, 1]
            miss_filters = [(m[0], 1) for m in c.misses] + [(end_topic, 1)]
            assert miss.subscribe_many(miss_filters) == [1] * len(miss_filters)

        if retained:
            pub.publish(c.topic, c.key, body, qos, retain=True)
            pub.barrier()  # stored before anyone subscribes
            subscribe()
        else:
            subscribe()
            pub.publish(c.topic, c.key, body, qos)
        pub.publish(end_topic, end_key, b"end", qos)

        got = hit.get_until(end_topic)
        assert [m.topic for m in got] == [c.topic, end_topic], got
        m = got[0]
        assert m.payload == body
        # Subscribed at QoS 1, so the message keeps the QoS it was published with (AMQP:
        # persistent = 1, transient = 0). RETAIN is set only on a retained message sent because
        # of a new subscription [MQTT-3.3.1-8], [MQTT-3.3.1-9] (v5: Retain As Published is off).
        assert (m.qos, m.retain) == (qos, retained)
        assert [m.topic for m in miss.get_until(end_topic)] == [end_topic]
    finally:
        if source == "amqp":
            pub.close()


@pytest.mark.parametrize("version", VERSION_PARAMS)
def test_amqp_keys_that_are_no_mqtt_topic_are_not_sent_to_mqtt(broker, clients, amqp, version):
    """README: an AMQP routing key that is no valid MQTT topic name (empty, or containing `+` or
    `#`) is not delivered to MQTT subscribers; AMQP queues bound to it still get it."""
    p = unique_prefix("bad")
    end_topic, end_key = sentinel(p)
    sub = clients(broker, version=version)
    sub.connect()
    # `#` on the shared broker: v5 leaves out the retained messages of earlier cases
    # (Retain Handling 2); for 3.1.1 those arrive first and are skipped below by their RETAIN flag.
    sub.subscribe_many([("#", 1), (end_topic, 1)], retain_handling=2)
    queues = Queues(amqp)
    pub = AmqpPublisher(amqp)
    try:
        keys = ["", f"{p}.a+b", f"{p}.#", f"{p}.x#", f"{p}.+"]
        queues.add("amqp", *keys, end_key)
        for key in keys:
            pub.publish(None, key, b"bad", 1)
        pub.publish(end_topic, end_key, b"end", 1)
        got = [m for m in sub.get_until(end_topic) if not m.retain]
        assert [m.topic for m in got] == [end_topic]
        assert [d.routing_key for d in queues.until("amqp", end_key)] == keys + [end_key]
        assert sub.c.is_connected()
    finally:
        pub.close()
        queues.close()


def test_mqtt_topic_longer_than_an_amqp_routing_key(broker, clients, amqp):
    p = unique_prefix("long")
    end_topic, end_key = sentinel(p)
    queues = Queues(amqp)
    try:
        queues.add("q", f"{p}.#", end_key)
        pub = clients(broker, version=V311)
        pub.connect()
        topic = f"{p}/" + "x" * 300
        pub.publish(topic, b"long", qos=1)
        pub.publish(end_topic, b"end", qos=1)
        got = queues.until("q", end_key)
    finally:
        queues.close()
    # README: a routing key is a short string, so an AMQP consumer gets the key cut to its first
    # 255 bytes and the whole topic in header `x-mqtt-topic`; the message is not lost.
    assert [d.routing_key for d in got] == [(f"{p}." + "x" * 300)[:255], end_key]
    assert got[0].properties.headers["x-mqtt-topic"] == topic
    assert got[0].body == b"long"
    assert "x-mqtt-topic" not in (got[1].properties.headers or {})
