"""A thin wrapper over paho-mqtt 2.x for tests: every operation waits for its acknowledgement
(CONNACK, SUBACK, PUBACK/PUBCOMP, ...) on an event with a timeout, and received messages land in
a queue that tests read with a timeout.

paho never reconnects here (`reconnect_on_failure=False`), so a broker that drops a connection is
observed as such. Server-to-client topic aliases are resolved in `_on_message` (paho itself does
not), keeping the alias so tests can check it.
"""

import queue
import socket
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

V31 = mqtt.MQTTv31
V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
VERSIONS = [V31, V311, V5]
VERSION_IDS = {V31: "v31", V311: "v311", V5: "v5"}

TIMEOUT = 5.0
QUIET = 0.5  # how long "nothing arrives" is watched when no later event can bound it


def props(packet_type, **values):
    """paho Properties for `packet_type` (e.g. PacketTypes.PUBLISH) from keyword values."""
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def prop(properties, name, default=None):
    """A property of a received packet, or `default` when absent."""
    if properties is None:
        return default
    return getattr(properties, name, default)


@dataclass
class Msg:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    mid: int
    properties: object
    wire_topic: str  # the topic as it came on the wire (empty when only an alias was sent)
    received_at: float = field(default_factory=time.monotonic)

    def prop(self, name, default=None):
        return prop(self.properties, name, default)


@dataclass
class Connack:
    session_present: bool
    reason_code: int
    properties: object

    def prop(self, name, default=None):
        return prop(self.properties, name, default)


class Client:
    def __init__(self, port, client_id="", version=V311, clean=True, keepalive=30, will=None,
                 properties=None, manual_ack=False, username=None, password=None, tls=None,
                 transport="tcp", ws_path="/mqtt"):
        """`will` = dict(topic=, payload=, qos=, retain=, properties=); `properties` = CONNECT
        properties as a dict of paho property names (v5 only); `tls` = an ssl.SSLContext to
        connect with TLS; `transport="websockets"` speaks MQTT over WebSocket on `ws_path`."""
        self.port = port
        self.version = version
        self.clean = clean
        self.keepalive = keepalive
        self.connect_properties = properties
        kwargs = {}
        if version != V5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
            reconnect_on_failure=False, transport=transport, **kwargs,
        )
        if transport == "websockets":
            self.c.ws_set_options(path=ws_path)
        if tls is not None:
            self.c.tls_set_context(tls)
        if manual_ack:
            self.c.manual_ack_set(True)
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0), will.get("retain", False),
                            will.get("properties"))
        self.messages = queue.Queue()
        self._connacks = queue.Queue()
        self._acks = {}  # mid -> (reason codes, properties) for SUBACK / UNSUBACK / PUBACK
        self._acks_cond = threading.Condition()
        self.disconnected = threading.Event()
        self.disconnect_info = None  # (from_server: bool, reason code int, properties)
        self._aliases = {}
        self._started = False
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_ack
        self.c.on_unsubscribe = self._on_ack
        self.c.on_publish = self._on_publish

    # --- callbacks (paho's network thread) ---------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self._connacks.put(Connack(bool(flags.session_present), _rc(reason_code), properties))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_info = (flags.is_disconnect_packet_from_server, _rc(reason_code), properties)
        self.disconnected.set()

    def _on_message(self, client, userdata, message):
        wire_topic = message._topic.decode("utf-8")
        topic = wire_topic
        alias = prop(message.properties, "TopicAlias")
        if alias is not None:
            if wire_topic:
                self._aliases[alias] = wire_topic
            else:
                topic = self._aliases.get(alias, f"<unknown alias {alias}>")
        self.messages.put(Msg(topic, bytes(message.payload), message.qos, bool(message.retain),
                              bool(message.dup), message.mid, message.properties, wire_topic))

    def _on_ack(self, client, userdata, mid, reason_codes, properties):
        with self._acks_cond:
            self._acks[mid] = ([_rc(r) for r in reason_codes], properties)
            self._acks_cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._acks_cond:
            self._acks[mid] = (_rc(reason_code), properties)
            self._acks_cond.notify_all()

    def _wait_ack(self, mid, what, timeout):
        with self._acks_cond:
            if not self._acks_cond.wait_for(lambda: mid in self._acks, timeout):
                raise AssertionError(f"no {what} for mid {mid} within {timeout}s")
            return self._acks.pop(mid)

    # --- operations ----------------------------------------------------------------------------

    def connect(self, timeout=TIMEOUT, expect_success=True):
        """Sends CONNECT, waits for CONNACK; returns a Connack."""
        properties = None
        if self.connect_properties:
            properties = props(PacketTypes.CONNECT, **self.connect_properties)
        if self.version == V5:
            self.c.connect("127.0.0.1", self.port, self.keepalive, clean_start=self.clean, properties=properties)
        else:
            self.c.connect("127.0.0.1", self.port, self.keepalive)
        self.c.loop_start()
        self._started = True
        try:
            ack = self._connacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no CONNACK within {timeout}s") from None
        if expect_success:
            assert ack.reason_code == 0, f"CONNACK refused: {ack}"
        return ack

    def subscribe(self, topic, qos=0, no_local=False, retain_as_published=False, retain_handling=0,
                  sub_id=None, timeout=TIMEOUT):
        """Subscribes one filter; returns its SUBACK reason code (granted QoS)."""
        return self.subscribe_many([(topic, qos)], no_local, retain_as_published, retain_handling, sub_id,
                                   timeout)[0]

    def subscribe_many(self, filters, no_local=False, retain_as_published=False, retain_handling=0,
                       sub_id=None, timeout=TIMEOUT):
        """Subscribes [(filter, qos)] in one SUBSCRIBE; returns the SUBACK reason codes."""
        if self.version == V5:
            opts = [(t, mqtt.SubscribeOptions(qos=q, noLocal=no_local, retainAsPublished=retain_as_published,
                                              retainHandling=retain_handling)) for t, q in filters]
            properties = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id) if sub_id else None
            rc, mid = self.c.subscribe(opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(list(filters))
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {rc}"
        codes, _ = self._wait_ack(mid, "SUBACK", timeout)
        return codes

    def unsubscribe(self, topic, timeout=TIMEOUT):
        """Returns the UNSUBACK reason codes (v5) or [] (v3)."""
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        codes, _ = self._wait_ack(mid, "UNSUBACK", timeout)
        return codes

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True, timeout=TIMEOUT):
        """Publishes; with `wait`, waits until paho reports it done (written for QoS 0, PUBACK for
        QoS 1, PUBCOMP for QoS 2) and returns the v5 reason code of PUBACK / PUBREC (0 for v3)."""
        if isinstance(properties, dict):
            properties = props(PacketTypes.PUBLISH, **properties)
        info = self.c.publish(topic, payload, qos, retain, properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {info.rc}"
        if not wait:
            return info.mid
        rc, _ = self._wait_ack(info.mid, "publish completion", timeout)
        return rc

    def ack(self, msg):
        """With manual_ack: sends the PUBACK / PUBREC for `msg`."""
        self.c.ack(msg.mid, msg.qos)

    def get(self, timeout=TIMEOUT):
        """The next received message; fails the test if none arrives within `timeout`."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message received within {timeout}s") from None

    def get_n(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        return [self.get(max(0.01, deadline - time.monotonic())) for _ in range(n)]

    def get_until(self, topic, timeout=TIMEOUT):
        """Messages received up to and including the first one on `topic` (a sentinel published
        after the messages under test: ordering on one session makes it a barrier)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"sentinel on {topic!r} not received within {timeout}s; got {got}")
            m = self.get(remaining)
            got.append(m)
            if m.topic == topic:
                return got

    def expect_none(self, window=QUIET):
        """Asserts that nothing arrives within `window` (used only where no later event exists)."""
        try:
            m = self.messages.get(timeout=window)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message {m}")

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def wait_disconnected(self, timeout=TIMEOUT):
        """Waits until the connection is gone; returns (from_server, reason code, properties)."""
        assert self.disconnected.wait(timeout), f"connection not closed within {timeout}s"
        return self.disconnect_info

    def disconnect(self, reason=None, properties=None, timeout=TIMEOUT):
        """Normal DISCONNECT (v5: with `reason` code and DISCONNECT properties dict)."""
        kwargs = {}
        if reason is not None:
            kwargs["reasoncode"] = ReasonCode(PacketTypes.DISCONNECT, identifier=reason)
        if properties:
            kwargs["properties"] = props(PacketTypes.DISCONNECT, **properties)
        self.c.disconnect(**kwargs)
        self.wait_disconnected(timeout)
        self._stop()

    def drop(self, timeout=TIMEOUT):
        """Closes the TCP connection without DISCONNECT (an abnormal end: the will is due)."""
        sock = self.c.socket()
        # Over WebSocket paho hands out a wrapper; shut the socket under it.
        sock = getattr(sock, "_socket", sock)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.wait_disconnected(timeout)
        self._stop()

    def _stop(self):
        if self._started:
            self._started = False
            self.c.loop_stop()

    def close(self):
        """Teardown: end the network thread and the socket however things stand."""
        sock = self.c.socket()
        # Over WebSocket paho hands out a wrapper; shut the socket under it.
        sock = getattr(sock, "_socket", sock)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._started:
            self.disconnected.wait(2)
        self._stop()
        try:
            self.c._sock_close()
        except Exception:
            pass


def _rc(reason_code):
    return getattr(reason_code, "value", reason_code)
