"""Fixtures: a real ferromq broker process per test, and paho clients bound to it.

The broker binary is `$FERROMQ_BIN` or `target/debug/ferromq` under the repository root. Each
broker listens on 127.0.0.1:0 (the real port is read from its log), uses a fresh data dir, and is
killed at teardown. When a test fails, the log of every broker it started is attached to the
failure report.
"""

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pahoclient import Client
from rawmqtt import RawClient

REPO_ROOT = Path(__file__).resolve().parents[2]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LISTENING = re.compile(r"listening for (MQTTS?|AMQPS?|MQTT-WSS?) on 127\.0\.0\.1:(\d+)")
_LISTEN_FLAGS = {"MQTT-WS": "--mqtt-ws-listen", "MQTT-WSS": "--mqtt-wss-listen"}
CERTS = REPO_ROOT / "certs"


def broker_binary():
    path = Path(os.environ.get("FERROMQ_BIN", "target/debug/ferromq"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


class Broker:
    """One ferromq process. `port` is its MQTT port, `amqp_port` its AMQP port, `mqtts_port` and
    `amqps_port` its TLS ports (when started with `tls_args`); `log()` its output so far."""

    def __init__(self, workdir, config=None, start_timeout=15.0, tls_args=None, log_level="info",
                 listeners=(), extra_toml=None):
        binary = broker_binary()
        if not binary.exists():
            pytest.fail(f"broker binary {binary} not found: run `cargo build` or set FERROMQ_BIN")
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = dict(config or {})
        self.data_dir = workdir / "data"
        cmd = [
            str(binary),
            "--mqtt-listen", "127.0.0.1:0",
            "--amqp-listen", "127.0.0.1:0",
            "--data-dir", str(workdir / "data"),
            "--log-level", log_level,
        ]
        self._expected = {"MQTT", "AMQP"}
        if tls_args is not None:
            cmd += ["--mqtts-listen", "127.0.0.1:0", "--amqps-listen", "127.0.0.1:0", *tls_args]
            self._expected |= {"MQTTS", "AMQPS"}
        for name in listeners:
            cmd += [_LISTEN_FLAGS[name], "127.0.0.1:0"]
            self._expected.add(name)
        if self.config or extra_toml:
            # `extra_toml` (tables such as [auth] or [[users]]) follows the [mqtt] keys.
            path = workdir / "ferromq.toml"
            path.write_text("[mqtt]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in self.config.items())
                            + (extra_toml or ""))
            cmd += ["--config", str(path)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERROMQ_") and k != "RUST_LOG"}
        env["NO_COLOR"] = "1"
        self._lines = []
        self._lock = threading.Lock()
        self._port_found = threading.Event()
        self.ports = {}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            text=True, errors="replace", bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._port_found.wait(start_timeout):
            self.stop()
            pytest.fail(f"broker did not report its {sorted(self._expected)} ports within {start_timeout}s:\n{self.log()}")

    def _read(self):
        for line in self.proc.stdout:
            line = _ANSI.sub("", line)
            with self._lock:
                self._lines.append(line)
            m = _LISTENING.search(line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
                if self._expected <= self.ports.keys():
                    self._port_found.set()
        self._port_found.set()

    @property
    def port(self):
        return self.ports.get("MQTT")

    @property
    def amqp_port(self):
        return self.ports.get("AMQP")

    @property
    def mqtts_port(self):
        return self.ports.get("MQTTS")

    @property
    def amqps_port(self):
        return self.ports.get("AMQPS")

    @property
    def ws_port(self):
        return self.ports.get("MQTT-WS")

    @property
    def wss_port(self):
        return self.ports.get("MQTT-WSS")

    def wait_log(self, pattern, timeout=5.0):
        """Waits until a log line matches the regex `pattern`; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {pattern!r} within {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def log(self):
        with self._lock:
            return "".join(self._lines)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(5)


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def make_broker(request, tmp_path):
    """Factory: `make_broker(sys_interval_secs=1, ...)` starts a broker with those `[mqtt]` keys;
    `extra_toml=` adds other tables to its config file."""
    brokers = request.node.__dict__.setdefault("_ferromq_brokers", [])

    def start(listeners=(), extra_toml=None, **config):
        b = Broker(tmp_path / f"broker{len(brokers)}", config, listeners=listeners, extra_toml=extra_toml)
        brokers.append(b)
        return b

    yield start
    for b in brokers:
        b.stop()


@pytest.fixture
def make_tls_broker(request, tmp_path):
    """Factory: `make_tls_broker(client_cert="required", certs=dir, extra=[...])` starts a broker
    with MQTTS and AMQPS on 127.0.0.1:0 serving `certs/server.pem` (default: the committed
    development certificates), trusting `ca.pem` and `crl.pem` for client certificates."""
    brokers = request.node.__dict__.setdefault("_ferromq_brokers", [])

    def start(client_cert="none", certs=CERTS, extra=(), log_level="info", listeners=(),
              extra_toml=None, **config):
        args = [
            "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
            "--tls-ca", str(certs / "ca.pem"), "--tls-crl", str(certs / "crl.pem"),
            "--tls-client-cert", client_cert, *extra,
        ]
        b = Broker(tmp_path / f"tlsbroker{len(brokers)}", config, tls_args=args, log_level=log_level,
                   listeners=listeners, extra_toml=extra_toml)
        brokers.append(b)
        return b

    yield start
    for b in brokers:
        b.stop()


@pytest.fixture
def broker(make_broker):
    """A fresh broker with the default configuration."""
    return make_broker()


@pytest.fixture
def clients():
    """Factory of paho clients (see pahoclient.Client); all are closed at teardown."""
    made = []

    def make(port_or_broker, client_id="", **kwargs):
        port = getattr(port_or_broker, "port", port_or_broker)
        c = Client(port, client_id, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, b in enumerate(getattr(item, "_ferromq_brokers", [])):
            report.sections.append((f"ferromq broker {i} log (port {b.port})", b.log()))


@pytest.fixture
def raw():
    """Factory of raw sockets (rawmqtt.RawClient) to a broker; all closed at teardown."""
    made = []

    def make(port_or_broker, timeout=5.0):
        c = RawClient(getattr(port_or_broker, "port", port_or_broker), timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
