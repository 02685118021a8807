"""The objectstore store: images kept as objects in this cloud's object storage.

As Glance keeps images in Swift in single-tenant mode, every image is an
object ``<image_id>`` in one container of the service project's account,
written and read through object storage's in-process interface
(``cloud.services["objectstore"].store``). Object storage makes the write
durable and computes the MD5 (the object's ETag, which is the image's
checksum); this store adds the sha512 on the way, in a thread of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from pocketstack.common import errors
from pocketstack.image.stores.base import HEAD, IN_FLIGHT, Store, Written, blocks

LOG = logging.getLogger(__name__)
SCHEME = "objectstore://"


class ObjectStore(Store):
    name = "objectstore"
    description = "Images kept as objects in this cloud's object storage."

    def __init__(self, cloud, container: str):
        self.cloud = cloud
        self.container = container
        self._account: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def objects(self):
        service = self.cloud.services.get("objectstore")
        if service is None:
            raise errors.ServiceUnavailable("The image store is object storage, which is "
                                            "not running in this cloud.")
        return service.store

    @property
    def account(self) -> str:
        """AUTH_<id of the service project> (the account Glance's store user owns)."""
        if self._account is None:
            project_id = "image"
            identity = self.cloud.services.get("identity")
            if identity is not None:
                found = identity.manager.list("project", {
                    "name": "service", "domain_id": self.cloud.conf.identity.default_domain_id})
                if found:
                    project_id = found[0]["id"]
            self._account = f"AUTH_{project_id}"
        return self._account

    def _where(self, location: str) -> tuple[str, str, str]:
        account, container, name = location[len(SCHEME):].split("/", 2)
        return account, container, name

    async def add(self, image_id: str, source: AsyncIterator[bytes], *,
                  max_size: int | None = None, too_large=None, algo: str = "sha512",
                  expected_size: int | None = None) -> Written:
        self.loop = asyncio.get_running_loop()
        account = await asyncio.to_thread(lambda: self.account)
        await asyncio.to_thread(self.objects.ensure_container, account, self.container)
        sha = hashlib.new(algo)
        hasher = ThreadPoolExecutor(1, thread_name_prefix=f"image-{algo}")
        in_flight: deque[asyncio.Future] = deque()
        state = {"size": 0, "head": b""}

        async def hashed() -> AsyncIterator[bytes]:
            async for block in blocks(source):
                state["size"] += len(block)
                if max_size is not None and state["size"] > max_size:
                    raise (too_large(state["size"]) if too_large else
                           errors.RequestEntityTooLarge("The incoming image is too large."))
                if len(state["head"]) < HEAD:
                    state["head"] += block[: HEAD - len(state["head"])]
                while len(in_flight) >= IN_FLIGHT:
                    await in_flight.popleft()
                in_flight.append(self.loop.run_in_executor(hasher, sha.update, block))
                yield block

        try:
            info = await self.objects.put(account, self.container, image_id, hashed())
            while in_flight:
                await in_flight.popleft()
        finally:
            for fut in in_flight:
                try:
                    await asyncio.shield(fut)
                except BaseException:  # noqa: BLE001
                    pass
            hasher.shutdown(wait=False)
        return Written(f"{SCHEME}{account}/{self.container}/{image_id}", state["size"],
                       info.etag, sha.hexdigest(), state["head"], algo)

    async def adopt(self, image_id: str, path: str) -> str:
        self.loop = asyncio.get_running_loop()
        account = await asyncio.to_thread(lambda: self.account)
        await asyncio.to_thread(self.objects.ensure_container, account, self.container)
        with open(path, "rb") as f:
            await self.objects.put(account, self.container, image_id, f,
                                   content_length=os.fstat(f.fileno()).st_size)
        os.unlink(path)
        return f"{SCHEME}{account}/{self.container}/{image_id}"

    async def iterate(self, location: str, offset: int = 0,
                      length: int | None = None) -> AsyncIterator[bytes]:
        self.loop = asyncio.get_running_loop()
        account, container, name = self._where(location)
        end = None if length is None else offset + length
        _, body = await self.objects.get(account, container, name, start=offset, end=end)
        async for chunk in body:
            yield chunk

    def delete(self, location: str) -> None:
        if not location.startswith(SCHEME):
            return
        account, container, name = self._where(location)

        async def remove():
            try:
                await self.objects.delete(account, container, name)
            except errors.NotFound:
                pass

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:  # on the loop: let it run
            task = running.create_task(remove())
            task.add_done_callback(lambda t: t.exception() and LOG.error(
                "could not delete %s: %s", location, t.exception()))
            return
        if self.loop is None or self.loop.is_closed():
            LOG.warning("cannot delete %s: no event loop yet", location)
            return
        asyncio.run_coroutine_threadsafe(remove(), self.loop).result(300)
