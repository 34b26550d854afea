"""The six RabbitMQ tutorials for Python (pika), run against ferromq.

Each tutorial's programs (`send.py` / `receive.py`, `new_task.py` / `worker.py`, `emit_log*.py` /
`receive_logs*.py`, `rpc_server.py` / `rpc_client.py`) are written here as functions that make
the same pika calls with the same arguments as the tutorial: a `BlockingConnection`, the
tutorial's declares and bindings, `basic_consume` + `start_consuming` on the consuming side. The
only changes: the connection points at the test broker's AMQP port, `print` becomes a queue the
test reads, and a consuming program reports when it is ready (its `basic_consume` got
consume-ok) and stops on request (`stop_consuming` through `add_callback_threadsafe`, the one
thread-safe BlockingConnection call) instead of Ctrl+C.

Consuming programs run in threads, each with its own connection. Waits are bounded: results are
read with `queue.get(timeout=...)`, the RPC client's loop has a deadline. "A consumer received
nothing else" is checked without sleeping: messages to one queue arrive in publish order, so the
last message a consumer expects is a barrier for anything wrongly routed to it before.
"""

import queue
import threading
import time
import uuid

import pika
import pytest

TIMEOUT = 5.0


def parameters(broker):
    # The tutorial's `pika.ConnectionParameters(host='localhost')`, on the test broker's port.
    return pika.ConnectionParameters(host="127.0.0.1", port=broker.amqp_port)


class Program(threading.Thread):
    """Runs a tutorial's consuming program in a thread.

    `main(connection, channel, out)` is the program after its `connection.channel()` up to (not
    including) `start_consuming()`; its callback puts what the tutorial prints into `out`.
    """

    def __init__(self, broker, main, out=None):
        super().__init__(daemon=True)
        self.broker, self.main = broker, main
        self.out = queue.Queue() if out is None else out
        self.ready = threading.Event()
        self.error = None
        self.connection = self.channel = None

    def run(self):
        try:
            self.connection = pika.BlockingConnection(parameters(self.broker))
            self.channel = self.connection.channel()
            self.main(self.connection, self.channel, self.out)
            self.ready.set()
            self.channel.start_consuming()
            self.connection.close()
        except BaseException as e:  # reported by start() / stop()
            self.error = e
            self.ready.set()

    def start(self):
        super().start()
        assert self.ready.wait(TIMEOUT), "consumer program did not get consume-ok"
        assert self.error is None, f"consumer program failed: {self.error!r}"
        return self

    def stop(self):
        if self.is_alive() and self.connection is not None and self.connection.is_open:
            self.connection.add_callback_threadsafe(self.channel.stop_consuming)
        self.join(TIMEOUT)
        assert not self.is_alive(), "consumer program did not stop"
        assert self.error is None, f"consumer program failed: {self.error!r}"

    def take(self, n, timeout=TIMEOUT):
        """The next `n` things the program printed; fails if they do not come within `timeout`."""
        return take(self.out, n, timeout, self)


def take(out, n, timeout=TIMEOUT, program=None):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        try:
            got.append(out.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            error = program.error if program else None
            pytest.fail(f"expected {n} messages within {timeout}s, got {got}; program error: {error!r}")
    return got


# --- 1 "Hello World!" -----------------------------------------------------------------------


def send(broker):
    connection = pika.BlockingConnection(parameters(broker))
    channel = connection.channel()
    channel.queue_declare(queue="hello")
    channel.basic_publish(exchange="", routing_key="hello", body="Hello World!")
    connection.close()


def receive(connection, channel, out):
    channel.queue_declare(queue="hello")

    def callback(ch, method, properties, body):
        out.put(body)

    channel.basic_consume(queue="hello", auto_ack=True, on_message_callback=callback)


def test_tutorial_1_hello_world(broker):
    # Sent before any receiver runs: the message waits in the queue `send` declared.
    send(broker)
    receiver = Program(broker, receive).start()
    assert receiver.take(1) == [b"Hello World!"]
    # And with the receiver already consuming.
    send(broker)
    assert receiver.take(1) == [b"Hello World!"]
    receiver.stop()
    # auto_ack: nothing is left in the queue.
    connection = pika.BlockingConnection(parameters(broker))
    ok = connection.channel().queue_declare(queue="hello", passive=True).method
    assert (ok.message_count, ok.consumer_count) == (0, 0)
    connection.close()


# --- 2 "Work queues" ------------------------------------------------------------------------

# The tutorial's worker sleeps one second per dot in the body; here one dot is 0.1 s.
SECONDS_PER_DOT = 0.1


def new_task(broker, message):
    connection = pika.BlockingConnection(parameters(broker))
    channel = connection.channel()
    channel.queue_declare(queue="task_queue", durable=True)
    channel.basic_publish(
        exchange="",
        routing_key="task_queue",
        body=message,
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
    )
    connection.close()


def worker(name):
    def main(connection, channel, out):
        channel.queue_declare(queue="task_queue", durable=True)

        def callback(ch, method, properties, body):
            out.put((name, body, properties.delivery_mode, method.redelivered))
            time.sleep(body.count(b".") * SECONDS_PER_DOT)  # the tutorial's simulated work
            ch.basic_ack(delivery_tag=method.delivery_tag)

        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(queue="task_queue", on_message_callback=callback)

    return main


def test_tutorial_2_work_queues_fair_dispatch(broker):
    # Two workers with prefetch_count=1 and one long task among short ones: the worker busy
    # with the long task gets nothing else until it acks, so the other one does all the short
    # tasks (plain round-robin would queue every other short task behind the long one).
    out = queue.Queue()
    workers = [Program(broker, worker(name), out).start() for name in ("w1", "w2")]
    heavy = "Heavy task" + "." * 15  # 1.5 s
    light = [f"Light task {i}." for i in range(1, 6)]  # 0.1 s each
    for message in [heavy] + light:
        new_task(broker, message)
    done = {"w1": [], "w2": []}
    for name, body, delivery_mode, redelivered in take(out, 6):
        assert (delivery_mode, redelivered) == (2, False), "persistent delivery_mode not kept"
        done[name].append(body.decode())
    for w in workers:
        w.stop()
    heavy_worker, light_worker = ("w1", "w2") if heavy in done["w1"] else ("w2", "w1")
    assert done[heavy_worker] == [heavy], done
    assert done[light_worker] == light, done


def test_tutorial_2_unacked_task_is_redelivered_when_a_worker_dies(broker):
    # "If a worker dies, we'd like the task to be delivered to another worker": a worker takes
    # the task with a manual ack pending and its connection goes away; a tutorial worker then
    # gets the same task, flagged redelivered.
    new_task(broker, "Task from a dying worker..")
    dying = pika.BlockingConnection(parameters(broker))
    channel = dying.channel()
    channel.basic_qos(prefetch_count=1)
    for method, _properties, body in channel.consume("task_queue", inactivity_timeout=TIMEOUT):
        assert method is not None, "the task was not delivered to the first worker"
        assert body == b"Task from a dying worker.."
        break
    dying.close()  # no ack
    survivor = Program(broker, worker("survivor")).start()
    assert survivor.take(1) == [("survivor", b"Task from a dying worker..", 2, True)]
    survivor.stop()


def test_tutorial_2_redeclaring_hello_as_durable_is_an_error(broker):
    # "RabbitMQ doesn't allow you to redefine an existing queue with different parameters and
    # will return an error": `hello` from tutorial 1 is not durable.
    send(broker)
    connection = pika.BlockingConnection(parameters(broker))
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        channel.queue_declare(queue="hello", durable=True)
    assert e.value.reply_code == 406 and "PRECONDITION_FAILED" in e.value.reply_text
    channel = connection.channel()
    channel.queue_declare(queue="task_queue", durable=True)
    assert channel.queue_declare(queue="task_queue", durable=True).method.queue == "task_queue"
    connection.close()


# --- 3 "Publish/Subscribe" ------------------------------------------------------------------


def emit_log(broker, message):
    connection = pika.BlockingConnection(parameters(broker))
    channel = connection.channel()
    channel.exchange_declare(exchange="logs", exchange_type="fanout")
    channel.basic_publish(exchange="logs", routing_key="", body=message)
    connection.close()


def receive_logs(connection, channel, out):
    channel.exchange_declare(exchange="logs", exchange_type="fanout")
    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue
    channel.queue_bind(exchange="logs", queue=queue_name)

    def callback(ch, method, properties, body):
        out.put((queue_name, body))

    channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)


def test_tutorial_3_publish_subscribe(broker):
    # With no queue bound to `logs` the message is lost, as the tutorial says.
    emit_log(broker, "info: nobody is listening")
    receivers = [Program(broker, receive_logs).start() for _ in range(2)]
    emit_log(broker, "info: Hello World!")
    got = [r.take(1)[0] for r in receivers]
    names = [name for name, _body in got]
    # Each receiver has its own server-named queue and gets the message first (the lost one
    # would have come before it).
    assert all(name.startswith("amq.gen-") for name in names), names
    assert names[0] != names[1]
    assert [body for _name, body in got] == [b"info: Hello World!"] * 2
    for r in receivers:
        r.stop()


# --- 4 "Routing" ----------------------------------------------------------------------------


def emit_log_direct(broker, severity, message):
    connection = pika.BlockingConnection(parameters(broker))
    channel = connection.channel()
    channel.exchange_declare(exchange="direct_logs", exchange_type="direct")
    channel.basic_publish(exchange="direct_logs", routing_key=severity, body=message)
    connection.close()


def receive_logs_direct(*severities):
    def main(connection, channel, out):
        channel.exchange_declare(exchange="direct_logs", exchange_type="direct")
        result = channel.queue_declare(queue="", exclusive=True)
        queue_name = result.method.queue
        for severity in severities:
            channel.queue_bind(exchange="direct_logs", queue=queue_name, routing_key=severity)

        def callback(ch, method, properties, body):
            out.put(f"{method.routing_key}:{body.decode()}")

        channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

    return main


def test_tutorial_4_routing(broker):
    # The tutorial's two receivers: one saves warnings and errors, one shows everything.
    to_file = Program(broker, receive_logs_direct("warning", "error")).start()
    to_screen = Program(broker, receive_logs_direct("info", "warning", "error")).start()
    sent = [
        ("info", "Run. Run. Or it will explode."),
        ("debug", "nobody listens to debug"),
        ("warning", "Disk almost full"),
        ("error", "Run. Run. Or it will explode."),
    ]
    for severity, message in sent:
        emit_log_direct(broker, severity, message)
    # The error, sent last, reaches both: anything misrouted would have come before it.
    assert to_file.take(2) == ["warning:Disk almost full", "error:Run. Run. Or it will explode."]
    assert to_screen.take(3) == [
        "info:Run. Run. Or it will explode.",
        "warning:Disk almost full",
        "error:Run. Run. Or it will explode.",
    ]
    for r in (to_file, to_screen):
        r.stop()


# --- 5 "Topics" -----------------------------------------------------------------------------


def emit_log_topic(broker, routing_key, message):
    connection = pika.BlockingConnection(parameters(broker))
    channel = connection.channel()
    channel.exchange_declare(exchange="topic_logs", exchange_type="topic")
    channel.basic_publish(exchange="topic_logs", routing_key=routing_key, body=message)
    connection.close()


def receive_logs_topic(*binding_keys):
    def main(connection, channel, out):
        channel.exchange_declare(exchange="topic_logs", exchange_type="topic")
        result = channel.queue_declare("", exclusive=True)
        queue_name = result.method.queue
        for binding_key in binding_keys:
            channel.queue_bind(exchange="topic_logs", queue=queue_name, routing_key=binding_key)

        def callback(ch, method, properties, body):
            out.put(method.routing_key)

        channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

    return main


def test_tutorial_5_topics(broker):
    # The tutorial's receivers: "#", "kern.*", "*.critical", and "kern.*" "*.critical".
    everything = Program(broker, receive_logs_topic("#")).start()
    kern = Program(broker, receive_logs_topic("kern.*")).start()
    critical = Program(broker, receive_logs_topic("*.critical")).start()
    both = Program(broker, receive_logs_topic("kern.*", "*.critical")).start()
    keys = [
        "kern.critical",  # all four; once only for `both` although two of its bindings match
        "kern.info",
        "cron.critical",
        "cron.warning",
        "kern",  # `*` needs exactly one word: only "#"
        "kern.critical.disk",  # three words: only "#"
        "",  # the empty key matches "#"
        "kern.critical",  # last, to all four: the barrier
    ]
    for key in keys:
        emit_log_topic(broker, key, "A critical kernel error")
    assert everything.take(len(keys)) == keys
    assert kern.take(3) == ["kern.critical", "kern.info", "kern.critical"]
    assert critical.take(3) == ["kern.critical", "cron.critical", "kern.critical"]
    assert both.take(4) == ["kern.critical", "kern.info", "cron.critical", "kern.critical"]
    for r in (everything, kern, critical, both):
        r.stop()


# --- 6 "RPC" --------------------------------------------------------------------------------


def fib(n):
    if n == 0:
        return 0
    elif n == 1:
        return 1
    else:
        return fib(n - 1) + fib(n - 2)


def rpc_server(connection, channel, out):
    channel.queue_declare(queue="rpc_queue")

    def on_request(ch, method, props, body):
        n = int(body)
        response = fib(n)
        out.put((n, props.correlation_id))
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(response),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)

    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue="rpc_queue", on_message_callback=on_request)


class FibonacciRpcClient:
    """The tutorial's client; `call` waits with a deadline instead of `time_limit=None`, and
    every response seen is recorded."""

    def __init__(self, broker):
        self.connection = pika.BlockingConnection(parameters(broker))
        self.channel = self.connection.channel()
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True
        )
        self.response = None
        self.corr_id = None
        self.seen = []

    def on_response(self, ch, method, props, body):
        self.seen.append((props.correlation_id, body))
        if self.corr_id == props.correlation_id:
            self.response = body

    def call(self, n):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key="rpc_queue",
            properties=pika.BasicProperties(reply_to=self.callback_queue, correlation_id=self.corr_id),
            body=str(n),
        )
        deadline = time.monotonic() + TIMEOUT
        while self.response is None:
            left = deadline - time.monotonic()
            assert left > 0, f"no response to fib({n}) within {TIMEOUT}s"
            self.connection.process_data_events(time_limit=min(0.1, left))
        return int(self.response)


def test_tutorial_6_rpc(broker):
    server = Program(broker, rpc_server).start()
    clients = [FibonacciRpcClient(broker) for _ in range(2)]
    assert all(c.callback_queue.startswith("amq.gen-") for c in clients)
    assert clients[0].callback_queue != clients[1].callback_queue
    calls = {0: [], 1: []}
    for i, n in enumerate([0, 1, 2, 10, 20, 7, 15, 25]):
        client = clients[i % 2]
        assert client.call(n) == fib(n), f"fib({n})"
        calls[i % 2].append((client.corr_id, str(fib(n)).encode()))
    # Each client got exactly its own responses, each with the correlation id it sent.
    for i, client in enumerate(clients):
        assert client.seen == calls[i]
    served = server.take(8)
    assert [corr_id for _n, corr_id in served] == [
        corr_id for pair in zip(calls[0], calls[1]) for corr_id, _ in pair
    ]
    # A response with a correlation id the client did not ask for is ignored by the tutorial's
    # client, which keeps waiting for its own.
    stray = pika.BlockingConnection(parameters(broker))
    stray.channel().basic_publish(
        exchange="", routing_key=clients[0].callback_queue,
        properties=pika.BasicProperties(correlation_id="not-mine"), body="-1",
    )
    stray.close()
    assert clients[0].call(12) == 144
    assert clients[0].seen[-2:] == [("not-mine", b"-1"), (clients[0].corr_id, b"144")]
    for c in clients:
        c.connection.close()
    server.stop()
