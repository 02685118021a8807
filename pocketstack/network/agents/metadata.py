"""The metadata agent: answers the per-network proxies over a unix socket.

A proxy tells it the network and the caller's address; the agent finds the
port with that fixed IP on that network (so two projects using the same
CIDR and the same addresses each get their own instance), and forwards the
request to compute's metadata service with ``X-Instance-ID``, its HMAC-SHA256
signature under the shared secret (``X-Instance-ID-Signature``),
``X-Tenant-ID`` and ``X-Forwarded-For`` - Nova's proxied-request contract.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading

from pocketstack.network.agents.state import DesiredState

LOG = logging.getLogger(__name__)


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


class MetadataAgent:
    def __init__(self, state: DesiredState, socket_path: str, metadata_url, secret: str):
        """``metadata_url``: the URL, or a callable returning it (resolved per request:
        the cloud's port may be known only once it serves)."""
        self.state = state
        self.socket_path = socket_path
        self._url = metadata_url
        self.secret = secret
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server = None

    @property
    def metadata_url(self) -> str:
        url = self._url() if callable(self._url) else self._url
        return url.rstrip("/")

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.socket_path), exist_ok=True)
        self._thread = threading.Thread(target=self._run, daemon=True, name="metadata-agent")
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        import httpx  # heavy (~0.1 s); only a running metadata agent needs it

        self.client = httpx.AsyncClient(timeout=30)
        self._server = await asyncio.start_unix_server(self._handle, path=self.socket_path)
        os.chmod(self.socket_path, 0o600)

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close():
            self._server.close()
            await self.client.aclose()

        fut = asyncio.run_coroutine_threadsafe(close(), self._loop)
        try:
            fut.result(5)
        except Exception:  # noqa: BLE001
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def lookup(self, network_id: str, ip: str) -> dict | None:
        snap = self.state.snapshot()
        port = snap.port_by_ip(network_id, ip)
        if port is None or not str(port.get("device_owner", "")).startswith("compute:"):
            return None
        return port

    def lookup_router(self, router_id: str, ip: str) -> dict | None:
        """From a router's proxy: the instance with ``ip`` on one of the
        networks the router has an interface on."""
        from pocketstack.network.agents.state import ROUTER_OWNERS

        snap = self.state.snapshot()
        networks = {p["network_id"] for p in snap.ports.values()
                    if p.get("device_id") == router_id and p.get("device_owner") in ROUTER_OWNERS}
        for network_id in sorted(networks):
            port = self.lookup(network_id, ip)
            if port is not None:
                return port
        return None

    async def _handle(self, reader, writer) -> None:
        status, body, ctype = 500, b"", "text/plain"
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            data = await reader.readexactly(length) if length else b""
            network_id = headers.get("x-neutron-network-id", "")
            ip = headers.get("x-forwarded-for", "")
            router_id = headers.get("x-neutron-router-id")
            port = (self.lookup_router(router_id, ip) if router_id
                    else self.lookup(network_id, ip))
            if port is None:
                LOG.info("metadata: no instance at %s on network %s", ip, network_id)
                status, body = 404, b"Not Found"
            else:
                instance_id = port["device_id"]
                fwd = {"X-Instance-ID": instance_id,
                       "X-Instance-ID-Signature": sign(self.secret, instance_id),
                       "X-Tenant-ID": port.get("project_id") or port.get("tenant_id") or "",
                       "X-Forwarded-For": ip}
                if headers.get("content-type"):
                    fwd["Content-Type"] = headers["content-type"]
                resp = await self.client.request(method, self.metadata_url + target,
                                                 headers=fwd, content=data or None)
                status, body = resp.status_code, resp.content
                ctype = resp.headers.get("content-type", "text/plain")
        except Exception as exc:  # noqa: BLE001
            LOG.warning("metadata: request failed: %s", exc)
            status, body = 500, b"Internal Server Error"
        reason = {200: "OK", 404: "Not Found", 400: "Bad Request", 403: "Forbidden"}.get(
            status, "Status")
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                     + body)
        try:
            await writer.drain()
            writer.close()
        except OSError:
            pass
