"""Object storage's business rules: accounts, containers, objects, large objects.

``ObjectStore`` is also the in-process interface other services use (the image
service keeps images as objects)::

    store = cloud.services["objectstore"].store
    store.ensure_container(account, "images")
    info = await store.put(account, "images", image_id, async_chunks_or_file)
    info, chunks = await store.get(account, "images", image_id)   # async iterator
    info = await store.head(account, "images", image_id)
    await store.delete(account, "images", image_id)

Object PUT: the body streams to a temporary file in chunks (hashed on the way),
is sealed (metadata attached, fsync'd), renamed into place (directory fsync'd)
and indexed (group commit) before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import mmap
import os
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pocketstack.common import bodystream, errors
from pocketstack.common.db import Database
from pocketstack.objectstore import models
from pocketstack.objectstore.index import ContainerGone, Index
from pocketstack.objectstore.storage import ALIGN, DiskStore, ObjectMeta, OpenObject

LOG = logging.getLogger(__name__)

SMALL = 64 * 1024  # reads and writes up to this size stay on the event loop
DIRECT_READ_MIN = 8 * 1024 * 1024  # reads of this much of one object skip the page cache

OBJECT_HEADERS = ("Content-Disposition", "Content-Encoding", "X-Delete-At",
                  "X-Object-Manifest")
CONTAINER_HEADERS = ("X-Container-Read", "X-Container-Write", "X-Versions-Location",
                     "X-History-Location")


def now_ts() -> str:
    return f"{time.time():016.5f}"


def ts_float(ts: str) -> float:
    return float(ts)


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


# -- names --------------------------------------------------------------------

def check_container_name(name: str) -> None:
    if not name:
        raise errors.BadRequest("Container name required.")
    if "/" in name:
        raise errors.BadRequest("Container name may not contain '/'.")
    if "\x00" in name:
        raise errors.BadRequest("Container name may not contain NUL.")
    if len(name.encode("utf-8", "surrogateescape")) > 256:
        raise errors.BadRequest("Container name length of 256 exceeded.")
    if name in (".", ".."):
        raise errors.BadRequest(f"Invalid container name {name!r}.")
    _check_utf8(name)


def check_object_name(name: str) -> None:
    if not name:
        raise errors.BadRequest("Object name required.")
    if "\x00" in name:
        raise errors.BadRequest("Object name may not contain NUL.")
    if len(name.encode("utf-8", "surrogateescape")) > 1024:
        raise errors.BadRequest("Object name length of 1024 exceeded.")
    if not name.strip("/"):
        raise errors.BadRequest("Object name may not consist only of '/'.")
    if any(part in (".", "..") for part in name.split("/")):
        raise errors.BadRequest("Object name may not contain '.' or '..' path segments.")
    _check_utf8(name)


def _check_utf8(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.BadRequest("Invalid UTF-8 in name.") from None


# -- records ------------------------------------------------------------------

@dataclass
class ContainerInfo:
    account: str
    name: str
    timestamp: str
    put_timestamp: str
    meta: dict[str, str]  # X-Container-Meta-*, ACLs, versioning, ...

    def get(self, header: str) -> str | None:
        return self.meta.get(header)


@dataclass
class ObjectInfo:
    """An object as clients see it (a large object's total size and ETag)."""

    account: str
    container: str
    name: str
    size: int
    etag: str
    content_type: str
    timestamp: str
    headers: dict[str, str] = field(default_factory=dict)
    slo: bool = False
    dlo: str | None = None

    @property
    def last_modified(self) -> float:
        return float(self.timestamp)

    @classmethod
    def of(cls, meta: ObjectMeta) -> ObjectInfo:
        slo = meta.sys.get("slo")
        return cls(meta.account, meta.container, meta.name,
                   slo["size"] if slo else meta.size, slo["etag"] if slo else meta.etag,
                   meta.content_type, meta.timestamp, meta.headers, slo=bool(slo),
                   dlo=meta.headers.get("X-Object-Manifest"))


@dataclass
class Part:
    """A byte range of one stored object, part of what a GET streams."""

    account: str
    container: str
    name: str
    start: int
    end: int  # exclusive
    handle: OpenObject | None = None
    etag: str | None = None  # expected ETag (SLO segments)


# -- the manager --------------------------------------------------------------

class ObjectStore:
    def __init__(self, conf, db: Database):
        self.conf = conf
        self.opts = conf.objectstore
        self.db = db
        root = self.opts.root or os.path.join(conf.state_path, "objects")
        self.disk = DiskStore(root, fsync=self.opts.fsync, direct_io=self.opts.direct_io)
        self.index = Index(db)
        self.chunk_size = self.opts.chunk_size
        self._containers: dict[tuple[str, str], ContainerInfo | None] = {}
        self._accounts: dict[str, dict[str, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.pool = ThreadPoolExecutor(max_workers=self.opts.io_threads,
                                       thread_name_prefix="objectstore-io")

    def setup(self) -> None:
        self.disk.setup()
        if self.disk.mark_running():
            LOG.warning("objectstore at %s was not stopped cleanly: rebuilding its index",
                        self.disk.root)
            LOG.warning("objectstore index rebuilt: %s", self.reindex())
        self.index.start()

    def stop(self) -> None:
        self.index.stop()
        self.pool.shutdown(wait=True)
        self.disk.mark_stopped()

    def reindex(self) -> dict[str, int]:
        """Make the index agree with the files (the truth) after an unclean stop:
        rows for objects whose index write was lost, no rows for files gone, exact
        counts. Objects of containers that no longer exist are removed."""
        C, O = models.container, models.object_  # noqa: E741
        stats = {"added": 0, "updated": 0, "dropped": 0, "orphans": 0}
        with self.db.engine.begin() as conn:
            containers = {(r.account, r.name) for r in conn.execute(
                sa.select(C.c.account, C.c.name))}
            for meta in self.disk.walk():
                path = self.disk.path(meta.account, meta.container, meta.name)
                if (meta.account, meta.container) not in containers:
                    self.disk.remove(path)
                    stats["orphans"] += 1
                    continue
                row = _row(meta, ObjectInfo.of(meta))
                key = (O.c.account == meta.account) & (O.c.container == meta.container) & \
                    (O.c.name == meta.name)
                have = conn.execute(sa.select(O.c.timestamp, O.c.size, O.c.etag,
                                              O.c.content_type, O.c.delete_at)
                                    .where(key)).first()
                if have is None:
                    conn.execute(O.insert().values(**row))
                    stats["added"] += 1
                elif tuple(have) != (row["timestamp"], row["size"], row["etag"],
                                     row["content_type"], row["delete_at"]):
                    conn.execute(O.update().where(key).values(**row))
                    stats["updated"] += 1
            gone = []
            for r in conn.execute(sa.select(O.c.account, O.c.container, O.c.name)).all():
                if self.read_meta(r.account, r.container, r.name) is None and \
                        self.disk.read_meta(self.disk.path(*r)) is None:
                    gone.append(tuple(r))
            for account, container, name in gone:
                conn.execute(O.delete().where((O.c.account == account) &
                                              (O.c.container == container) &
                                              (O.c.name == name)))
            stats["dropped"] = len(gone)
            match = (O.c.account == C.c.account) & (O.c.container == C.c.name)
            conn.execute(C.update().values(
                object_count=sa.select(sa.func.count()).where(match).scalar_subquery(),
                bytes_used=sa.select(sa.func.coalesce(sa.func.sum(O.c.size), 0))
                .where(match).scalar_subquery()))
        return stats

    # -- accounts -------------------------------------------------------------

    def account_meta(self, account: str) -> dict[str, str]:
        meta = self._accounts.get(account)
        if meta is None:
            with self.db.reader() as s:
                row = s.execute(sa.select(models.account.c.meta).where(
                    models.account.c.account == account)).first()
            meta = dict(row.meta) if row else {}
            self._accounts[account] = meta
        return meta

    def account_timestamp(self, account: str) -> str | None:
        with self.db.reader() as s:
            return s.execute(sa.select(models.account.c.timestamp).where(
                models.account.c.account == account)).scalar()

    def _ensure_account(self, s, account: str) -> dict:
        A = models.account
        row = s.execute(sa.select(A.c.meta).where(A.c.account == account)).first()
        if row is None:
            s.execute(A.insert().values(account=account, timestamp=now_ts(), meta={}))
            return {}
        return dict(row.meta)

    def update_account(self, account: str, set_meta: dict[str, str],
                       remove: list[str]) -> None:
        def txn(s):
            meta = self._ensure_account(s, account)
            for key in remove:
                meta.pop(key, None)
            for key, value in set_meta.items():
                if value == "":
                    meta.pop(key, None)
                else:
                    meta[key] = value
            check_meta_limits(self.opts, meta, "X-Account-Meta-")
            s.execute(models.account.update().where(models.account.c.account == account)
                      .values(meta=meta))
        self.db.transaction(txn)
        self._accounts.pop(account, None)

    def account_stats(self, account: str) -> tuple[int, int, int]:
        return self.index.account_stats(account)

    def list_containers(self, account: str, **params) -> list:
        C = models.container
        return self.index.listing(C, C.c.account == account, C.c.name,
                                  (C.c.name, C.c.object_count, C.c.bytes_used,
                                   C.c.put_timestamp), **params)

    # -- containers -----------------------------------------------------------

    def get_container(self, account: str, name: str) -> ContainerInfo | None:
        key = (account, name)
        try:
            return self._containers[key]
        except KeyError:
            pass
        C = models.container
        with self.db.reader() as s:
            row = s.execute(sa.select(C.c.timestamp, C.c.put_timestamp, C.c.meta).where(
                (C.c.account == account) & (C.c.name == name))).first()
        info = ContainerInfo(account, name, row.timestamp, row.put_timestamp,
                             dict(row.meta)) if row else None
        if len(self._containers) > 100000:
            self._containers.clear()
        self._containers[key] = info
        return info

    def require_container(self, account: str, name: str) -> ContainerInfo:
        info = self.get_container(account, name)
        if info is None:
            raise errors.NotFound()
        return info

    def container_stats(self, account: str, name: str) -> tuple[int, int]:
        return self.index.container_stats(account, name)

    def create_container(self, account: str, name: str, set_meta: dict[str, str] | None = None,
                         remove: list[str] | None = None) -> bool:
        """PUT a container: True when created, False when it existed (metadata updated)."""
        check_container_name(name)
        C = models.container

        def txn(s):
            self._ensure_account(s, account)
            row = s.execute(sa.select(C.c.meta).where(
                (C.c.account == account) & (C.c.name == name))).first()
            meta = dict(row.meta) if row else {}
            _apply_meta(meta, set_meta or {}, remove or [])
            check_meta_limits(self.opts, meta, "X-Container-Meta-")
            ts = now_ts()
            if row is None:
                s.execute(C.insert().values(account=account, name=name, timestamp=ts,
                                            put_timestamp=ts, object_count=0, bytes_used=0,
                                            meta=meta))
                return True
            s.execute(C.update().where((C.c.account == account) & (C.c.name == name))
                      .values(meta=meta, put_timestamp=ts))
            return False

        try:
            return self.db.transaction(txn)
        finally:
            self._containers.pop((account, name), None)

    def ensure_container(self, account: str, name: str) -> None:
        if self.get_container(account, name) is None:
            self.create_container(account, name)

    def update_container(self, account: str, name: str, set_meta: dict[str, str],
                         remove: list[str]) -> None:
        C = models.container

        def txn(s):
            row = s.execute(sa.select(C.c.meta).where(
                (C.c.account == account) & (C.c.name == name))).first()
            if row is None:
                raise errors.NotFound()
            meta = dict(row.meta)
            _apply_meta(meta, set_meta, remove)
            check_meta_limits(self.opts, meta, "X-Container-Meta-")
            s.execute(C.update().where((C.c.account == account) & (C.c.name == name))
                      .values(meta=meta))

        try:
            self.db.transaction(txn)
        finally:
            self._containers.pop((account, name), None)

    def delete_container(self, account: str, name: str) -> None:
        """Delete an empty container (409 otherwise); the index's writer does it, so
        no object can be indexed into it meanwhile."""
        try:
            self.index.submit(Index.op_delete_container, account, name, durable=True).result()
        finally:
            self._containers.pop((account, name), None)

    def list_objects(self, account: str, container: str, **params) -> list:
        O = models.object_  # noqa: E741
        return self.index.listing(
            O, (O.c.account == account) & (O.c.container == container), O.c.name,
            (O.c.name, O.c.size, O.c.etag, O.c.content_type, O.c.timestamp), **params)

    # -- objects: reading -----------------------------------------------------

    def path(self, account: str, container: str, name: str) -> str:
        return self.disk.path(account, container, name)

    def open_object(self, account: str, container: str, name: str) -> OpenObject | None:
        """The stored object (a live one: expired objects are gone), opened."""
        handle = self.disk.open(self.disk.path(account, container, name))
        if handle is None:
            return None
        meta = handle.meta
        if (meta.account, meta.container, meta.name) != (account, container, name):
            handle.close()  # a hash collision: not this object
            return None
        delete_at = meta.delete_at
        if delete_at is not None and delete_at <= time.time():
            handle.close()
            return None
        return handle

    def read_meta(self, account: str, container: str, name: str) -> ObjectMeta | None:
        meta = self.disk.read_meta(self.disk.path(account, container, name))
        if meta is None or (meta.account, meta.container, meta.name) != (account, container,
                                                                         name):
            return None
        delete_at = meta.delete_at
        if delete_at is not None and delete_at <= time.time():
            return None
        return meta

    def slo_manifest(self, handle: OpenObject) -> list[dict]:
        if handle.size > self.opts.max_manifest_size * 4:
            raise errors.InternalError()
        return json.loads(handle.read_all())

    def parts_of(self, handle: OpenObject, *, depth: int = 0) -> list[Part]:
        """What a GET of this object streams: itself, or a large object's segments."""
        meta = handle.meta
        if meta.sys.get("slo"):
            if depth > 10:
                raise errors.Conflict("Max recursion depth exceeded on SLO.")
            parts: list[Part] = []
            for seg in self.slo_manifest(handle):
                cont, _, obj = seg["name"].lstrip("/").partition("/")
                start, end = 0, seg["bytes"]
                if seg.get("range"):
                    start, end = _seg_range(seg["range"], seg["bytes"])
                if seg.get("sub_slo"):
                    sub = self.open_object(meta.account, cont, obj)
                    if sub is None:
                        raise errors.Conflict(f"Segment {seg['name']} is missing.")
                    inner = _slice_parts(self.parts_of(sub, depth=depth + 1), start, end)
                    parts.extend(inner)
                else:
                    parts.append(Part(meta.account, cont, obj, start, end, etag=seg["hash"]))
            return parts
        manifest = meta.headers.get("X-Object-Manifest")
        if manifest:
            return self.dlo_parts(meta.account, manifest)
        return [Part(meta.account, meta.container, meta.name, 0, handle.size, handle=handle)]

    def dlo_parts(self, account: str, manifest: str) -> list[Part]:
        cont, _, prefix = header_text(manifest).partition("/")
        rows = self.list_objects(account, cont, prefix=prefix,
                                 limit=self.opts.dlo_max_segments)
        return [Part(account, cont, r.name, 0, r.size, etag=r.etag) for r in rows]

    def dlo_info(self, account: str, manifest: str) -> tuple[int, str]:
        parts = self.dlo_parts(account, manifest)
        md5 = hashlib.md5(usedforsecurity=False)
        for p in parts:
            md5.update(p.etag.encode())
        return sum(p.end - p.start for p in parts), md5.hexdigest()

    async def stream(self, parts: list[Part], start: int = 0,
                     end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the bytes [start, end) of the concatenation of ``parts``."""
        total = sum(p.end - p.start for p in parts)
        end = total if end is None else min(end, total)
        for part in _slice_parts(parts, start, end):
            handle = part.handle
            owned = False
            if handle is None:
                handle = await self._io(self.open_object, part.account,
                                                 part.container, part.name)
                owned = True
                if handle is None:
                    raise errors.Conflict(f"Segment /{part.container}/{part.name} is gone.")
                if part.etag and _logical_etag(handle) != part.etag:
                    handle.close()
                    raise errors.Conflict(f"Segment /{part.container}/{part.name} changed.")
                if handle.meta.sys.get("slo") or handle.meta.headers.get("X-Object-Manifest"):
                    try:
                        inner = self.parts_of(handle, depth=1)
                        async for chunk in self.stream(inner, part.start, part.end):
                            yield chunk
                    finally:
                        handle.close()
                    continue
            ahead: asyncio.Future | None = None
            buf = None
            try:
                pos = part.start
                if part.end - pos <= SMALL:
                    data = handle.read(pos, part.end - pos)
                    if len(data) != part.end - pos:
                        raise errors.Conflict("Object shrank while being read.")
                    yield data
                    continue
                if part.end - pos >= DIRECT_READ_MIN and self.disk.direct_io and \
                        handle.go_direct():
                    buf = mmap.mmap(-1, self.chunk_size + ALIGN)
                elif part.end - pos > 4 * self.chunk_size:
                    handle.sequential()
                # One read ahead: the disk works on the next chunk while this one
                # goes out to the client.
                ahead = self._read_ahead(handle, pos, part.end, buf)
                while ahead is not None:
                    data = await ahead
                    ahead = None
                    if not data:
                        raise errors.Conflict("Object shrank while being read.")
                    pos += len(data)
                    if pos < part.end:
                        ahead = self._read_ahead(handle, pos, part.end, buf)
                    yield data
            finally:
                if ahead is not None:
                    try:
                        await ahead
                    except Exception:
                        pass
                if buf is not None:
                    buf.close()
                if owned:
                    handle.close()

    def _read_ahead(self, handle: OpenObject, pos: int, end: int, buf) -> asyncio.Future:
        n = min(self.chunk_size, end - pos)
        if buf is not None:
            return asyncio.ensure_future(self._io(handle.read_direct, pos, n, buf))
        return asyncio.ensure_future(self._io(handle.read, pos, n))

    # -- objects: writing -----------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > 10000:
                for k in [k for k, v in self._locks.items() if not v.locked()]:
                    del self._locks[k]
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def write_body(self, body, *, expected_size: int | None = None,
                         limit: int | None = None,
                         on_size: Callable[[int], None] | None = None):
        """Stream ``body`` (a ``bodystream`` source, an async iterator of bytes, or a
        file-like with read()) into a new temporary file; returns the writer (not yet
        sealed). Small bodies are written on the event loop; others move in big
        buffers, hashed and written on their own threads."""
        small = expected_size is not None and expected_size <= SMALL
        writer = self.disk.writer(expected_size, hold=small)
        max_size = self.opts.max_file_size if limit is None else limit

        def check(total: int) -> None:
            if total > max_size:
                raise errors.RequestEntityTooLarge("Your request is too large.")
            if on_size is not None:
                on_size(total)

        try:
            if small:
                chunks, total = [], 0
                async for chunk in _chunks(body, self.chunk_size):
                    chunks.append(chunk)
                    total += len(chunk)
                    check(total)
                writer.write_many(chunks)
            else:
                source = body if isinstance(body, bodystream.ChunkSource) else \
                    bodystream.ChunkSource(_chunks(body, self.chunk_size))
                await bodystream.pump(source, [writer.md5.update, writer.store],
                                      size_hint=expected_size, on_size=check)
        except BaseException:
            writer.abort()
            raise
        return writer

    async def put_object(self, account: str, container: str, name: str, body, *,
                         content_type: str | None = None, headers: dict[str, str] | None = None,
                         etag: str | None = None, content_length: int | None = None,
                         if_none_match: bool = False, sys: dict | None = None,
                         check_quota: bool = True, timestamp: str | None = None) -> ObjectInfo:
        """Create or replace an object from a streamed body."""
        check_object_name(name)
        cinfo = self.require_container(account, container)
        if content_length is not None and content_length > self.opts.max_file_size:
            raise errors.RequestEntityTooLarge("Your request is too large.")
        if if_none_match and self.read_meta(account, container, name) is not None:
            raise errors.PreconditionFailed()
        on_size = None
        if check_quota and self._has_quota(account, cinfo):
            on_size = await self._io(self._quota_guard, account, cinfo, content_length)
        writer = await self.write_body(body, expected_size=content_length, on_size=on_size)
        try:
            if content_length is not None and writer.size != content_length:
                raise errors.for_status(499, "Client Disconnect")
            digest = writer.md5.hexdigest()
            if etag is not None and etag.strip('"').lower() != digest:
                raise errors.UnprocessableEntity(
                    "The provided ETag does not match the MD5 of the data received.")
            meta = ObjectMeta(account, container, name, timestamp or now_ts(), digest,
                              content_type or guess_type(name), headers=dict(headers or {}),
                              sys=dict(sys or {}))
        except BaseException:
            writer.abort()
            raise
        return await self._install(writer, meta, cinfo, if_none_match=if_none_match)

    def _has_quota(self, account: str, cinfo: ContainerInfo) -> bool:
        return bool(cinfo.get("X-Container-Meta-Quota-Bytes")
                    or cinfo.get("X-Container-Meta-Quota-Count")
                    or self.account_meta(account).get("X-Account-Meta-Quota-Bytes"))

    def _quota_guard(self, account: str, cinfo: ContainerInfo, length: int | None):
        """Quota checks (413) before and while a body streams in."""
        qbytes = cinfo.get("X-Container-Meta-Quota-Bytes")
        qcount = cinfo.get("X-Container-Meta-Quota-Count")
        aquota = self.account_meta(account).get("X-Account-Meta-Quota-Bytes")
        if not (qbytes or qcount or aquota):
            return None
        limits = []
        if qbytes or qcount:
            count, used = self.container_stats(account, cinfo.name)
            if qcount and count + 1 > int(qcount):
                raise errors.RequestEntityTooLarge("Upload exceeds quota.")
            if qbytes:
                limits.append(int(qbytes) - used)
        if aquota:
            _n, _o, used = self.account_stats(account)
            limits.append(int(aquota) - used)
        room = min(limits) if limits else None
        if room is not None and length is not None and length > room:
            raise errors.RequestEntityTooLarge("Upload exceeds quota.")

        def guard(size: int) -> None:
            if room is not None and size > room:
                raise errors.RequestEntityTooLarge("Upload exceeds quota.")

        guard(0)
        return guard

    async def _install(self, writer, meta: ObjectMeta, cinfo: ContainerInfo, *,
                       if_none_match: bool = False) -> ObjectInfo:
        account, container, name = meta.account, meta.container, meta.name
        path = self.disk.path(account, container, name)
        meta.size = writer.size
        info = ObjectInfo.of(meta)
        ops = [(Index.op_put_object, _row(meta, info))]
        async with self._lock(path):
            try:
                # Only If-None-Match and versioning care what is replaced.
                versioned = cinfo.get("X-Versions-Location") or \
                    cinfo.get("X-History-Location")
                old = self.read_meta(account, container, name) \
                    if if_none_match or versioned else None
                if if_none_match and old is not None:
                    raise errors.PreconditionFailed()
                archive = self._archive_target(cinfo, old) if old is not None else None
                await self._io(self._commit_files, writer, meta, path, archive, ops)
            except BaseException:
                writer.abort()
                raise
        return info

    def _commit_files(self, writer, meta: ObjectMeta, path: str, archive, ops) -> None:
        """On an I/O thread: seal the upload (metadata, fsync), archive the old copy,
        rename into place, then fsync the directories while the index commits."""
        writer.seal(meta, path)
        dirs: set[str] = set()
        if archive is not None:
            arch_meta, arch_path = archive
            dirs |= self.disk.move(path, arch_path, arch_meta, sync=False)
            ops = [*ops, (Index.op_put_object, _row(arch_meta, ObjectInfo.of(arch_meta)))]
        dirs |= self.disk.install(writer, path, sync=False)
        indexed = self.index.submit(Index.op_many, ops)
        self.disk.sync_dirs(dirs)
        try:
            indexed.result()
        except ContainerGone:
            self.disk.remove(path)
            raise errors.NotFound() from None

    async def _io(self, fn, *args):
        """Run blocking file work on the store's I/O threads."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def _index(self, *ops) -> Any:
        """Apply index operations in one transaction (group-committed with others)."""
        return await asyncio.wrap_future(self.index.submit(Index.op_many, ops))

    def _archive_target(self, cinfo: ContainerInfo, old: ObjectMeta):
        where = cinfo.get("X-Versions-Location") or cinfo.get("X-History-Location")
        if not where:
            return None
        if self.get_container(cinfo.account, where) is None:
            raise errors.PreconditionFailed(f"Versions container {where} does not exist.")
        name = version_name(old.name, old.timestamp)
        meta = ObjectMeta(cinfo.account, where, name, old.timestamp, old.etag,
                          old.content_type, old.size, dict(old.headers), dict(old.sys))
        return meta, self.disk.path(cinfo.account, where, name)

    async def post_object(self, account: str, container: str, name: str,
                          headers: dict[str, str], content_type: str | None) -> ObjectMeta:
        """Replace an object's metadata (user metadata, Content-Type, expiry)."""
        path = self.disk.path(account, container, name)
        async with self._lock(path):
            meta = self.read_meta(account, container, name)
            if meta is None:
                raise errors.NotFound()
            keep = {k: v for k, v in meta.headers.items() if k == "X-Static-Large-Object"}
            meta.headers = {**keep, **headers}
            if content_type:
                meta.content_type = content_type
            await self._io(self.disk.update_meta, path, meta)
            values = {"content_type": meta.content_type, "delete_at": meta.delete_at}
            await self._index((Index.op_update_object, account, container, name, values))
        return meta

    async def delete_object(self, account: str, container: str, name: str, *,
                            versioned: bool = True, timestamp: str | None = None) -> bool:
        """Delete an object; versioned containers restore or archive as configured."""
        cinfo = self.get_container(account, container)
        if cinfo is None:
            raise errors.NotFound()
        path = self.disk.path(account, container, name)
        async with self._lock(path):
            meta = self.disk.read_meta(path)
            if meta is not None and (meta.account, meta.container, meta.name) != (
                    account, container, name):
                meta = None
            if timestamp is not None and (meta is None or meta.timestamp != timestamp):
                return False  # replaced since (the expirer's conditional delete)
            stack = cinfo.get("X-Versions-Location") if versioned else None
            history = cinfo.get("X-History-Location") if versioned else None
            if history and meta is not None and self.get_container(account, history):
                arch_name = version_name(name, meta.timestamp)
                arch = ObjectMeta(account, history, arch_name, meta.timestamp, meta.etag,
                                  meta.content_type, meta.size, dict(meta.headers),
                                  dict(meta.sys))
                await self._io(self.disk.move, path,
                                        self.disk.path(account, history, arch_name), arch)
                await self._index((Index.op_put_object, _row(arch, ObjectInfo.of(arch))),
                                  (Index.op_delete_object, account, container, name))
                return True
            existed = False
            if meta is not None:
                await self._io(self.disk.remove, path)
            existed = bool(await self._index((Index.op_delete_object, account, container,
                                              name))) or meta is not None
            if stack and self.get_container(account, stack):
                restored = await self._restore_version(account, container, name, stack)
                return existed or restored
            return existed

    async def _restore_version(self, account, container, name, where) -> bool:
        prefix = f"{len(name.encode()):03x}{name}/"
        rows = await self._io(lambda: self.list_objects(account, where, prefix=prefix,
                                                        reverse=True, limit=1))
        if not rows:
            return False
        arch_name = rows[0].name
        src = self.disk.path(account, where, arch_name)
        old = self.disk.read_meta(src)
        if old is None:
            return False
        meta = ObjectMeta(account, container, name, old.timestamp, old.etag, old.content_type,
                          old.size, dict(old.headers), dict(old.sys))
        dst = self.disk.path(account, container, name)
        await self._io(self.disk.move, src, dst, meta)
        await self._index((Index.op_put_object, _row(meta, ObjectInfo.of(meta))),
                          (Index.op_delete_object, account, where, arch_name))
        return True

    async def copy_object(self, src: tuple[str, str, str], dst: tuple[str, str, str], *,
                          headers: dict[str, str], content_type: str | None,
                          fresh: bool = False, manifest: bool = False) -> ObjectInfo:
        """Server-side copy; the copy gets the source's metadata plus ``headers``."""
        check_object_name(dst[2])
        cinfo = self.require_container(dst[0], dst[1])
        handle = await self._io(self.open_object, *src)
        if handle is None:
            raise errors.NotFound()
        try:
            smeta = handle.meta
            new_headers = {} if fresh else {k: v for k, v in smeta.headers.items()
                                            if k not in ("X-Static-Large-Object",
                                                         "X-Delete-At")}
            new_headers.update(headers)
            ctype = content_type or smeta.content_type
            large = bool(smeta.sys.get("slo") or smeta.headers.get("X-Object-Manifest"))
            sys: dict = {}
            if large and manifest:
                parts = [Part(*src, 0, handle.size, handle=handle)]
                if smeta.sys.get("slo"):
                    sys = dict(smeta.sys)
                    new_headers["X-Static-Large-Object"] = "True"
            else:
                parts = self.parts_of(handle)
                if large:
                    new_headers.pop("X-Object-Manifest", None)
            size = sum(p.end - p.start for p in parts)
            self._quota_guard(dst[0], cinfo, size)
            writer = await self.write_body(self.stream(parts), expected_size=size)
        finally:
            handle.close()
        try:
            meta = ObjectMeta(*dst, now_ts(), writer.md5.hexdigest(), ctype,
                              headers=new_headers, sys=sys)
        except BaseException:
            writer.abort()
            raise
        return await self._install(writer, meta, cinfo)

    # -- large objects --------------------------------------------------------

    def build_slo(self, account: str, segments: list[dict]) -> tuple[list[dict], int, str]:
        """Validate a SLO manifest (the client's format); returns what is stored,
        the total size and the large object's ETag."""
        if not isinstance(segments, list) or not segments:
            raise errors.BadRequest("Manifest must be a non-empty list.")
        if len(segments) > self.opts.max_manifest_segments:
            raise errors.BadRequest("Too many segments in manifest.")
        problems, stored = [], []
        md5 = hashlib.md5(usedforsecurity=False)
        total = 0
        for i, seg in enumerate(segments):
            if not isinstance(seg, dict) or not isinstance(seg.get("path"), str):
                raise errors.BadRequest(f"Index {i}: segment must have a path.")
            extra = set(seg) - {"path", "etag", "size_bytes", "range"}
            if extra:
                raise errors.BadRequest(f"Index {i}: extraneous keys {sorted(extra)}.")
            path = seg["path"]
            if not isinstance(seg.get("etag") or "", str) or not isinstance(
                    seg.get("range") or "", str):
                raise errors.BadRequest(f"Index {i}: etag and range must be strings.")
            if seg.get("size_bytes") is not None and (
                    isinstance(seg["size_bytes"], bool)
                    or not isinstance(seg["size_bytes"], int)):
                raise errors.BadRequest(f"Index {i}: size_bytes must be an integer.")
            cont, _, obj = path.lstrip("/").partition("/")
            if not cont or not obj:
                raise errors.BadRequest(f"Index {i}: path does not refer to an object.")
            meta = self.read_meta(account, cont, obj)
            if meta is None:
                problems.append([path, "404 Not Found"])
                continue
            info = ObjectInfo.of(meta)
            if seg.get("etag") and seg["etag"].strip('"') != info.etag:
                problems.append([path, "Etag Mismatch"])
            if seg.get("size_bytes") is not None and int(seg["size_bytes"]) != info.size:
                problems.append([path, "Size Mismatch"])
            if info.size == 0 and not seg.get("range"):
                problems.append([path, "Too small; each segment must be at least 1 byte."])
            entry = {"name": "/" + cont + "/" + obj, "bytes": info.size, "hash": info.etag,
                     "content_type": info.content_type,
                     "last_modified": _iso(meta.timestamp)}
            if info.slo:
                entry["sub_slo"] = True
            length = info.size
            if seg.get("range"):
                try:
                    start, end = _seg_range(seg["range"], info.size)
                except ValueError:
                    problems.append([path, "Unsatisfiable Range"])
                    continue
                entry["range"] = f"{start}-{end - 1}"
                length = end - start
                md5.update(f"{info.etag}:{entry['range']};".encode())
            else:
                md5.update(info.etag.encode())
            total += length
            stored.append(entry)
        if problems:
            raise errors.BadRequest("Errors:\n" + "\n".join(f"{p}, {r}" for p, r in problems))
        return stored, total, md5.hexdigest()

    async def put_slo(self, account: str, container: str, name: str, segments: list[dict], *,
                      content_type: str | None, headers: dict[str, str],
                      etag: str | None = None) -> ObjectInfo:
        stored, total, slo_etag = await self._io(self.build_slo, account, segments)
        if etag is not None and etag.strip('"') != slo_etag:
            raise errors.UnprocessableEntity("The provided ETag does not match the large "
                                             "object's ETag.")
        body = json.dumps(stored).encode()
        headers = {**headers, "X-Static-Large-Object": "True"}
        return await self.put_object(
            account, container, name, _once(body), content_type=content_type,
            headers=headers, sys={"slo": {"size": total, "etag": slo_etag}})

    async def delete_slo(self, account: str, container: str, name: str) -> dict:
        """multipart-manifest=delete: the segments, then the manifest."""
        handle = await self._io(self.open_object, account, container, name)
        if handle is None:
            raise errors.NotFound()
        try:
            if not handle.meta.sys.get("slo"):
                raise errors.BadRequest("Not an SLO manifest.")
            segs = self.slo_manifest(handle)
        finally:
            handle.close()
        result = {"deleted": 0, "not_found": 0, "errors": []}
        for seg in segs:
            cont, _, obj = seg["name"].lstrip("/").partition("/")
            try:
                if seg.get("sub_slo"):
                    sub = await self.delete_slo(account, cont, obj)
                    result["deleted"] += sub["deleted"]
                    result["not_found"] += sub["not_found"]
                    result["errors"] += sub["errors"]
                elif await self.delete_object(account, cont, obj):
                    result["deleted"] += 1
                else:
                    result["not_found"] += 1
            except errors.NotFound:
                result["not_found"] += 1
            except errors.ApiError as err:
                result["errors"].append([seg["name"], f"{err.status} {err.title}"])
        if await self.delete_object(account, container, name):
            result["deleted"] += 1
        else:
            result["not_found"] += 1
        return result

    # -- expiry ---------------------------------------------------------------

    async def expire(self) -> int:
        """Delete objects past their X-Delete-At (one sweep)."""
        now = int(time.time())
        rows = await self._io(self.index.expired, now)
        done = 0
        for row in rows:
            try:
                meta = self.disk.read_meta(self.disk.path(row.account, row.container,
                                                          row.name))
                if meta is not None and meta.delete_at and meta.delete_at <= now:
                    await self.delete_object(row.account, row.container, row.name,
                                             versioned=False, timestamp=meta.timestamp)
                elif meta is None:
                    await self._index((Index.op_delete_object, row.account, row.container,
                                       row.name))
                done += 1
            except errors.ApiError:
                continue
        return done

    # -- the in-process interface (image service) --------------------------------

    async def put(self, account: str, container: str, name: str, body, *,
                  content_type: str = "application/octet-stream", etag: str | None = None,
                  metadata: dict[str, str] | None = None,
                  content_length: int | None = None) -> ObjectInfo:
        """Store ``body`` (async iterator of bytes, iterable of bytes or a file-like
        with ``read``) as an object; ``metadata`` keys are X-Object-Meta-* names."""
        headers = {f"X-Object-Meta-{k.title()}": str(v) for k, v in (metadata or {}).items()}
        return await self.put_object(account, container, name, body,
                                     content_type=content_type, headers=headers, etag=etag,
                                     content_length=content_length)

    async def get(self, account: str, container: str, name: str, *, start: int = 0,
                  end: int | None = None) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
        """An object's info and its bytes [start, end) as an async iterator."""
        handle = await self._io(self.open_object, account, container, name)
        if handle is None:
            raise errors.NotFound()
        info = ObjectInfo.of(handle.meta)
        parts = self.parts_of(handle)
        if info.dlo:
            info.size, info.etag = self.dlo_info(account, info.dlo)

        async def body():
            try:
                async for chunk in self.stream(parts, start, end):
                    yield chunk
            finally:
                handle.close()

        return info, body()

    async def head(self, account: str, container: str, name: str) -> ObjectInfo:
        meta = await self._io(self.read_meta, account, container, name)
        if meta is None:
            raise errors.NotFound()
        return ObjectInfo.of(meta)

    async def delete(self, account: str, container: str, name: str) -> None:
        if not await self.delete_object(account, container, name):
            raise errors.NotFound()


# -- helpers ------------------------------------------------------------------

def version_name(name: str, timestamp: str) -> str:
    """Where a versioned container archives an old copy (Swift's naming)."""
    return f"{len(name.encode()):03x}{name}/{timestamp}"


def _apply_meta(meta: dict, set_meta: dict[str, str], remove: list[str]) -> None:
    for key in remove:
        meta.pop(key, None)
    for key, value in set_meta.items():
        if value == "":
            meta.pop(key, None)
        else:
            meta[key] = value


def check_meta_limits(opts, meta: dict[str, str], prefix: str) -> None:
    count = size = 0
    for key, value in meta.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if not name:
            raise errors.BadRequest("Metadata name cannot be empty.")
        if len(name) > opts.max_meta_name_length:
            raise errors.BadRequest(f"Metadata name too long: {key}")
        if len(value) > opts.max_meta_value_length:
            raise errors.BadRequest(f"Metadata value longer than "
                                    f"{opts.max_meta_value_length}: {key}")
        count += 1
        size += len(name) + len(value)
    if count > opts.max_meta_count:
        raise errors.BadRequest(f"Too many metadata items; max {opts.max_meta_count}")
    if size > opts.max_meta_overall_size:
        raise errors.BadRequest(f"Total metadata too large; max {opts.max_meta_overall_size}")


def header_text(value: str) -> str:
    """A header naming a container or object: UTF-8 (as HTTP carries it), %-quoted or not."""
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return urllib.parse.unquote(value)


def guess_type(name: str) -> str:
    import mimetypes

    ctype, _enc = mimetypes.guess_type(name, strict=False)
    return ctype or "application/octet-stream"


def _iso(ts: str) -> str:
    t = float(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}"


def _row(meta: ObjectMeta, info: ObjectInfo) -> dict:
    return {"account": meta.account, "container": meta.container, "name": meta.name,
            "size": info.size, "etag": info.etag, "content_type": meta.content_type,
            "timestamp": meta.timestamp, "delete_at": meta.delete_at}


def _logical_etag(handle: OpenObject) -> str:
    slo = handle.meta.sys.get("slo")
    return slo["etag"] if slo else handle.meta.etag


def _seg_range(spec: str, size: int) -> tuple[int, int]:
    """A segment's "a-b" / "a-" / "-n" range as [start, end)."""
    first, sep, last = spec.partition("-")
    if not sep:
        raise ValueError(spec)
    if first == "":
        n = int(last)
        start, end = max(size - n, 0), size
    else:
        start = int(first)
        end = size if last == "" else min(int(last) + 1, size)
    if start >= end or start >= size:
        raise ValueError(spec)
    return start, end


def _slice_parts(parts: list[Part], start: int, end: int) -> list[Part]:
    out, pos = [], 0
    for p in parts:
        length = p.end - p.start
        lo, hi = max(start, pos), min(end, pos + length)
        if lo < hi:
            out.append(Part(p.account, p.container, p.name, p.start + lo - pos,
                            p.start + hi - pos, p.handle, p.etag))
        pos += length
        if pos >= end:
            break
    return out


async def _once(data: bytes):
    yield data


async def _chunks(body, size: int) -> AsyncIterator[bytes]:
    """Bytes from an async iterator, a sync iterable, or a file-like object."""
    if hasattr(body, "__aiter__"):
        async for chunk in body:
            yield chunk
    elif hasattr(body, "read"):
        read = body.read
        if asyncio.iscoroutinefunction(read):
            while chunk := await read(size):
                yield chunk
        else:
            while chunk := await asyncio.to_thread(read, size):
                yield chunk
    elif isinstance(body, (bytes, bytearray, memoryview)):
        yield bytes(body)
    else:
        for chunk in body:
            yield chunk
