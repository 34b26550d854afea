"""The Mosquitto command-line clients (mosquitto_pub / mosquitto_sub / mosquitto_rr 2.0) against
ferromq: they must behave exactly as against Mosquitto. mosquitto_sub runs with -d so the test
can wait for its SUBACK instead of sleeping."""

import queue
import shutil
import signal
import subprocess
import threading
import time

import pytest

from pahoclient import V5

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_sub") is None or shutil.which("mosquitto_pub") is None,
                                reason="mosquitto clients not installed")

TIMEOUT = 10


class MosqSub:
    """A running mosquitto_sub; stdout lines are split into debug lines and message lines."""

    def __init__(self, port, *args):
        cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-d", *args]
        if shutil.which("stdbuf"):
            # Its stdout is a pipe: line-buffer it so the debug lines (SUBACK) arrive as printed.
            cmd = ["stdbuf", "-oL", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     errors="replace")
        self.lines = queue.Queue()
        self.all = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, deadline):
        try:
            return self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"mosquitto_sub: nothing more within the timeout; output so far: {self.all}") from None

    def wait_subscribed(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(deadline)
            assert line is not None, f"mosquitto_sub exited before SUBACK: {self.all} {self.stderr()}"
            if line.startswith("Subscribed (mid"):
                return line

    def messages(self, timeout=TIMEOUT):
        """Message lines until the process exits (it must exit by itself: -C / -W / -E)."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            line = self._next(deadline)
            if line is None:
                return out
            if not (line.startswith("Client ") or line.startswith("Subscribed (")):
                out.append(line)

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout)

    def stderr(self):
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def mosq_sub():
    made = []

    def start(port_or_broker, *args):
        s = MosqSub(getattr(port_or_broker, "port", port_or_broker), *args)
        made.append(s)
        return s

    yield start
    for s in made:
        s.kill()


def pub(broker, *args, stdin=None):
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), *args]
    res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, f"{cmd} -> {res.returncode}: {res.stderr}"
    return res


def test_sub_v5_all_topics_sees_v311_qos2_retained_publish(broker, mosq_sub):
    s = mosq_sub(broker, "-V", "mqttv5", "-t", "#", "-v", "-C", "2", "-W", str(TIMEOUT))
    s.wait_subscribed()
    pub(broker, "-V", "mqttv311", "-q", "2", "-r", "-t", "cli/a", "-m", "hello")
    pub(broker, "-V", "mqttv311", "-q", "1", "-t", "cli/b/c", "-m", "world wide")
    assert s.messages() == ["cli/a hello", "cli/b/c world wide"]
    assert s.wait() == 0


@pytest.mark.parametrize("version", ["mqttv31", "mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_pub_sub_each_version_and_qos(broker, mosq_sub, version, qos):
    s = mosq_sub(broker, "-V", version, "-q", "2", "-t", "v/+", "-F", "%t|%p|%q|%r", "-C", "1", "-W", str(TIMEOUT))
    s.wait_subscribed()
    pub(broker, "-V", version, "-q", qos, "-t", "v/x", "-m", f"{version}-{qos}")
    assert s.messages() == [f"v/x|{version}-{qos}|{qos}|0"]
    assert s.wait() == 0


def test_retained_only_prints_retained_and_stops_at_live_message(broker, mosq_sub):
    pub(broker, "-V", "mqttv311", "-q", "2", "-r", "-t", "ro/a", "-m", "A")
    pub(broker, "-V", "mqttv311", "-q", "1", "-r", "-t", "ro/b/c", "-m", "BC")
    pub(broker, "-V", "mqttv311", "-q", "1", "-r", "-t", "other/x", "-m", "X")
    s = mosq_sub(broker, "-V", "mqttv311", "-t", "ro/#", "--retained-only", "-F", "%t|%p|%r", "-W", str(TIMEOUT))
    s.wait_subscribed()
    # --retained-only exits at the first message without the retain flag.
    pub(broker, "-V", "mqttv311", "-t", "ro/live", "-m", "L")
    assert sorted(s.messages()) == ["ro/a|A|1", "ro/b/c|BC|1"]
    assert s.wait() == 0


def test_clear_retained_with_null_message(broker, mosq_sub):
    pub(broker, "-r", "-q", "1", "-t", "clr/a", "-m", "doomed")
    pub(broker, "-r", "-q", "1", "-t", "clr/b", "-m", "kept")
    pub(broker, "-r", "-q", "1", "-t", "clr/a", "-n")
    s = mosq_sub(broker, "-t", "clr/#", "--retained-only", "-v", "-W", str(TIMEOUT))
    s.wait_subscribed()
    pub(broker, "-t", "clr/live", "-m", "L")
    assert s.messages() == ["clr/b kept"]


def test_v5_properties_via_cli(broker, mosq_sub):
    s = mosq_sub(broker, "-V", "mqttv5", "-t", "props/t", "-F", "%t|%p|%P|%C|%R|%F|%E",
                 "-C", "1", "-W", str(TIMEOUT))
    s.wait_subscribed()
    pub(broker, "-V", "mqttv5", "-q", "1", "-t", "props/t", "-m", "body",
        "-D", "publish", "user-property", "k1", "v1",
        "-D", "publish", "content-type", "text/plain",
        "-D", "publish", "response-topic", "props/reply",
        "-D", "publish", "payload-format-indicator", "1",
        "-D", "publish", "message-expiry-interval", "120")
    [line] = s.messages()
    topic, body, user, ctype, rtopic, pfi, expiry = line.split("|")
    assert (topic, body, user, ctype, rtopic, pfi) == ("props/t", "body", "k1:v1", "text/plain", "props/reply", "1")
    assert expiry in ("119", "120")


def test_subscription_identifier_via_cli(broker, mosq_sub):
    s = mosq_sub(broker, "-V", "mqttv5", "-t", "sid/#", "-D", "subscribe", "subscription-identifier", "42",
                 "-F", "%t|%S", "-C", "1", "-W", str(TIMEOUT))
    s.wait_subscribed()
    pub(broker, "-V", "mqttv5", "-t", "sid/x", "-m", "x")
    assert s.messages() == ["sid/x|42"]


def test_persistent_session_via_cli(broker, mosq_sub):
    first = mosq_sub(broker, "-V", "mqttv311", "-c", "-i", "cli-persist", "-q", "1", "-t", "per/t", "-E")
    first.wait_subscribed()
    assert first.wait() == 0  # -E: exit once subscribed (normal DISCONNECT; session kept)
    pub(broker, "-q", "1", "-t", "per/t", "-m", "queued while offline")
    again = mosq_sub(broker, "-V", "mqttv311", "-c", "-i", "cli-persist", "-q", "1", "-t", "per/t", "-v",
                     "-C", "1", "-W", str(TIMEOUT))
    assert again.messages() == ["per/t queued while offline"]
    assert again.wait() == 0


def test_persistent_session_v5_expiry_via_cli(broker, mosq_sub):
    first = mosq_sub(broker, "-V", "mqttv5", "-c", "-x", "60", "-i", "cli-persist5", "-q", "1", "-t", "per5/t", "-E")
    first.wait_subscribed()
    assert first.wait() == 0
    pub(broker, "-V", "mqttv5", "-q", "1", "-t", "per5/t", "-m", "queued v5")
    again = mosq_sub(broker, "-V", "mqttv5", "-c", "-x", "60", "-i", "cli-persist5", "-q", "1", "-t", "per5/t", "-v",
                     "-C", "1", "-W", str(TIMEOUT))
    assert again.messages() == ["per5/t queued v5"]


def test_pub_lines_from_stdin_keep_order(broker, mosq_sub):
    s = mosq_sub(broker, "-q", "1", "-t", "lines/t", "-F", "%p", "-C", "20", "-W", str(TIMEOUT))
    s.wait_subscribed()
    pub(broker, "-q", "1", "-t", "lines/t", "-l", stdin="".join(f"line {i}\n" for i in range(20)))
    assert s.messages() == [f"line {i}" for i in range(20)]


def test_will_from_killed_mosquitto_sub(broker, mosq_sub):
    watcher = mosq_sub(broker, "-t", "cliwill/#", "-v", "-C", "1", "-W", str(TIMEOUT))
    watcher.wait_subscribed()
    victim = mosq_sub(broker, "-t", "nothing/here", "--will-topic", "cliwill/gone", "--will-payload", "killed",
                      "--will-qos", "1")
    victim.wait_subscribed()
    victim.proc.send_signal(signal.SIGKILL)
    assert watcher.messages() == ["cliwill/gone killed"]


def test_no_will_from_clean_exit(broker, mosq_sub):
    victim = mosq_sub(broker, "-t", "nothing/here", "--will-topic", "cliwill2/gone", "--will-payload", "x", "-E")
    victim.wait_subscribed()
    assert victim.wait() == 0
    watcher = mosq_sub(broker, "-t", "cliwill2/#", "-t", "cliwill2-end", "-v", "-C", "1", "-W", str(TIMEOUT))
    watcher.wait_subscribed()
    pub(broker, "-t", "cliwill2-end", "-m", "end")
    assert watcher.messages() == ["cliwill2-end end"]


def test_mosquitto_rr_request_response(broker, clients):
    if shutil.which("mosquitto_rr") is None:
        pytest.skip("mosquitto_rr not installed")
    responder = clients(broker, "rr-cli-responder", version=V5)
    responder.connect()
    responder.subscribe("rrcli/request", 1)
    proc = subprocess.Popen(["mosquitto_rr", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "rrcli/request",
                             "-e", "rrcli/response", "-m", "ping", "-W", str(TIMEOUT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    req = responder.get()
    assert req.prop("ResponseTopic") == "rrcli/response"
    responder.publish(req.prop("ResponseTopic"), b"pong", qos=1,
                      properties=dict(CorrelationData=req.prop("CorrelationData")) if req.prop("CorrelationData")
                      else None)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert out.strip() == "pong"


def test_sys_topics_via_cli(make_broker, mosq_sub):
    b = make_broker(sys_interval_secs=1)
    s = mosq_sub(b, "-t", "$SYS/broker/version", "-t", "$SYS/broker/uptime", "-v", "-C", "2", "-W", str(TIMEOUT))
    lines = s.messages()
    assert {line.split(" ", 1)[0] for line in lines} <= {"$SYS/broker/version", "$SYS/broker/uptime"}
    assert len(lines) == 2


def test_hash_subscription_excludes_sys_via_cli(make_broker, mosq_sub):
    b = make_broker(sys_interval_secs=1)
    s = mosq_sub(b, "-t", "#", "-v", "-C", "1", "-W", str(TIMEOUT))
    s.wait_subscribed()
    sys_watch = mosq_sub(b, "-t", "$SYS/broker/uptime", "-R", "-C", "1", "-v", "-W", str(TIMEOUT))
    # -R skips the retained copy: this returns after a live $SYS update, which `#` must not get.
    assert len(sys_watch.messages()) == 1
    pub(b, "-t", "after/sys", "-m", "end")
    # [MQTT-4.7.2-1] the first (and only, -C 1) message `#` gets is the ordinary one.
    assert s.messages() == ["after/sys end"]
