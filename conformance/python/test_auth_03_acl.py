"""MQTT topic ACLs (Mosquitto's acl_file syntax) with paho: a refused SUBSCRIBE gets 0x80
(3.1.1) / 0x87 (5.0) in SUBACK, a refused PUBLISH is dropped (3.1.1, acknowledged as usual) or
answered with 0x87 (5.0); `%c` / `%u` patterns; anonymous clients get the rules before the first
`user` line. A filter that partly overlaps a `deny` rule is granted and the denied topics are
held back message by message, live and retained (Mosquitto's per-message read check)."""

import signal

import pytest

import rawmqtt as r
from pahoclient import V5, V311

ACL = """\
topic read public/#

user alice
topic readwrite alice/#

user watcher
topic read #

user auditor
topic read #
topic deny alice/secret/#

pattern write devices/%c/up
pattern read users/%u/inbox
"""

USERS = """
[auth]
failed_login_delay_ms = 20
""" + "".join(f"""
[[users]]
name = "{u}"
password = "pw"

[[permissions]]
user = "{u}"
configure = ".*"
write = ".*"
read = ".*"
""" for u in ("alice", "watcher", "auditor"))


@pytest.fixture
def acl_broker(make_broker, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    return make_broker(acl_file=str(acl), extra_toml=USERS)


@pytest.fixture
def watcher(acl_broker, clients):
    w = clients(acl_broker, "watcher", version=V5, username="watcher", password="pw")
    w.connect()
    assert w.subscribe("#", qos=1) == 1
    return w


@pytest.mark.parametrize("version,denied", [(V311, 0x80), (V5, 0x87)])
def test_subscribe_denied(acl_broker, clients, version, denied):
    a = clients(acl_broker, "a", version=version, username="alice", password="pw")
    a.connect()
    assert a.subscribe_many([("alice/#", 1), ("bob/#", 1), ("users/alice/inbox", 0),
                             ("users/bob/inbox", 0)]) == [1, denied, 0, denied]


@pytest.mark.parametrize("version,code", [(V311, 0), (V5, 0x87)])
def test_publish_denied_is_dropped(acl_broker, watcher, clients, version, code):
    a = clients(acl_broker, "a", version=version, username="alice", password="pw")
    a.connect()
    assert a.publish("bob/x", b"no", qos=1) == code
    # QoS 2: paho sends PUBREL even after PUBREC 0x87 and reports the PUBCOMP; see the raw test.
    a.publish("bob/y", b"no", qos=2)
    a.publish("bob/z", b"no", qos=0)
    a.publish("alice/x", b"yes", qos=1)
    m = watcher.get()
    assert (m.topic, m.payload) == ("alice/x", b"yes")
    watcher.expect_none()


@pytest.mark.parametrize("version,code", [(4, 0), (5, 0x87)])
def test_qos2_publish_denied_pubrec_on_the_wire(acl_broker, raw, version, code):
    c = raw(acl_broker)
    c.connect("rawalice", version=version, username="alice", password="pw")
    c.send(r.publish("bob/q2", b"no", qos=2, packet_id=7, version=version))
    pubrec = c.expect(r.PUBREC)
    assert pubrec.packet_id() == 7
    assert pubrec.reason() == code


def test_client_id_pattern_and_anonymous_rules(acl_broker, watcher, clients):
    dev = clients(acl_broker, "dev1", version=V311)
    dev.connect()
    dev.publish("devices/dev2/up", b"spoof", qos=1)
    dev.publish("devices/dev1/up", b"real", qos=1)
    m = watcher.get()
    assert (m.topic, m.payload) == ("devices/dev1/up", b"real")
    watcher.expect_none()
    assert dev.subscribe("public/#") == 0
    assert dev.subscribe("alice/#") == 0x80


@pytest.mark.parametrize("version", [V311, V5])
def test_deny_rule_holds_back_topics_a_granted_filter_matches(acl_broker, clients, version):
    a = clients(acl_broker, "a", version=V5, username="alice", password="pw")
    a.connect()
    # A retained secret is there before the auditor subscribes.
    a.publish("alice/secret/plan", b"retained secret", qos=1, retain=True)
    aud = clients(acl_broker, "aud", version=version, username="auditor", password="pw")
    aud.connect()
    # Wholly denied filters are refused; overlapping ones are granted.
    denied = 0x80 if version == V311 else 0x87
    assert aud.subscribe_many([("alice/secret/#", 1), ("#", 1)]) == [denied, 1]
    for qos in (0, 1, 2):
        a.publish("alice/secret/x", b"live secret", qos=qos)
    a.publish("alice/open", b"fine", qos=1)
    # Order per publisher is kept, so the open message arriving means the secret ones
    # before it were held back, not late.
    m = aud.get()
    assert (m.topic, m.payload) == ("alice/open", b"fine")
    aud.expect_none()
    # The held-back QoS 1/2 deliveries were settled, not left in flight: more still flows.
    for i in range(3):
        a.publish(f"alice/more/{i}", b"m", qos=2)
    assert [m.topic for m in aud.get_n(3)] == [f"alice/more/{i}" for i in range(3)]


def test_reloaded_acl_applies_to_connected_clients(make_broker, clients, tmp_path):
    acl = tmp_path / "acl-reload"
    acl.write_text("user watcher\ntopic read #\nuser alice\ntopic readwrite alice/#\n")
    b = make_broker(acl_file=str(acl), extra_toml=USERS)
    w = clients(b, "w", version=V5, username="watcher", password="pw")
    w.connect()
    assert w.subscribe("#", qos=1) == 1
    a = clients(b, "a", version=V5, username="alice", password="pw")
    a.connect()
    assert a.publish("alice/hidden/x", b"before", qos=1) == 0
    assert w.get().payload == b"before"
    # As Mosquitto: a reloaded ACL file binds the clients already connected, for what they
    # publish and for what they are sent.
    acl.write_text("user watcher\ntopic read #\ntopic deny alice/hidden/#\n"
                   "user alice\ntopic readwrite alice/#\ntopic deny alice/blocked\n")
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"SIGHUP: users, permissions and ACLs reloaded")
    assert a.publish("alice/blocked", b"no", qos=1) == 0x87
    assert a.publish("alice/hidden/x", b"after", qos=1) == 0
    assert a.publish("alice/open", b"end", qos=1) == 0
    m = w.get()
    assert (m.topic, m.payload) == ("alice/open", b"end")
    w.expect_none()
