"""Versioned RPC over a message bus: in-process by default, RabbitMQ when configured.

The model is Nova's (oslo.messaging's): a *topic* names a kind of service
(``conductor``, ``compute``), a *server* one instance of it (a host). A
client ``cast``s (fire and forget) or ``call``s (waits for the answer) a
method on ``topic`` or on ``topic.server``. Every message carries the
version of the interface its sender speaks; an endpoint accepts messages of
its own major version and any minor version up to its own, so an older
agent keeps working with a newer conductor (rolling upgrades).

    transport = get_transport(conf)            # [DEFAULT] transport_url
    server = RPCServer(transport, "conductor", None, [ConductorEndpoint()])
    server.start()
    client = RPCClient(transport, "conductor", version="1.2")
    client.call(ctx, "instance_update", instance_uuid=..., updates={...})

Messages are JSON documents: arguments must be JSON-serialisable. The
in-process bus serialises them too, so a component never shares objects
with another one, exactly as when they run apart.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

LOG = logging.getLogger(__name__)

ENVELOPE_VERSION = 1


class RPCError(Exception):
    """A remote method failed; ``kind`` is the remote exception's class name."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        self.message = message
        super().__init__(f"{kind}: {message}")


class UnsupportedVersion(RPCError):
    def __init__(self, message: str):
        super().__init__("UnsupportedVersion", message)


class MessagingTimeout(RPCError):
    def __init__(self, message: str):
        super().__init__("MessagingTimeout", message)


def parse_version(text: str) -> tuple[int, int]:
    major, _, minor = str(text).partition(".")
    return int(major), int(minor or 0)


def version_ok(sent: str, supported: str) -> bool:
    s, e = parse_version(sent), parse_version(supported)
    return s[0] == e[0] and s[1] <= e[1]


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes | str) -> dict:
    return json.loads(data)


class Dispatcher:
    """Finds the endpoint method a message names and checks its version."""

    def __init__(self, endpoints: list[Any]):
        self.endpoints = endpoints

    def dispatch(self, message: dict) -> Any:
        method = message["method"]
        version = message.get("version", "1.0")
        namespace = message.get("namespace")
        found_method = False
        for endpoint in self.endpoints:
            if getattr(endpoint, "namespace", None) != namespace:
                continue
            fn = getattr(endpoint, method, None)
            if fn is None or method.startswith("_"):
                continue
            found_method = True
            if version_ok(version, getattr(endpoint, "target_version", "1.0")):
                return fn(message.get("context") or {}, **message.get("args", {}),
                          **({"_version": version} if getattr(fn, "wants_version", False)
                             else {}))
        if found_method:
            raise UnsupportedVersion(f"Endpoint does not support RPC version {version}. "
                                     f"Attempted method: {method}")
        raise RPCError("NoSuchMethod", f"Endpoint does not support RPC method {method}")


def wants_version(fn: Callable) -> Callable:
    """Mark an endpoint method that takes the message's version as ``_version``."""
    fn.wants_version = True
    return fn


def run(dispatcher: Dispatcher, message: dict) -> tuple[Any, dict | None]:
    try:
        return dispatcher.dispatch(message), None
    except RPCError as exc:
        return None, {"kind": exc.kind, "message": exc.message}
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the caller
        if message.get("reply") is None:
            LOG.exception("RPC cast %s failed", message.get("method"))
        return None, {"kind": exc.__class__.__name__, "message": str(exc)}


class Transport:
    """A bus. ``listen`` delivers messages to a handler; ``send`` publishes one."""

    def listen(self, topic: str, server: str | None, handler: Callable[[dict], Any],
               workers: int) -> Callable[[], None]:
        raise NotImplementedError

    def send(self, topic: str, server: str | None, message: dict, *, wait: bool,
             timeout: float) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Listener:
    def __init__(self, handler: Callable[[dict], Any], workers: int, name: str):
        self.handler = handler
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=name)


class InProcessTransport(Transport):
    """Queues in this process. Listeners of one topic share its messages round-robin."""

    def __init__(self):
        self._listeners: dict[str, list[_Listener]] = {}
        self._rr: dict[str, int] = {}
        self._lock = threading.Lock()

    def listen(self, topic, server, handler, workers):
        names = [topic] + ([f"{topic}.{server}"] if server else [])
        listener = _Listener(handler, workers, f"rpc-{names[-1]}")
        with self._lock:
            for name in names:
                self._listeners.setdefault(name, []).append(listener)

        def stop():
            with self._lock:
                for name in names:
                    if listener in self._listeners.get(name, []):
                        self._listeners[name].remove(listener)
            listener.pool.shutdown(wait=False, cancel_futures=True)

        return stop

    def send(self, topic, server, message, *, wait, timeout):
        name = f"{topic}.{server}" if server else topic
        with self._lock:
            listeners = self._listeners.get(name)
            if not listeners:
                if wait:
                    raise MessagingTimeout(f"No listener on {name}")
                LOG.warning("message %s to %s dropped: nobody listens", message["method"], name)
                return None
            index = self._rr.get(name, 0)
            self._rr[name] = index + 1
            listener = listeners[index % len(listeners)]
        data = decode(encode(message))  # what crosses a real bus: JSON, nothing shared
        future: Future = listener.pool.submit(listener.handler, data)
        if not wait:
            return None
        try:
            result, error = future.result(timeout)
        except TimeoutError:
            raise MessagingTimeout(f"Timed out waiting for a reply to {message['method']}") \
                from None
        if error is not None:
            raise _remote_error(error)
        return decode(encode({"r": result}))["r"]


def _remote_error(error: dict) -> RPCError:
    if error["kind"] == "UnsupportedVersion":
        return UnsupportedVersion(error["message"])
    return RPCError(error["kind"], error["message"])


class KombuTransport(Transport):
    """RabbitMQ through kombu: a direct exchange, a queue per topic and per topic.server."""

    def __init__(self, url: str, exchange: str = "pocketstack"):
        import kombu

        self.kombu = kombu
        self.url = url
        self.prefix = exchange
        self.exchange = kombu.Exchange(exchange, type="direct", durable=False)
        self._local = threading.local()
        self._pending: dict[str, Future] = {}
        self._pending_lock = threading.Lock()
        self._reply_queue_name = f"reply_{uuid.uuid4().hex}"
        self._reply_ready = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reply_thread: threading.Thread | None = None

    def _name(self, name: str) -> str:
        """Queue names live under the exchange's name, so clouds sharing a broker
        (``[DEFAULT] control_exchange``) never see each other's messages."""
        return name if name.startswith("reply_") else f"{self.prefix}.{name}"

    # -- publishing --------------------------------------------------------

    def _producer(self):
        producer = getattr(self._local, "producer", None)
        if producer is None:
            conn = self.kombu.Connection(self.url)
            producer = self.kombu.Producer(conn.channel(), exchange=self.exchange)
            self._local.conn = conn
            self._local.producer = producer
        return producer

    def _publish(self, routing_key: str, body: bytes, **props) -> None:
        routing_key = self._name(routing_key)
        for attempt in range(2):
            try:
                self._producer().publish(body, routing_key=routing_key,
                                         content_type="application/json",
                                         content_encoding="utf-8", **props)
                return
            except OSError:
                self._local.producer = None
                if attempt:
                    raise

    def send(self, topic, server, message, *, wait, timeout):
        name = f"{topic}.{server}" if server else topic
        if not wait:
            self._publish(name, encode(message))
            return None
        self._ensure_reply_consumer()
        msg_id = uuid.uuid4().hex
        future: Future = Future()
        with self._pending_lock:
            self._pending[msg_id] = future
        message = {**message, "reply": self._reply_queue_name, "msg_id": msg_id}
        try:
            self._publish(name, encode(message))
            try:
                reply = future.result(timeout)
            except TimeoutError:
                raise MessagingTimeout(f"Timed out waiting for a reply to "
                                       f"{message['method']}") from None
        finally:
            with self._pending_lock:
                self._pending.pop(msg_id, None)
        if reply.get("error"):
            raise _remote_error(reply["error"])
        return reply.get("result")

    def _ensure_reply_consumer(self) -> None:
        if self._reply_thread is None:
            with self._pending_lock:
                if self._reply_thread is None:
                    self._reply_thread = threading.Thread(target=self._reply_loop, daemon=True,
                                                          name="rpc-replies")
                    self._reply_thread.start()
        self._reply_ready.wait(30)

    def _reply_loop(self) -> None:
        kombu = self.kombu
        while not self._stopping.is_set():
            try:
                with kombu.Connection(self.url) as conn:
                    q = kombu.Queue(self._reply_queue_name, exchange=self.exchange,
                                    routing_key=self._reply_queue_name, exclusive=True,
                                    auto_delete=True, durable=False)

                    def on_reply(body, msg):
                        msg.ack()
                        data = decode(body) if isinstance(body, (bytes, str)) else body
                        with self._pending_lock:
                            future = self._pending.get(data.get("msg_id"))
                        if future is not None and not future.done():
                            future.set_result(data)

                    with conn.Consumer(q, callbacks=[on_reply], accept=["json"]):
                        self._reply_ready.set()
                        while not self._stopping.is_set():
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                continue
            except OSError:
                LOG.warning("RabbitMQ connection lost (replies); reconnecting")
                self._stopping.wait(0.5)

    # -- consuming ---------------------------------------------------------

    def listen(self, topic, server, handler, workers):
        kombu = self.kombu
        names = [topic] + ([f"{topic}.{server}"] if server else [])
        pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                  thread_name_prefix=f"rpc-{names[-1]}")
        stop = threading.Event()
        ready = threading.Event()

        def work(data: dict) -> None:
            result, error = handler(data)
            if data.get("reply"):
                body = {"msg_id": data.get("msg_id"), "result": result, "error": error}
                self._publish(data["reply"], encode(body))

        def loop() -> None:
            while not stop.is_set() and not self._stopping.is_set():
                try:
                    with kombu.Connection(self.url) as conn:
                        queues = [kombu.Queue(self._name(n), exchange=self.exchange,
                                              routing_key=self._name(n), durable=False,
                                              auto_delete=True)
                                  for n in names]

                        def on_message(body, msg):
                            msg.ack()
                            data = decode(body) if isinstance(body, (bytes, str)) else body
                            pool.submit(work, data)

                        with conn.Consumer(queues, callbacks=[on_message], accept=["json"],
                                           prefetch_count=max(1, workers) * 4):
                            ready.set()
                            while not stop.is_set():
                                try:
                                    conn.drain_events(timeout=0.5)
                                except TimeoutError:
                                    continue
                except OSError:
                    LOG.warning("RabbitMQ connection lost (%s); reconnecting", names[-1])
                    stop.wait(0.5)

        thread = threading.Thread(target=loop, daemon=True, name=f"rpc-consume-{names[-1]}")
        thread.start()
        self._threads.append(thread)
        ready.wait(30)

        def stopper():
            stop.set()
            thread.join(5)
            pool.shutdown(wait=False, cancel_futures=True)

        return stopper

    def close(self) -> None:
        self._stopping.set()


_transports: dict[int, Transport] = {}
_transports_lock = threading.Lock()


def get_transport(conf, url: str | None = None) -> Transport:
    """The bus of this configuration (one per ConfigOpts, so clouds stay apart)."""
    url = url if url is not None else conf.transport_url
    key = id(conf)
    with _transports_lock:
        transport = _transports.get(key)
        if transport is None:
            if not url or url.startswith(("memory://", "fake://", "inprocess://")):
                transport = InProcessTransport()
            elif url.startswith(("rabbit://", "amqp://", "pyamqp://")):
                exchange = getattr(conf, "control_exchange", None) or "pocketstack"
                transport = KombuTransport("amqp://" + url.split("://", 1)[1], exchange)
            else:
                raise ValueError(f"Unsupported transport_url {url!r}")
            _transports[key] = transport
        return transport


def release_transport(conf) -> None:
    with _transports_lock:
        transport = _transports.pop(id(conf), None)
    if transport is not None:
        transport.close()


class RPCClient:
    """Sends messages of one interface version to a topic (or one server of it)."""

    def __init__(self, transport: Transport, topic: str, *, version: str = "1.0",
                 server: str | None = None, namespace: str | None = None,
                 timeout: float = 60.0):
        self.transport = transport
        self.topic = topic
        self.version = version
        self.server = server
        self.namespace = namespace
        self.timeout = timeout

    def prepare(self, *, server: str | None = None, version: str | None = None,
                timeout: float | None = None) -> RPCClient:
        return RPCClient(self.transport, self.topic, version=version or self.version,
                         server=server if server is not None else self.server,
                         namespace=self.namespace,
                         timeout=timeout if timeout is not None else self.timeout)

    def _message(self, context: dict | None, method: str, args: dict) -> dict:
        return {"envelope": ENVELOPE_VERSION, "method": method, "version": self.version,
                "namespace": self.namespace, "context": context or {}, "args": args}

    def cast(self, context: dict | None, method: str, **args) -> None:
        self.transport.send(self.topic, self.server, self._message(context, method, args),
                            wait=False, timeout=self.timeout)

    def call(self, context: dict | None, method: str, **args) -> Any:
        return self.transport.send(self.topic, self.server,
                                   self._message(context, method, args), wait=True,
                                   timeout=self.timeout)


class RPCServer:
    """Delivers the messages of ``topic`` (and ``topic.server``) to endpoints."""

    def __init__(self, transport: Transport, topic: str, server: str | None,
                 endpoints: list[Any], *, workers: int = 4):
        self.transport = transport
        self.topic = topic
        self.server = server
        self.dispatcher = Dispatcher(endpoints)
        self.workers = workers
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        if self._stop is None:
            self._stop = self.transport.listen(
                self.topic, self.server, lambda m: run(self.dispatcher, m), self.workers)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


__all__ = ["RPCClient", "RPCServer", "RPCError", "UnsupportedVersion", "MessagingTimeout",
           "get_transport", "release_transport", "wants_version"]
