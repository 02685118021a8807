"""Big HTTP bodies moved between the socket and files in large buffers, off the event loop.

uvicorn (httptools) hands a request body to the application 64 KiB at a time, each
piece copied three times and passed through the event loop, and sends a response
body the same way: for a body of many megabytes that costs more CPU than storing it.

``pump`` moves a body through page-aligned buffers of a few MiB: a *source* fills a
buffer, then each of the caller's *steps* (hash it, write it) runs on it, every step
on its own thread, so hashing one buffer overlaps receiving the next and writing the
one before. Sources:

* ``RequestBody``: an HTTP request's body. With a Content-Length of more than a
  buffer, on uvicorn's httptools protocol over plain TCP, it takes the socket over
  and receives straight into the buffers on a worker thread. uvicorn's HTTP parser
  never sees those bytes, so the connection closes after the response; until then
  whatever else the client sends (a pipelined request) is read and dropped, as
  closing a socket with unread input resets it under the response. Otherwise it
  copies the ASGI messages in. Small bodies are also async-iterable, the ordinary way.
* ``ChunkSource``: any async iterator of bytes.

``FileResponse`` sends a byte range of an open file: with sendfile(2) on the same
kind of connection (the kernel moves the bytes, no copy through Python), otherwise in
big blocks read on worker threads. Its sender works on a duplicate of the socket's
descriptor and stops when the server drops the connection: uvicorn closes its own
descriptor as soon as a client goes, and the number is soon another connection's.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import queue
import select
import socket
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from starlette.requests import ClientDisconnect
from starlette.requests import Request as RawRequest
from starlette.responses import Response

from pocketstack.common import errors

BUFFER_SIZE = 4 * 1024 * 1024
BUFFERS = 6  # in flight per body: a slow step (a write into fresh pages) does not stall the rest
READ_AHEAD = 4  # buffers of a file asked of the disk ahead of sendfile, with drop_cache
ALIGN = 4096  # buffers are mmap'd: page-aligned, as O_DIRECT writes need
TIMEOUT = 60.0  # seconds a client may stall mid-body (Swift's client_timeout)
# Smaller bodies keep the connection alive: they come through ASGI.
TAKEOVER_MIN = BUFFER_SIZE

Step = Callable[[memoryview], None]

# A slow client holds a thread for as long as its body takes (up to TIMEOUT per
# stall): threads of their own, so it never holds up work on the default executor.
SOCKET_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bodystream-socket")


# -- the connection under a request -------------------------------------------

# What ``Connection`` reads or sets on uvicorn's request cycle.
CYCLE_ATTRIBUTES = ("flow", "body", "keep_alive", "transport", "expected_content_length",
                    "disconnected")

class Connection:
    """The plain TCP socket under one request on uvicorn's httptools protocol,
    borrowed for one body. Knows the few attributes of uvicorn's request cycle it
    must keep consistent; ``of`` returns None for anything else."""

    def __init__(self, cycle, fd: int):
        self.cycle = cycle
        # A duplicate descriptor: if the peer goes and uvicorn closes its own, ours
        # still names this socket (never a file opened meanwhile under the number).
        self.sock = socket.socket(fileno=os.dup(fd))
        self.sock.settimeout(TIMEOUT)

    @classmethod
    def of(cls, receive) -> Connection | None:
        try:
            from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
        except ImportError:  # pragma: no cover
            return None
        cycle = getattr(receive, "__self__", None)
        if type(cycle) is not RequestResponseCycle or cycle.disconnected:
            return None
        if not all(hasattr(cycle, name) for name in CYCLE_ATTRIBUTES):
            return None  # a uvicorn whose request cycle changed: the ordinary path
        transport = cycle.transport
        if transport.is_closing() or transport.get_extra_info("sslcontext") is not None:
            return None
        sock = transport.get_extra_info("socket")
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        return cls(cycle, sock.fileno())

    def close(self) -> None:
        self.sock.close()

    def closing(self) -> bool:
        """The server dropped the connection (the client went, or a shutdown)."""
        return self.cycle.transport.is_closing()

    # request bodies

    def take_body(self) -> bytes:
        """Stop uvicorn reading this connection; returns body bytes it already holds."""
        cycle = self.cycle
        cycle.flow.pause_reading()
        cycle.keep_alive = False  # its parser is left mid-body: close after the response
        held = bytes(cycle.body)
        cycle.body.clear()
        return held

    def recv_into(self, view: memoryview) -> int:
        """Fill ``view`` from the socket (on a worker thread)."""
        got = 0
        try:
            while got < len(view):
                n = self.sock.recv_into(view[got:])
                if not n:
                    raise ClientDisconnect()
                got += n
        except TimeoutError:
            raise errors.for_status(408, "Timed out reading the request body.") from None
        except OSError:
            raise ClientDisconnect() from None
        return got

    def drop_rest(self) -> None:
        """Once the body is read (or given up on): read and drop whatever else comes
        until the connection closes after the response."""
        transport = self.cycle.transport
        if transport.is_closing():
            return
        transport.set_protocol(_DropInput(transport.get_protocol()))
        self.cycle.flow.resume_reading()

    # response bodies

    async def drained(self) -> bool:
        """Wait until what uvicorn wrote (the response head) has left its buffer."""
        transport = self.cycle.transport
        while transport.get_write_buffer_size():
            if transport.is_closing():
                return False
            await asyncio.sleep(0.001)
        return not transport.is_closing()

    def sendfile(self, fd: int, offset: int, count: int, drop_cache: bool) -> int:
        """Send ``count`` bytes of ``fd`` from ``offset`` (on a worker thread); returns
        how many went out. ``drop_cache`` evicts what was sent from the page cache
        (big objects, as Swift does), keeping the next few buffers read ahead so the
        disk stays busy while one goes out."""
        sent, step = 0, BUFFER_SIZE
        end = offset + count
        try:
            while sent < count:
                pos = offset + sent
                n = min(step, count - sent)
                if drop_cache and pos + n < end:
                    os.posix_fadvise(fd, pos + n, min(READ_AHEAD * step, end - pos - n),
                                     os.POSIX_FADV_WILLNEED)
                done = self._sendfile(fd, pos, n)
                if drop_cache:
                    os.posix_fadvise(fd, pos, done, os.POSIX_FADV_DONTNEED)
                sent += done
                if done < n:
                    break
        except (OSError, TimeoutError):
            pass
        return sent

    def _sendfile(self, fd: int, pos: int, count: int) -> int:
        out = self.sock.fileno()
        poll = select.poll()
        poll.register(out, select.POLLOUT)
        sent = stalled = 0
        while sent < count and not self.closing():
            try:
                n = os.sendfile(out, fd, pos + sent, count - sent)
            except BlockingIOError:
                if poll.poll(1000):  # a second at a time, to notice a dropped connection
                    stalled = 0
                else:
                    stalled += 1
                    if stalled >= TIMEOUT:
                        raise TimeoutError() from None
                continue
            if not n:  # the file ended early
                break
            sent += n
        return sent

    def finished_body(self, sent: int) -> None:
        """Tell uvicorn the body went out (it checks against Content-Length)."""
        self.cycle.expected_content_length -= sent

    async def abort(self) -> None:
        """The peer went away mid-body: drop the connection as uvicorn would."""
        self.cycle.transport.abort()
        await asyncio.sleep(0)  # let connection_lost mark the request disconnected


class _DropInput(asyncio.Protocol):
    """Stands in for uvicorn's protocol after a taken-over body: drops input, passes
    everything else on (the response is still uvicorn's to write)."""

    def __init__(self, protocol: asyncio.Protocol):
        self.protocol = protocol

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self):
        return self.protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()


# -- sources ------------------------------------------------------------------

class ChunkSource:
    """Fills buffers from an async iterator of bytes (on the event loop)."""

    def __init__(self, chunks: AsyncIterator[bytes]):
        self.chunks = chunks.__aiter__()
        self.pending = memoryview(b"")
        self.ended = False

    async def next_chunk(self) -> bytes | None:
        try:
            return await self.chunks.__anext__()
        except StopAsyncIteration:
            return None

    async def fill(self, buf: memoryview) -> int:
        """Fill ``buf``; less than full only at the end of the body."""
        n = 0
        while n < len(buf):
            if not self.pending:
                if self.ended:
                    break
                chunk = await self.next_chunk()
                if chunk is None:
                    self.ended = True
                    break
                self.pending = memoryview(chunk)
            k = min(len(self.pending), len(buf) - n)
            buf[n:n + k] = self.pending[:k]
            self.pending = self.pending[k:]
            n += k
        return n

    def close(self) -> None:
        pass


class RequestBody(ChunkSource):
    """An HTTP request's body; ``length`` is its Content-Length (None if chunked)."""

    def __init__(self, request: RawRequest, length: int | None):
        self.request = request
        self.length = length
        self.left = length  # bytes still to come from the socket, once taken over
        self.conn: Connection | None = None
        self.taken = False
        super().__init__(self._messages())

    def __aiter__(self):
        return self.request.stream()

    async def _messages(self):
        receive = self.request.receive
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if body:
                if self.left is not None:
                    self.left -= len(body)
                yield body
            if not more:
                return
            if not self.taken and self.left is not None and self.left >= TAKEOVER_MIN:
                self.taken = True  # after one message: any 100 Continue has been sent
                self.conn = Connection.of(receive)
                if self.conn is not None:
                    held = self.conn.take_body()
                    if held:
                        self.left -= len(held)
                        yield held
                    return

    async def fill(self, buf: memoryview) -> int:
        n = await super().fill(buf)
        if self.conn is None or n == len(buf) or not self.left:
            return n
        want = min(len(buf) - n, self.left)
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(SOCKET_THREADS, self.conn.recv_into,
                                         buf[n:n + want])
        self.left -= got
        return n + got

    def close(self) -> None:
        if self.conn is not None:
            self.conn.drop_rest()
            self.conn.close()


# -- the pipeline -------------------------------------------------------------

class _Stages:
    """One thread per step; buffers flow through the steps in order, then back to
    ``free`` (an asyncio queue fed from the threads). The first error stops the
    steps from running (buffers still flow, so nothing waits forever)."""

    def __init__(self, steps: list[Step], loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.free: asyncio.Queue = asyncio.Queue()
        self.inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in steps]
        self.done = loop.create_future()
        self.error: BaseException | None = None
        self.threads = [threading.Thread(target=self._run, args=(k, step), daemon=True,
                                         name=f"bodystream-{k}")
                        for k, step in enumerate(steps)]
        for t in self.threads:
            t.start()

    def _run(self, k: int, step: Step) -> None:
        inbox = self.inboxes[k]
        last = k == len(self.inboxes) - 1
        while True:
            item = inbox.get()
            if item is not None and self.error is None:
                buf, n = item
                try:
                    with memoryview(buf) as view, view[:n] as part:
                        step(part)
                except BaseException as exc:
                    self.error = exc
            if not last:
                self.inboxes[k + 1].put(item)
            elif item is None:
                self.loop.call_soon_threadsafe(_resolve, self.done)
            else:
                self.loop.call_soon_threadsafe(self.free.put_nowait, item[0])
            if item is None:
                return


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


async def pump(source: ChunkSource, steps: list[Step], *, size_hint: int | None = None,
               on_size: Callable[[int], None] | None = None,
               buffer_size: int = BUFFER_SIZE, buffers: int = BUFFERS) -> int:
    """Move all of ``source`` through ``steps``; returns the number of bytes.

    Each step gets, in order, views of page-aligned buffers, each a multiple of
    4 KiB long except the last, and must not keep them. ``on_size`` (on the event
    loop) sees the running total after each buffer and may raise to stop."""
    if size_hint is not None:
        buffer_size = min(buffer_size, max(ALIGN, -(-size_hint // ALIGN) * ALIGN))
    loop = asyncio.get_running_loop()
    stages = _Stages(steps, loop)
    bufs = [mmap.mmap(-1, buffer_size) for _ in range(buffers)]
    for b in bufs:
        stages.free.put_nowait(b)
    total = 0
    try:
        while True:
            buf = await stages.free.get()
            if stages.error is not None:
                break
            with memoryview(buf) as view:
                n = await source.fill(view)
            total += n
            if on_size is not None:
                on_size(total)
            if n:
                stages.inboxes[0].put((buf, n))
            if n < buffer_size:
                break
    finally:
        stages.inboxes[0].put(None)
        await asyncio.shield(stages.done)
        source.close()
        for b in bufs:
            try:
                b.close()
            except BufferError:  # a step still holds it (cancelled mid-way): GC frees it
                pass
    if stages.error is not None:
        raise stages.error
    return total


# -- responses ----------------------------------------------------------------

class FileResponse(Response):
    """``count`` bytes of the open file ``fd`` from ``offset`` (none for a HEAD request);
    ``on_close`` runs once the body went out (or failed). Heads and errors go through
    ASGI as usual."""

    def __init__(self, fd: int, offset: int, count: int, *, status_code: int,
                 headers: dict[str, str], media_type: str | None,
                 on_close: Callable[[], None], drop_cache: bool = False):
        super().__init__(None, status_code, headers=headers, media_type=media_type)
        self.headers["content-length"] = str(count)
        self.fd, self.offset, self.count = fd, offset, count
        self.on_close = on_close
        self.drop_cache = drop_cache

    async def __call__(self, scope, receive, send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            if scope["method"] != "HEAD" and not await self._send_body(receive, send):
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.on_close()

    async def _send_body(self, receive, send) -> bool:
        """False if the client went away (the connection is then dropped)."""
        loop = asyncio.get_running_loop()
        conn = Connection.of(receive)
        if conn is None:
            await self._send_blocks(send, loop)
            return True
        try:
            if not await conn.drained():
                await conn.abort()
                return False
            sent = await loop.run_in_executor(SOCKET_THREADS, conn.sendfile, self.fd,
                                              self.offset, self.count, self.drop_cache)
        finally:
            conn.close()
        if sent < self.count:
            await conn.abort()
            return False
        conn.finished_body(sent)
        return True

    async def _send_blocks(self, send, loop) -> None:
        pos, end = self.offset, self.offset + self.count
        while pos < end:
            data = await loop.run_in_executor(None, os.pread, self.fd,
                                              min(BUFFER_SIZE, end - pos), pos)
            if not data:
                raise RuntimeError("file shrank while being sent")
            pos += len(data)
            await send({"type": "http.response.body", "body": data, "more_body": True})
