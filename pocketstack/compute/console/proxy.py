"""The console proxy: ``/console/<type>?token=...`` on the cloud's port.

A websocket there is accepted only with a valid token of that console type
(else the handshake is refused with 403). The proxy then connects to where
the instance's driver said its console is and relays bytes both ways: a
``unix:<socket>`` path (the container driver's serial console) is a stream
socket on this host. Consoles with nothing behind them (the fake driver's,
every VNC/SPICE/MKS console until a QEMU driver exists) are closed at once
with a reason saying so (code 4004); so are consoles whose socket is not on
this host: a stopped guest, or one on another host (code 4003; the proxy
reaches only the consoles of its own host's agent).
It speaks binary frames and accepts text frames too; the ``binary``
subprotocol websockify clients ask for is granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pocketstack.common.http import run_blocking

LOG = logging.getLogger(__name__)
NO_CONSOLE = 4004
OTHER_HOST = 4003


def build(service) -> Starlette:
    tokens = service.remote_consoles.tokens

    def token_of(token: str, console_type: str) -> dict | None:
        found = tokens.validate(token)
        if found is None or found["console_type"] != console_type:
            return None
        return found

    async def console(ws: WebSocket):
        console_type = ws.path_params["console_type"]
        found = await run_blocking(token_of, ws.query_params.get("token", ""),
                                        console_type)
        if found is None:
            await ws.close(code=1008)  # before accept: the handshake gets 403
            return
        offered = ws.scope.get("subprotocols") or []
        await ws.accept(subprotocol="binary" if "binary" in offered else None)
        path = found["internal_access_path"] or ""
        if not path.startswith("unix:"):
            await ws.close(code=NO_CONSOLE, reason=(
                f"instance {found['instance_uuid']} has no {console_type} console to "
                f"connect to on its hypervisor (host {found['host']})")[:120])
            return
        sock = path[len("unix:"):]
        if not os.path.exists(sock):
            await ws.close(code=OTHER_HOST, reason=(
                f"console of {found['instance_uuid']} not here: guest stopped, or on "
                f"host {found['host']}")[:120])
            return
        try:
            reader, writer = await asyncio.open_unix_connection(sock)
        except OSError as exc:
            await ws.close(code=NO_CONSOLE, reason=f"console unavailable: {exc}"[:120])
            return
        await relay(ws, reader, writer)

    async def http_get(request):
        return JSONResponse({"error": {"code": 400, "message": (
            "This is a websocket endpoint: connect with a websocket client to "
            f"{request.url}")}}, status_code=400)

    return Starlette(routes=[WebSocketRoute("/{console_type}", console),
                             Route("/{console_type}", http_get)])


async def relay(ws: WebSocket, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    async def to_console():
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    async def from_console():
        while True:
            data = await reader.read(65536)
            if not data:
                return
            await ws.send_bytes(data)

    tasks = [asyncio.ensure_future(to_console()), asyncio.ensure_future(from_console())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                task.result()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await ws.close(code=1000, reason="console closed")
