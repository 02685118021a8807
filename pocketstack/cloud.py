"""The all-in-one cloud: every enabled service behind one HTTP port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import os
import socket
import threading

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.websockets import WebSocketClose

from pocketstack import config
from pocketstack.common.http import RequestIdMiddleware
from pocketstack.common.service import Service

LOG = logging.getLogger(__name__)

# Service name -> "module:Class". Order matters: identity first (it bootstraps the
# catalog of the others), then whatever a later service calls at start.
SERVICES = {
    "identity": "pocketstack.identity.service:IdentityService",
    "objectstore": "pocketstack.objectstore.service:ObjectStoreService",
    "image": "pocketstack.image.service:ImageService",
    "network": "pocketstack.network.service:NetworkService",
    "volume": "pocketstack.volume.service:VolumeService",
    "compute": "pocketstack.compute.service:ComputeService",
}

# How long stopping waits for a service still starting (its database not answering).
STARTING_SERVICE_WAIT = 60


def _service_class(name: str) -> type[Service] | None:
    module_name, _, class_name = SERVICES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None  # not built into this version of the package
        raise
    return getattr(module, class_name)


class Cloud:
    def __init__(self, conf):
        self.conf = conf
        self.public_url = config.public_url(conf)
        os.makedirs(conf.state_path, exist_ok=True)
        self.services: dict[str, Service] = {}
        for name in SERVICES:
            if name not in conf.enabled_services:
                continue
            cls = _service_class(name)
            if cls is not None:
                self.services[name] = cls(self)
        # Each service's apps by prefix, once it has started (or why it did not).
        self._started = {name: concurrent.futures.Future() for name in self.services}
        self._starter: threading.Thread | None = None
        self._on_failure = None
        self._stopping = False
        self.start_error: BaseException | None = None
        self._app = None

    def __getattr__(self, name: str):
        services = self.__dict__.get("services", {})
        if name in services:
            return services[name]
        raise AttributeError(name)

    def start(self) -> None:
        """Start every service in order, then the data plane."""
        for service in self.services.values():
            self._start_service(service)
        self._start_data_plane()

    def start_in_background(self, on_started=None, on_failure=None) -> None:
        """Start the first service (identity) now and the others in a thread, in
        order: the API can serve identity at once, and holds a request to a service
        until that service has started. ``on_started`` runs once all have started;
        ``on_failure`` if one fails (its error is then ``start_error``)."""
        first, *rest = self.services.values()
        self._start_service(first)
        self._on_failure = on_failure

        def run():
            try:
                for service in rest:
                    if self._stopping:
                        return
                    self._start_service(service)
                self._start_data_plane()
                self._load_policies()
                if on_started is not None:
                    on_started()
            except BaseException as error:
                self._failed(error)

        self._starter = threading.Thread(target=run, daemon=True, name="pocketstack-start")
        self._starter.start()

    def _failed(self, error: BaseException) -> None:
        if self.start_error is not None:
            return  # already reported (a failed start fails the services after it too)
        self.start_error = error
        LOG.error("the cloud failed to start", exc_info=error)
        for future in self._started.values():
            if not future.done():
                future.set_exception(error)
        if self._on_failure is not None:
            self._on_failure()

    def _start_service(self, service: Service) -> None:
        try:
            service.start()
            apps = {service.prefix: service.app()}
            apps.update((prefix, service.extra_app(prefix)) for prefix in service.extra_prefixes)
        except BaseException as error:
            self._started[service.name].set_exception(error)
            raise
        self._started[service.name].set_result(apps)

    def _load_policies(self) -> None:
        """What the first requests would otherwise wait for: oslo.policy and the rules."""
        for service in self.services.values():
            policy = getattr(service, "policy", None)
            if policy is not None:
                policy.load()

    def _start_data_plane(self) -> None:
        # the data plane: image fetcher for guests, this host's container agent
        from pocketstack.guest import integration

        integration.cloud_started(self)

    def stop(self) -> None:
        self._stopping = True
        if self._starter is not None:
            self._starter.join(STARTING_SERVICE_WAIT)
        try:
            from pocketstack.guest import integration

            integration.cloud_stopping(self)
        except Exception:
            LOG.exception("stopping the data plane")
        for service in reversed(list(self.services.values())):
            try:
                service.stop()
            except Exception:
                LOG.exception("stopping %s", service.name)

    def app(self):
        if self._app is None:
            gates = {name: [ServiceGate(svc.prefix)]
                     + [ServiceGate(prefix) for prefix in svc.extra_prefixes]
                     for name, svc in self.services.items()}
            routes = [Route("/", self._root)]
            routes += [Mount(gate.prefix, app=gate) for name in gates for gate in gates[name]]

            @contextlib.asynccontextmanager
            async def lifespan(_app):
                waiting = []
                for svc in self.services.values():
                    opening = self._open(svc, gates[svc.name])
                    if self._started[svc.name].done():
                        await opening  # started before the server: open before serving
                        if self.start_error is not None:
                            raise self.start_error
                    else:
                        waiting.append(asyncio.create_task(opening))
                yield
                for task in waiting:
                    task.cancel()

            self._app = RequestIdMiddleware(Starlette(routes=routes, lifespan=lifespan))
        return self._app

    async def _open(self, svc: Service, gates: list[ServiceGate]) -> None:
        """Once ``svc`` has started, run its loop-side start and let requests in (to a
        503 if it failed: `up` is then stopping)."""
        try:
            apps = await asyncio.wrap_future(self._started[svc.name])
            await svc.started()
        except Exception as error:
            self._failed(error)
        else:
            for gate in gates:
                gate.app = apps[gate.prefix]
        finally:
            for gate in gates:
                gate.opened.set()

    async def _root(self, request):
        return JSONResponse({"services": [
            {"name": s.name, "type": s.service_type, "url": s.endpoint_url()}
            for s in self.services.values()]})


class ServiceGate:
    """Mounted at a service's prefix: a request waits until the service has started,
    then gets its answer (a 503 if the service failed to start)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.app = None
        self.opened = asyncio.Event()

    async def __call__(self, scope, receive, send):
        if self.app is None:
            await self.opened.wait()
        if self.app is None and scope["type"] == "websocket":
            await WebSocketClose(code=1013, reason=f"{self.prefix} failed to start")(
                scope, receive, send)
            return
        if self.app is None:
            response = JSONResponse({"error": {
                "code": 503, "title": "Service Unavailable",
                "message": f"The service at {self.prefix} failed to start."}}, status_code=503)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def bind_socket(conf) -> socket.socket:
    """Bind the API socket (port 0 picks a free one and updates the config)."""
    host = conf.bind_host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: a response's head and body go out at once
    # instead of the body waiting ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, conf.bind_port))
    sock.listen(2048)
    sock.set_inheritable(True)
    if conf.bind_port == 0:
        conf.set_override("bind_port", sock.getsockname()[1])
    return sock


class Server:
    """Runs a cloud's API with uvicorn, in this thread (``run``) or another (``start``)."""

    def __init__(self, cloud: Cloud, sock: socket.socket, *, access_log: bool = False):
        import uvicorn

        self.cloud = cloud
        self.sock = sock
        cfg = uvicorn.Config(cloud.app(), loop="uvloop", http="httptools", lifespan="on",
                             log_level="warning", access_log=access_log,
                             timeout_keep_alive=75, backlog=2048)
        self.server = uvicorn.Server(cfg)
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run_in_thread, daemon=True,
                                       name="pocketstack-api")
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the API server failed to start")
            self.thread.join(0.002)

    def _run_in_thread(self) -> None:
        self.server.config.install_signal_handlers = False  # uvicorn < 0.29 compatibility
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        self.sock.close()
