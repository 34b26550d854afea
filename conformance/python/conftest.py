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
from pathlib import Path

import pytest

from pahoclient import Client
from rawmqtt import RawClient

REPO_ROOT = Path(__file__).resolve().parents[2]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LISTENING = re.compile(r"listening for MQTT on 127\.0\.0\.1:(\d+)")
_LISTENING_AMQP = re.compile(r"listening for AMQP on 127\.0\.0\.1:(\d+)")


def broker_binary():
    path = Path(os.environ.get("FERROMQ_BIN", "target/debug/ferromq"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


class Broker:
    """One ferromq process. `port` is its MQTT port, `amqp_port` its AMQP port; `log()` its output
    so far."""

    def __init__(self, workdir, config=None, start_timeout=15.0, extra_toml=None):
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
            "--log-level", "info",
        ]
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
        self.port = None
        self.amqp_port = None
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            text=True, errors="replace", bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._port_found.wait(start_timeout):
            self.stop()
            pytest.fail(f"broker did not report its MQTT and AMQP ports within {start_timeout}s:\n{self.log()}")

    def _read(self):
        for line in self.proc.stdout:
            line = _ANSI.sub("", line)
            with self._lock:
                self._lines.append(line)
            if self.port is None:
                m = _LISTENING.search(line)
                if m:
                    self.port = int(m.group(1))
            if self.amqp_port is None:
                m = _LISTENING_AMQP.search(line)
                if m:
                    self.amqp_port = int(m.group(1))
            if self.port is not None and self.amqp_port is not None:
                self._port_found.set()
        self._port_found.set()

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
    brokers = []
    request.node._ferromq_brokers = brokers

    def start(extra_toml=None, **config):
        b = Broker(tmp_path / f"broker{len(brokers)}", config, extra_toml=extra_toml)
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
