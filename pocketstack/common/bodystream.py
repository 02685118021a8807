"""Big request bodies read straight from the socket into big buffers.

uvicorn hands a request body to the application in pieces of up to ~256 KiB,
each copied three times on the way (parser, connection buffer, message) and
each a trip through the event loop: about 0.6 CPU-second a GiB before the
application sees a byte. ``stream`` reads a body of known length the cheap
way when the server is uvicorn's httptools protocol: after the first piece it
puts its own ``asyncio.BufferedProtocol`` on the connection, and the kernel
copies the rest of the body straight into ``BLOCK``-sized buffers (about 0.3
CPU-second a GiB). uvicorn's HTTP parser never sees those bytes, so the
connection closes after the response (``Connection: close``); until then
whatever else the client sends is read and dropped.

Any other server, a chunked body or a small one: the ordinary ASGI stream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import aclosing

from starlette.requests import ClientDisconnect, Request

BLOCK = 1024 * 1024
QUEUED = 4  # full blocks held before reading pauses (the consumer is slower)
UVICORN_CYCLE = "uvicorn.protocols.http.httptools_impl"


async def stream(raw: Request, block: int = BLOCK) -> AsyncIterator[bytes]:
    """The request's body as bytes-like pieces; raises ``ClientDisconnect`` if the
    client goes away before the end."""
    message = await raw.receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    first = message.get("body", b"")
    if first:
        yield first
    if not message.get("more_body", False):
        return
    cycle = getattr(raw.receive, "__self__", None)
    declared = raw.headers.get("content-length", "")
    if type(cycle).__module__ == UVICORN_CYCLE and declared.isdigit() \
            and int(declared) > len(first):
        rest = _take_over(cycle, int(declared) - len(first), block)
    else:
        rest = _asgi_rest(raw)
    async with aclosing(rest):
        async for piece in rest:
            yield piece


async def _asgi_rest(raw: Request) -> AsyncIterator[bytes]:
    while True:
        message = await raw.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body", False):
            return


async def _take_over(cycle, remaining: int, block: int) -> AsyncIterator[bytes]:
    """The ``remaining`` bytes of the body, read by a protocol of our own."""
    transport = cycle.transport
    reader = _BodyReader(transport, transport.get_protocol(), remaining, block)
    cycle.keep_alive = False  # uvicorn's parser is out of step with the connection from now on
    transport.set_protocol(reader)
    cycle.flow.resume_reading()
    transport.resume_reading()
    try:
        while (piece := await reader.next()) is not None:
            yield piece
    finally:
        reader.drain()


class _BodyReader(asyncio.BufferedProtocol):
    """Reads the body into blocks, then discards whatever else comes until the
    connection closes (after the response): closing a socket with unread data
    would reset the connection, and the client could lose the response."""

    def __init__(self, transport, uvicorn_protocol, remaining: int, block: int):
        self.transport = transport
        self.uvicorn_protocol = uvicorn_protocol
        self.remaining = remaining
        self.block_size = block
        self.current = bytearray(min(block, remaining))
        self.filled = 0
        self.full: deque[bytearray] = deque()
        self.draining = False
        self.scratch = bytearray(65536)
        self.lost = False  # the client is gone
        self.paused = False
        self.waiter: asyncio.Future | None = None

    # -- the event loop's side ------------------------------------------------------

    def get_buffer(self, sizehint: int) -> bytearray | memoryview:
        if self.draining:
            return self.scratch
        return memoryview(self.current)[self.filled:]

    def buffer_updated(self, nbytes: int) -> None:
        if self.draining:
            return
        self.filled += nbytes
        self.remaining -= nbytes
        if self.filled == len(self.current):
            self.full.append(self.current)
            self.filled = 0
            if self.remaining == 0:
                self.draining = True
            else:
                self.current = bytearray(min(self.block_size, self.remaining))
                if len(self.full) >= QUEUED:
                    self.paused = True
                    self.transport.pause_reading()
            self._wake()

    def eof_received(self) -> bool:
        self.lost = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()
        self.uvicorn_protocol.connection_lost(exc)

    # Writing the response is still uvicorn's business.
    def pause_writing(self) -> None:
        self.uvicorn_protocol.pause_writing()

    def resume_writing(self) -> None:
        self.uvicorn_protocol.resume_writing()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- the consumer's side --------------------------------------------------------

    async def next(self) -> bytearray | None:
        """The next full block, None at the end of the body."""
        while not self.full:
            if self.remaining == 0:
                return None
            if self.lost:
                raise ClientDisconnect()
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        piece = self.full.popleft()
        if self.paused and not self.lost:
            self.paused = False
            self.transport.resume_reading()
        return piece

    def drain(self) -> None:
        """The consumer is done (or gave up): discard the rest."""
        self.draining = True
        self.full.clear()
        if self.paused and not self.lost:
            self.paused = False
            self.transport.resume_reading()
