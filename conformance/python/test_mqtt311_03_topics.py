"""Topic names and filters: `+` and `#` matching, `$`-topics kept out of wildcards that start
the filter, and the `$SYS/broker/...` tree (Mosquitto's names, retained, every
`sys_interval_secs`)."""

import time

import pytest

from pahoclient import V311, V5

TOPICS = ["sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
          "sport/tennis/player2", "sport/golf", "/finance", "finance", "a/b/c/d", "v1.2/x", "a//b", "/", "//"]

# filter -> topics it must match among TOPICS (everything else must not match).
MATCHES = {
    "sport/#": ["sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
                "sport/tennis/player2", "sport/golf"],
    "sport/tennis/#": ["sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
                       "sport/tennis/player2"],
    "sport/+": ["sport/", "sport/tennis", "sport/golf"],
    "sport/+/player1": ["sport/tennis/player1"],
    "+": ["sport", "finance"],
    "+/+": ["sport/", "sport/tennis", "sport/golf", "/finance", "v1.2/x", "/"],
    "/+": ["/finance", "/"],
    "+/+/+": ["sport/tennis/player1", "sport/tennis/player2", "a//b", "//"],
    "a/+/b": ["a//b"],
    "/#": ["/finance", "/", "//"],
    "#": TOPICS,
    "+/tennis/#": ["sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2"],
    "a/+/c/+": ["a/b/c/d"],
    "sport/tennis/player1": ["sport/tennis/player1"],
    "v1.2/+": ["v1.2/x"],
}


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("topic_filter", sorted(MATCHES))
def test_wildcard_matching(broker, clients, version, topic_filter):
    sub = clients(broker, "wc-sub", version=version)
    sub.connect()
    sub.subscribe(topic_filter, 0)
    sub.subscribe("sentinel/end", 0)
    pub = clients(broker, "wc-pub", version=version)
    pub.connect()
    for t in TOPICS:
        pub.publish(t, t.encode(), qos=0)
    pub.publish("sentinel/end", b"", qos=0)
    got = [m.topic for m in sub.get_until("sentinel/end")][:-1]
    want = [t for t in TOPICS if t in MATCHES[topic_filter]]
    # Sections 4.7.1.2 / 4.7.1.3: `#` also matches the parent level; `+` matches exactly one
    # (possibly empty) level; levels are split on `/` only (a `.` is an ordinary character).
    assert sorted(got) == sorted(want)


def test_topics_are_case_sensitive(broker, clients):
    sub = clients(broker, "case-sub")
    sub.connect()
    sub.subscribe("Case/Topic", 0)
    sub.subscribe("case/end", 0)
    pub = clients(broker, "case-pub")
    pub.connect()
    pub.publish("case/topic", b"lower")
    pub.publish("CASE/TOPIC", b"upper")
    pub.publish("Case/Topic", b"exact")
    pub.publish("case/end", b"")
    # Section 4.7.3, [MQTT-4.7.3-4]: case-sensitive, no normalization when matching.
    assert [m.payload for m in sub.get_until("case/end")] == [b"exact", b""]


def test_non_ascii_topic_roundtrip(broker, clients):
    sub = clients(broker, "utf-sub", version=V5)
    sub.connect()
    sub.subscribe("température/+", 1)
    pub = clients(broker, "utf-pub", version=V5)
    pub.connect()
    pub.publish("température/ñ", b"x", qos=1)
    m = sub.get()
    assert m.topic == "température/ñ"


@pytest.fixture
def sys_broker(make_broker):
    return make_broker(sys_interval_secs=1)


SYS_TOPICS = ["$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
              "$SYS/broker/messages/received", "$SYS/broker/messages/sent"]


def _collect_sys(client, topics, timeout=5.0, retained=False):
    """Reads messages until every topic in `topics` was seen (with RETAIN 1 if `retained`)."""
    seen = {}
    deadline = time.monotonic() + timeout
    while not set(topics) <= set(seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"missing $SYS topics {set(topics) - set(seen)}; got {sorted(seen)}"
        m = client.get(remaining)
        if m.retain or not retained:
            seen.setdefault(m.topic, []).append(m)
    return seen


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_sys_topics_published_and_retained(sys_broker, clients, version):
    live = clients(sys_broker, "sys-live", version=version)
    live.connect()
    live.subscribe("$SYS/#", 0)
    _collect_sys(live, SYS_TOPICS)
    # After at least one interval they are retained: a new subscriber gets them at once, RETAIN 1
    # (well within one 1 s interval, so these are the copies sent for the SUBSCRIBE).
    late = clients(sys_broker, "sys-late", version=version)
    late.connect()
    late.subscribe("$SYS/broker/#", 0)
    seen = _collect_sys(late, SYS_TOPICS, timeout=0.9, retained=True)
    assert seen["$SYS/broker/uptime"][0].payload.endswith(b" seconds")
    assert seen["$SYS/broker/version"][0].payload.startswith(b"ferromq")


def test_sys_clients_connected_counts_clients(sys_broker, clients):
    watchers = [clients(sys_broker, f"sys-c{i}") for i in range(3)]
    for w in watchers:
        w.connect()
    watchers[0].subscribe("$SYS/broker/clients/connected", 0)
    # Wait for an update that counts all three (the first may be the retained one from
    # before, or one the $SYS task counted just before they connected); none within the
    # deadline fails the test.
    deadline = time.monotonic() + 5
    while True:
        m = watchers[0].get(max(0.01, deadline - time.monotonic()))
        if not m.retain and int(m.payload) >= 3:
            break


def test_sys_messages_received_grows(sys_broker, clients):
    c = clients(sys_broker, "sys-count")
    c.connect()
    c.subscribe("$SYS/broker/messages/received", 0)
    first = int(c.get(3).payload)
    for i in range(5):
        c.publish("count/me", b"x", qos=1)
    deadline = time.monotonic() + 5
    while True:
        m = c.get(max(0.01, deadline - time.monotonic()))
        if int(m.payload) >= first + 5:
            break


@pytest.mark.parametrize("wildcard", ["#", "+/broker/#", "+/+/+", "+/broker/uptime"])
def test_wildcards_at_start_do_not_match_sys(sys_broker, clients, wildcard):
    sys_sub = clients(sys_broker, "sys-ref")
    sys_sub.connect()
    wild = clients(sys_broker, "sys-wild")
    wild.connect()
    wild.subscribe(wildcard, 0)
    sys_sub.subscribe("$SYS/broker/uptime", 0)
    # Wait for two live updates of $SYS (after `wild` subscribed, so it would have seen them).
    updates = 0
    deadline = time.monotonic() + 5
    while updates < 2:
        m = sys_sub.get(max(0.01, deadline - time.monotonic()))
        updates += 0 if m.retain else 1
    # [MQTT-4.7.2-1] a filter starting with a wildcard does not match topics starting with `$`.
    leaked = [m.topic for m in wild.drain() if m.topic.startswith("$")]
    assert leaked == []


def test_client_publish_to_dollar_topic_is_not_matched_by_hash(broker, clients):
    sub = clients(broker, "dollar-sub")
    sub.connect()
    sub.subscribe("#", 0)
    exact = clients(broker, "dollar-exact")
    exact.connect()
    exact.subscribe("$app/x", 0)
    pub = clients(broker, "dollar-pub")
    pub.connect()
    pub.publish("$app/x", b"d")
    pub.publish("plain/end", b"e")
    assert exact.get().topic == "$app/x"
    # [MQTT-4.7.2-1]
    assert [m.topic for m in sub.get_until("plain/end")] == ["plain/end"]


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_long_and_deep_topics(broker, clients, version):
    sub = clients(broker, "deep-sub", version=version)
    sub.connect()
    sub.subscribe("deep/#", 1)
    sub.subscribe("deep/+/+/+/x", 1)
    pub = clients(broker, "deep-pub", version=version)
    pub.connect()
    deep = "deep/" + "/".join(f"l{i}" for i in range(300))
    long_level = "deep/" + "y" * 20000
    pub.publish(deep, b"deep", qos=1)
    pub.publish(long_level, b"long", qos=1)
    pub.publish("deep/a/b/c/x", b"both", qos=1)
    got = sub.get_n(3)
    assert [(m.topic, m.payload) for m in got] == [(deep, b"deep"), (long_level, b"long"), ("deep/a/b/c/x", b"both")]
