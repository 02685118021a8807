"""Where block storage meets the other services (each in one place).

- ``ImageClient``: volumes from images and ``os-volume_upload_image``, through
  the image service's manager in-process (``cloud.services["image"].manager``).
- ``BackupStore``: backups as objects in this cloud's object storage
  (``cloud.services["objectstore"].store``), in the volume owner's account,
  chunked as Cinder's chunked backup drivers do (a metadata object lists
  the chunks; all-zero chunks are not stored; an incremental backup stores
  only the chunks that changed since its parent).

Both managers are asyncio-based; the volume workers are threads, so their
coroutines run on the server's event loop (``VolumeService.run_async``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from typing import TYPE_CHECKING

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.volume.drivers.base import GiB

if TYPE_CHECKING:
    from pocketstack.volume.manager import VolumeManager

SEEK_DATA = getattr(os, "SEEK_DATA", 3)
READ_BLOCK = 4 << 20


def _scratch(manager) -> str:
    from pocketstack.volume.manager import conversion_dir

    return conversion_dir(manager.conf)


class _ServiceClient:
    service = ""

    def __init__(self, manager: VolumeManager):
        self.manager = manager

    def _svc(self):
        cloud = self.manager.cloud
        svc = cloud.services.get(self.service) if cloud is not None else None
        if svc is None:
            raise errors.BadRequest(f"The {self.service} service is not available in this "
                                    "cloud.")
        return svc

    def run(self, coro):
        return self.manager.run_async(coro)


class ImageClient(_ServiceClient):
    service = "image"

    def describe(self, ctx: RequestContext, image_id: str) -> dict:
        try:
            image = self._svc().manager.get(ctx, image_id)
        except errors.NotFound:
            raise errors.BadRequest(f"Invalid image identifier or unable to access "
                                    f"requested image. (image {image_id})") from None
        if image.get("status") != "active":
            raise errors.BadRequest(f"Image {image_id} is not active.")
        return image

    @staticmethod
    def volume_image_metadata(image: dict) -> dict:
        meta = {"image_id": image["id"], "image_name": image.get("name"),
                "checksum": image.get("checksum"),
                "container_format": image.get("container_format"),
                "disk_format": image.get("disk_format"),
                "min_disk": str(image.get("min_disk", 0)),
                "min_ram": str(image.get("min_ram", 0)), "size": str(image.get("size"))}
        return {k: v for k, v in meta.items() if v is not None}

    @contextlib.contextmanager
    def local_copy(self, ctx: RequestContext, image: dict):
        """(path, format) of the image's data on this host: the image file itself
        when the image store is a local directory, else a scratch copy."""
        mgr = self._svc().manager
        fmt = image.get("disk_format") or "raw"
        fmt = {"ami": "raw", "iso": "raw", "aki": "raw", "ari": "raw"}.get(fmt, fmt)
        path = mgr.data_path(ctx, image["id"])
        if path and os.path.exists(path):
            yield path, fmt
            return
        fd, tmp = tempfile.mkstemp(dir=_scratch(self.manager), prefix="image-")

        async def fetch():
            _, chunks = mgr.open_data(ctx, image["id"])
            if chunks is None:
                raise errors.BadRequest(f"Image {image['id']} has no data.")
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    f.write(chunk)

        try:
            self.run(fetch())
            yield tmp, fmt
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def create_for_upload(self, ctx: RequestContext, vol: dict, params: dict) -> dict:
        body = {"name": params["image_name"],
                "disk_format": params.get("disk_format") or "raw",
                "container_format": params.get("container_format") or "bare"}
        if params.get("visibility"):
            body["visibility"] = params["visibility"]
        if params.get("protected") is not None:
            body["protected"] = params["protected"]
        return self._svc().manager.create(ctx, body)

    def upload(self, ctx: RequestContext, image: dict, driver, location: dict,
               disk_format: str) -> None:
        mgr = self._svc().manager
        fd, tmp = tempfile.mkstemp(dir=_scratch(self.manager), prefix="upload-")
        os.close(fd)
        try:
            driver.export_image(location, tmp, disk_format)

            async def chunks():
                with open(tmp, "rb") as f:
                    while True:
                        block = f.read(READ_BLOCK)
                        if not block:
                            return
                        yield block

            self.run(mgr.upload(ctx, image["id"], chunks(), os.path.getsize(tmp)))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def abandon(self, ctx: RequestContext, image: dict) -> None:
        with contextlib.suppress(Exception):
            self._svc().manager.delete(ctx, image["id"])


class BackupStore(_ServiceClient):
    service = "objectstore"

    def _store(self):
        return self._svc().store

    @staticmethod
    def account(bk: dict) -> str:
        return f"AUTH_{bk['project_id']}"

    @staticmethod
    def prefix(bk: dict) -> str:
        return f"volume_{bk['volume_id']}/{bk['id']}/backup"

    def _parent_chunks(self, parent_id: str | None) -> dict[int, dict]:
        if not parent_id:
            return {}
        meta = self._read_metadata(parent_id)
        return {c["offset"]: c for c in meta["chunks"]}

    def _read_metadata(self, backup_id: str) -> dict:
        bk = self.manager.get_backup(RequestContext.internal_admin(), backup_id)
        sm = bk["service_metadata"] or {}
        store = self._store()

        async def read():
            _, body = await store.get(self.account(bk), bk["container"], sm["metadata_object"])
            data = b""
            async for chunk in body:
                data += chunk
            return json.loads(data)

        return self.run(read())

    def backup(self, ctx, bk: dict, driver, location: dict) -> dict:
        """Copy the volume's data into objects; returns the backup row's new values."""
        store = self._store()
        account, container = self.account(bk), bk["container"]
        chunk_size = self.manager.conf.backup_swift_object_size
        store.ensure_container(account, container)
        parent = self._parent_chunks(bk["parent_id"])
        fd, tmp = tempfile.mkstemp(dir=_scratch(self.manager), prefix="backup-")
        os.close(fd)
        chunks, written = [], []
        try:
            driver.export_raw(location, tmp)
            size = os.path.getsize(tmp)
            with open(tmp, "rb") as f:
                for n, offset in enumerate(range(0, size, chunk_size)):
                    length = min(chunk_size, size - offset)
                    data = _read_chunk(f, offset, length)
                    if data is None:
                        chunks.append({"offset": offset, "length": length, "object": None,
                                       "sha256": None})
                        continue
                    digest = hashlib.sha256(data).hexdigest()
                    prev = parent.get(offset)
                    if prev is not None and prev["sha256"] == digest:
                        chunks.append(prev)
                        continue
                    name = f"{self.prefix(bk)}-{n:05d}"
                    self.run(store.put(account, container, name, [data]))
                    written.append(name)
                    chunks.append({"offset": offset, "length": length, "object": name,
                                   "sha256": digest})
            meta_name = f"{self.prefix(bk)}_metadata"
            meta = {"version": 1, "backup_id": bk["id"], "volume_id": bk["volume_id"],
                    "size": size, "chunk_size": chunk_size, "chunks": chunks,
                    "created": time.time()}
            self.run(store.put(account, container, meta_name, [json.dumps(meta).encode()],
                               content_type="application/json"))
            written.append(meta_name)
        except BaseException:
            for name in written:
                with contextlib.suppress(Exception):
                    self.run(store.delete(account, container, name))
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return {"object_count": len(written),
                "service_metadata": {"metadata_object": meta_name, "objects": written}}

    def restore_into(self, backup_id: str, driver, location: dict) -> None:
        bk = self.manager.get_backup(RequestContext.internal_admin(), backup_id)
        meta = self._read_metadata(backup_id)
        store = self._store()
        account, container = self.account(bk), bk["container"]
        fd, tmp = tempfile.mkstemp(dir=_scratch(self.manager), prefix="restore-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.truncate(meta["size"])
                for c in meta["chunks"]:
                    if c["object"] is None:
                        continue

                    async def fetch(name=c["object"]):
                        _, body = await store.get(account, container, name)
                        parts = []
                        async for part in body:
                            parts.append(part)
                        return b"".join(parts)

                    data = self.run(fetch())
                    if hashlib.sha256(data).hexdigest() != c["sha256"]:
                        raise errors.Conflict(f"backup object {c['object']} is corrupt")
                    f.seek(c["offset"])
                    f.write(data)
            share_size = (driver.share(location["pool"]).size(location["chain"][-1][0])
                          if location["chain"][-1][1] == "raw" else None)
            if share_size is not None and share_size > meta["size"]:
                with open(tmp, "r+b") as f:
                    f.truncate(share_size)
            elif share_size is None:
                size = max(meta["size"], -(-meta["size"] // GiB) * GiB)
                with open(tmp, "r+b") as f:
                    f.truncate(size)
            driver.import_raw(location, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def delete(self, bk: dict) -> None:
        sm = bk["service_metadata"] or {}
        if not sm:
            return
        store = self._store()
        for name in sm.get("objects", []):
            try:
                self.run(store.delete(self.account(bk), bk["container"], name))
            except errors.NotFound:
                pass


def _read_chunk(f, offset: int, length: int) -> bytes | None:
    """The chunk's bytes, or None when it is a hole or all zeros."""
    try:
        data_at = os.lseek(f.fileno(), offset, SEEK_DATA)
        if data_at >= offset + length:
            return None
    except OSError:
        return None  # ENXIO: nothing but a hole after offset
    f.seek(offset)
    data = f.read(length)
    if not data.strip(b"\0"):
        return None
    return data
