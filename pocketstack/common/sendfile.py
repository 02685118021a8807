"""A slice of a local file as a response body, copied by the kernel.

Sent the ordinary ASGI way, every block of a file is read into memory, then
copied again into the socket, a trip through the event loop each. When the
server is uvicorn's httptools protocol, ``FileSliceResponse`` hands the
headers to uvicorn as usual, then has the kernel copy the file into the
socket (``os.sendfile``) from a worker thread, and tells uvicorn the body is
done. Elsewhere (another server, a HEAD request) it falls back to reading
blocks.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from starlette.responses import Response

BLOCK = 4 * 1024 * 1024
STALLED = 300  # seconds a client may read nothing before it is given up on
UVICORN_CYCLE = "uvicorn.protocols.http.httptools_impl"

# A slow client holds a thread for its whole download: never the API's own threads.
SENDERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sendfile")


class FileSliceResponse(Response):
    def __init__(self, path: str, offset: int, length: int, *, status_code: int = 200,
                 headers: dict | None = None,
                 media_type: str = "application/octet-stream"):
        self.path, self.offset, self.length = path, offset, length
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers({**(headers or {}), "Content-Length": str(length)})

    async def __call__(self, scope, receive, send) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            cycle = getattr(receive, "__self__", None)
            if type(cycle).__module__ == UVICORN_CYCLE \
                    and cycle.transport.get_write_buffer_size() == 0:
                await self._send_by_kernel(cycle, send, fd)
            else:
                await self._send_blocks(send, fd)
        finally:
            os.close(fd)

    async def _send_by_kernel(self, cycle, send, fd: int) -> None:
        # A descriptor of our own: if the client goes away, uvicorn closes its own at
        # once, and the number may be given to the next connection while we still send.
        sock_fd = os.dup(cycle.transport.get_extra_info("socket").fileno())
        try:
            sent = await asyncio.get_running_loop().run_in_executor(
                SENDERS, send_file, sock_fd, fd, self.offset, self.length,
                cycle.transport.is_closing)
        finally:
            os.close(sock_fd)
        if sent < self.length:  # the client went away: end the connection with the response
            cycle.keep_alive = False
        # uvicorn counts the body bytes it writes itself against Content-Length.
        cycle.expected_content_length = 0
        await send({"type": "http.response.body", "body": b""})

    async def _send_blocks(self, send, fd: int) -> None:
        loop = asyncio.get_running_loop()
        position, end = self.offset, self.offset + self.length
        while position < end:
            block = await loop.run_in_executor(SENDERS, os.pread, fd,
                                               min(BLOCK, end - position), position)
            if not block:
                break
            position += len(block)
            await send({"type": "http.response.body", "body": block,
                        "more_body": position < end})
        if position < end:
            raise OSError(f"{self.path} is shorter than the {self.length} bytes announced")


def send_file(sock_fd: int, fd: int, offset: int, length: int,
              closed: Callable[[], bool] = lambda: False) -> int:
    """Copy ``length`` bytes of ``fd`` from ``offset`` into the (non-blocking) socket;
    the bytes sent, fewer if the client went away or stalled, or ``closed()`` says the
    server dropped the connection (shutting down)."""
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    sent = 0
    waited = 0
    while sent < length and not closed():
        try:
            n = os.sendfile(sock_fd, fd, offset + sent, length - sent)
        except BlockingIOError:
            if poller.poll(1000):
                waited = 0
            else:
                waited += 1
                if waited >= STALLED:
                    break
            continue
        except OSError:  # reset, broken pipe
            break
        if n == 0:
            break
        sent += n
    return sent
