"""What every image store provides, and the upload pipeline they share.

Data arrives as a ``common.bodystream`` source (an HTTP request's body) or an async
iterator of byte strings (a staged file, a snapshot being written). ``pump`` moves
it through ``bodystream.pump``: md5, sha512 and the store's write each on a thread of
their own, taking big buffers in order while the next one is received. The hashes
release the GIL, so an upload costs about max(md5, write) instead of md5 + sha512 +
write, and memory stays at a few buffers whatever the image size.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pocketstack.common import bodystream, errors

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


async def blocks(source: AsyncIterator[bytes], size: int = BLOCK) -> AsyncIterator[bytes]:
    """Join the pieces of ``source`` into blocks of at least ``size`` bytes."""
    pieces: list[bytes] = []
    have = 0
    async for piece in source:
        if not piece:
            continue
        pieces.append(piece)
        have += len(piece)
        if have >= size:
            yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            pieces, have = [], 0
    if pieces:
        yield pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def pump(source, write: bodystream.Step, *, max_size: int | None = None,
               too_large: Callable[[int], Exception] | None = None, algo: str = "sha512",
               size_hint: int | None = None) -> tuple[int, str, str, bytes]:
    """Feed ``source`` to ``write`` (a ``bodystream`` step: called on its own thread
    with each buffer in turn), hashing on the way. Returns (size, md5 hex, ``algo``
    hex, head). Raises ``too_large(size)`` as soon as more than ``max_size`` bytes
    arrived, before they are written."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.new(algo)
    head = bytearray()

    def head_and_md5(view: memoryview) -> None:
        if len(head) < HEAD:
            head.extend(view[:HEAD - len(head)])
        md5.update(view)

    def check(size: int) -> None:
        if max_size is not None and size > max_size:
            raise (too_large(size) if too_large else errors.RequestEntityTooLarge(
                f"The incoming image is too large: over {max_size} bytes."))

    if not isinstance(source, bodystream.ChunkSource):
        source = bodystream.ChunkSource(source)
    size = await bodystream.pump(source, [head_and_md5, sha.update, write],
                                 size_hint=size_hint, on_size=check)
    return size, md5.hexdigest(), sha.hexdigest(), bytes(head)


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
