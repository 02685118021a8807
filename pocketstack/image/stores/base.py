"""What every image store provides, and the streaming pipeline they share.

Data arrives as an async iterator of byte strings (an HTTP body, a staged
file, a snapshot being written). ``pump`` joins it into big blocks and, for
each block, runs md5, sha512 and the store's write in three worker threads at
once while the event loop receives the next block: the hashes release the
GIL, so an upload costs about max(md5, write) instead of md5 + sha512 + write,
and memory stays at two blocks whatever the image size.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pocketstack.common import errors

BLOCK = 4 * 1024 * 1024
IN_FLIGHT = 4  # blocks buffered between the network and the slowest stage
HEAD = 4096  # bytes kept from the start of the data (format detection)

# Shared by the stores of every image service in the process: big blocks, few threads.
EXECUTOR = ThreadPoolExecutor(max_workers=6, thread_name_prefix="image-io")


@dataclass
class Written:
    """What a store reports once data is durably in place."""

    location: str
    size: int
    checksum: str  # md5 hex
    os_hash_value: str  # hex digest of os_hash_algo
    head: bytes  # the first HEAD bytes
    os_hash_algo: str = "sha512"


async def run(fn: Callable, *args):
    return await asyncio.get_running_loop().run_in_executor(EXECUTOR, fn, *args)


async def batches(source: AsyncIterator[bytes], size: int = BLOCK,
                  ) -> AsyncIterator[list[bytes]]:
    """The pieces of ``source`` in lists of at least ``size`` bytes (not joined)."""
    pieces: list[bytes] = []
    have = 0
    async for piece in source:
        if not piece:
            continue
        pieces.append(piece)
        have += len(piece)
        if have >= size:
            yield pieces
            pieces, have = [], 0
    if pieces:
        yield pieces


async def blocks(source: AsyncIterator[bytes], size: int = BLOCK) -> AsyncIterator[bytes]:
    """Join the pieces of ``source`` into blocks of at least ``size`` bytes."""
    async for pieces in batches(source, size):
        yield pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _feeder(update: Callable[[bytes], None]) -> Callable[[list[bytes]], None]:
    def feed(pieces: list[bytes]) -> None:
        for piece in pieces:
            update(piece)

    return feed


async def pump(source: AsyncIterator[bytes], write: Callable[[list[bytes]], None], *,
               max_size: int | None = None, too_large: Callable[[int], Exception] | None = None,
               algo: str = "sha512") -> tuple[int, str, str, bytes]:
    """Feed ``source`` to ``write`` (called in a worker thread with a list of
    pieces, e.g. for one writev), hashing on the way.

    md5, sha512 and ``write`` each run in a thread of their own, taking the
    batches in order, so a slow stage only holds back itself; at most
    ``IN_FLIGHT`` batches are buffered and pieces are never copied into one
    block. Returns (size, md5 hex, sha512 hex, head). Raises
    ``too_large(size)`` as soon as more than ``max_size`` bytes arrived.
    """
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.new(algo)
    size = 0
    head = b""
    loop = asyncio.get_running_loop()
    stages = [ThreadPoolExecutor(1, thread_name_prefix=f"image-{n}")
              for n in ("md5", algo, "write")]
    steps = (_feeder(md5.update), _feeder(sha.update), write)
    in_flight: deque[list[asyncio.Future]] = deque()
    try:
        async for pieces in batches(source):
            size += sum(len(p) for p in pieces)
            if max_size is not None and size > max_size:
                raise (too_large(size) if too_large else errors.RequestEntityTooLarge(
                    f"The incoming image is too large: over {max_size} bytes."))
            for piece in pieces:
                if len(head) >= HEAD:
                    break
                head += piece[: HEAD - len(head)]
            while len(in_flight) >= IN_FLIGHT:
                await asyncio.gather(*in_flight.popleft())
            in_flight.append([loop.run_in_executor(stage, step, pieces)
                              for stage, step in zip(stages, steps, strict=True)])
        while in_flight:
            await asyncio.gather(*in_flight.popleft())
    finally:
        # Never leave a thread writing into a file the caller is about to remove.
        for futures in in_flight:
            for fut in futures:
                try:
                    await asyncio.shield(fut)
                except BaseException:  # noqa: BLE001 - the first error is the one raised
                    pass
        for stage in stages:
            stage.shutdown(wait=False)
    return size, md5.hexdigest(), sha.hexdigest(), head


class Store:
    """An image store: where image bytes live, addressed by a location URI."""

    name = ""
    description = ""

    async def add(self, image_id: str, source: AsyncIterator[bytes], *,
                  max_size: int | None = None, too_large=None, algo: str = "sha512",
                  expected_size: int | None = None) -> Written:
        """Store all of ``source`` durably (all or nothing) and return its facts.
        ``expected_size``: the size the sender announced (Content-Length), if any."""
        raise NotImplementedError

    async def adopt(self, image_id: str, path: str) -> str:
        """Take a complete local file (a staged import) into the store; its location."""
        raise NotImplementedError

    def iterate(self, location: str, offset: int = 0,
                length: int | None = None) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def delete(self, location: str) -> None:
        """Remove the data (idempotent)."""
        raise NotImplementedError

    def path(self, location: str) -> str | None:
        """A local file holding the data, when the store has one (the file store)."""
        return None
