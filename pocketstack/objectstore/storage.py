"""Objects on the local file system, durable and streamed.

Layout under ``root``::

    objects/<h[:3]>/<h>     one file per object, h = md5 of "/account/container/object"
    tmp/                    uploads in progress (same file system, so rename is atomic)

An object's metadata (its name, ETag, Content-Type, timestamp, user metadata)
is one extended attribute on its file, set on the temporary file *before* it
is fsync'd and renamed into place: data and metadata appear together, in one
atomic step, or not at all. A metadata update (POST) replaces that attribute
in place (setxattr is atomic) and fsyncs. Readers open the file once and keep
reading the inode they opened even if a writer replaces the name meanwhile.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import uuid
from dataclasses import dataclass, field

import msgpack

from pocketstack.common import errors

XATTR = "user.pocketstack.object"
WRITEBACK_EVERY = 8 * 1024 * 1024  # start flushing a big upload while it is written
DIRECT_MIN = 1024 * 1024  # with direct_io, uploads this big (or unsized) skip the cache
DIRECT_BUFFER = 1024 * 1024
ALIGN = 4096
TMP_PREFIX = ".tmp-"  # an upload being sealed beside its object (never an object's name)


def _sync_file_range():
    """libc's sync_file_range (Linux), to start writeback early; None elsewhere."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
        fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
        return fn
    except (OSError, AttributeError):
        return None


SYNC_FILE_RANGE = _sync_file_range()
SYNC_FILE_RANGE_WRITE = 2


def name_hash(account: str, container: str, obj: str) -> str:
    key = f"/{account}/{container}/{obj}".encode("utf-8", "surrogateescape")
    return hashlib.md5(key, usedforsecurity=False).hexdigest()


@dataclass
class ObjectMeta:
    """What is kept with an object's bytes."""

    account: str
    container: str
    name: str
    timestamp: str
    etag: str
    content_type: str
    size: int = 0  # the file's size (for a SLO, the manifest's)
    headers: dict[str, str] = field(default_factory=dict)  # user-visible extra headers
    sys: dict = field(default_factory=dict)  # slo: {"size", "etag"}; symlinks etc.

    def pack(self) -> bytes:
        return msgpack.packb([1, self.account, self.container, self.name, self.timestamp,
                              self.etag, self.content_type, self.size, self.headers, self.sys])

    @classmethod
    def unpack(cls, raw: bytes) -> ObjectMeta:
        (_v, account, container, name, ts, etag, ctype, size, headers,
         sys) = msgpack.unpackb(raw)
        return cls(account, container, name, ts, etag, ctype, size, headers, sys)

    @property
    def delete_at(self) -> int | None:
        value = self.headers.get("X-Delete-At")
        return int(value) if value else None


class OpenObject:
    """An open object file: its metadata and positional reads of its bytes."""

    __slots__ = ("fd", "meta", "size", "path", "direct")

    def __init__(self, fd: int, meta: ObjectMeta, size: int, path: str):
        self.fd = fd
        self.meta = meta
        self.size = size
        self.path = path
        self.direct = False

    def read(self, offset: int, length: int) -> bytes:
        if self.direct:
            with mmap.mmap(-1, length + 2 * ALIGN) as buf:
                return self.read_direct(offset, length, buf)
        return os.pread(self.fd, length, offset)

    def go_direct(self) -> bool:
        """Read this (big) object bypassing the page cache from now on, as Swift
        drops big objects from the cache: no kernel copy and no cache churn."""
        if self.direct:
            return True
        try:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | os.O_DIRECT)
        except (OSError, AttributeError):
            return False
        self.direct = True
        return True

    def read_direct(self, offset: int, length: int, buf: mmap.mmap) -> bytes:
        """``read`` for an O_DIRECT descriptor, through an aligned buffer
        (at least ``length`` + 4 KiB)."""
        start = offset - offset % ALIGN
        skip = offset - start
        want = -(-(skip + length) // ALIGN) * ALIGN
        view = memoryview(buf)[:want]
        try:
            got = os.preadv(self.fd, [view], start)
        finally:
            view.release()
        got = min(max(got - skip, 0), length)
        return buf[skip:skip + got]

    def sequential(self) -> None:
        """Tell the kernel a long sequential read follows (bigger readahead)."""
        try:
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except (OSError, AttributeError):
            pass

    def read_all(self) -> bytes:
        chunks, offset = [], 0
        while offset < self.size:
            data = os.pread(self.fd, self.size - offset, offset)
            if not data:
                break
            chunks.append(data)
            offset += len(data)
        return b"".join(chunks)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self):
        self.close()


class Writer:
    """A new object being written to a temporary file; ``seal`` makes it durable.

    Uploads go through the page cache, their writeback started every few MiB so the
    final fsync has little left to flush, and stay there for the reads that follow.
    With ``direct_io``, big or unsized ones bypass it (O_DIRECT, through one aligned
    1 MiB buffer): the kernel neither copies the bytes nor writes them back later,
    so an upload costs less CPU, but reads come from the disk. Small ones are
    always written through the cache; with ``hold`` they wait
    in memory and the file is only created by ``seal`` (on an I/O thread, where
    its fsync is anyway), keeping all of a small upload's file calls there.
    """

    def __init__(self, disk: DiskStore, expected_size: int | None = None, *,
                 hold: bool = False):
        self.disk = disk
        self.tmp_path = os.path.join(disk.tmp_dir, uuid.uuid4().hex)
        self.buf: mmap.mmap | None = None
        self.used = 0  # bytes waiting in ``buf``
        self.fd = -1
        self.held: list | None = [] if hold else None
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.flushed = 0
        if not hold:
            self._open(expected_size)

    def _open(self, expected_size: int | None) -> None:
        disk = self.disk
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        if disk.direct_io and (expected_size is None or expected_size >= DIRECT_MIN):
            try:
                self.fd = os.open(self.tmp_path, flags | os.O_DIRECT, 0o640)
                self.buf = mmap.mmap(-1, DIRECT_BUFFER)
            except OSError:  # a file system without O_DIRECT
                if self.fd >= 0:
                    os.close(self.fd)
                    os.unlink(self.tmp_path)
                self.fd = -1
                self.buf = None
                disk.direct_io = False
        if self.fd < 0:
            self.fd = os.open(self.tmp_path, flags, 0o640)

    def write_many(self, chunks: list) -> None:
        """Hash and write several chunks."""
        for chunk in chunks:
            self.md5.update(chunk)
        if self.held is not None:
            self.held.extend(chunks)
            self.size += sum(len(c) for c in chunks)
        else:
            self.store_many(chunks)

    def store(self, block: memoryview) -> None:
        """Write without hashing. A page-aligned block of whole pages (what
        ``bodystream.pump`` passes) goes to disk straight from where it is."""
        if self.buf is not None and not self.used and len(block) % ALIGN == 0:
            self._write_all(block)
            self.size += len(block)
        else:
            self.store_many([block])

    def store_many(self, chunks: list) -> None:
        if self.buf is not None:
            for chunk in chunks:
                self._buffer(chunk)
            return
        total = sum(len(c) for c in chunks)
        written = os.writev(self.fd, chunks) if len(chunks) <= 1024 else 0
        self.size += written
        if written < total:  # a short write: finish chunk by chunk
            offset = written
            for chunk in chunks:
                if offset >= len(chunk):
                    offset -= len(chunk)
                    continue
                self._write_all(memoryview(chunk)[offset:])
                self.size += len(chunk) - offset
                offset = 0
        if SYNC_FILE_RANGE is not None and self.size - self.flushed >= WRITEBACK_EVERY:
            # Start writing this part to disk now, so the fsync at the end has little
            # left to do (as Swift's mb_per_sync). It does not wait for the disk.
            SYNC_FILE_RANGE(self.fd, self.flushed, self.size - self.flushed,
                            SYNC_FILE_RANGE_WRITE)
            self.flushed = self.size

    def _buffer(self, chunk) -> None:
        view = memoryview(chunk)
        while view:
            n = min(len(view), DIRECT_BUFFER - self.used)
            self.buf[self.used:self.used + n] = view[:n]
            self.used += n
            self.size += n
            view = view[n:]
            if self.used == DIRECT_BUFFER:
                self._write_buffer(DIRECT_BUFFER)
                self.used = 0

    def _write_buffer(self, length: int) -> None:
        with memoryview(self.buf) as view, view[:length] as part:
            self._write_all(part)

    def _write_all(self, view: memoryview) -> None:
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.write_many([data])

    def seal(self, meta: ObjectMeta, path: str | None = None) -> None:
        """Attach the metadata and make data + metadata durable (not yet visible).
        A held upload is created next to ``path``, where it is to live: installing
        it is then a rename within one directory, which contends for no lock
        across the store, as a rename out of the shared temporary directory does."""
        if self.held is not None:
            held, self.held = self.held, None
            if path is not None:
                self.tmp_path = os.path.join(self.disk.dir_for(path),
                                             TMP_PREFIX + uuid.uuid4().hex)
            self._open(self.size)
            self.size = 0  # counted again as written
            self.store_many(held)
        if self.buf is not None:
            if self.used:
                padded = -(-self.used // ALIGN) * ALIGN
                self._write_buffer(padded)
                os.ftruncate(self.fd, self.size)
                self.used = 0
            self.buf.close()
            self.buf = None
        meta.size = self.size
        try:
            os.setxattr(self.fd, XATTR, meta.pack())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.E2BIG, errno.ERANGE):
                raise errors.BadRequest("Metadata too large.") from None
            raise
        if self.disk.fsync:
            os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1

    def abort(self) -> None:
        if self.buf is not None:
            self.buf.close()
            self.buf = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass


class DiskStore:
    def __init__(self, root: str, *, fsync: bool = True, direct_io: bool = False):
        self.root = root
        self.fsync = fsync
        self.direct_io = direct_io and hasattr(os, "O_DIRECT")
        self.obj_dir = os.path.join(root, "objects")
        self.tmp_dir = os.path.join(root, "tmp")
        self._made: set[str] = set()

    def setup(self) -> None:
        os.makedirs(self.obj_dir, exist_ok=True)
        os.makedirs(self.tmp_dir, exist_ok=True)
        # Uploads that were in progress when the process stopped were never acknowledged.
        for name in os.listdir(self.tmp_dir):
            try:
                os.unlink(os.path.join(self.tmp_dir, name))
            except OSError:
                pass
        probe = os.path.join(self.tmp_dir, "xattr-probe")
        with open(probe, "wb") as f:
            try:
                os.setxattr(f.fileno(), XATTR, b"1")
            except OSError as exc:
                raise RuntimeError(f"objectstore root {self.root} does not support user "
                                   f"extended attributes: {exc}") from None
        os.unlink(probe)

    def path(self, account: str, container: str, obj: str) -> str:
        h = name_hash(account, container, obj)
        return os.path.join(self.obj_dir, h[:3], h)

    def dir_for(self, path: str) -> str:
        d = os.path.dirname(path)
        if d not in self._made:
            if not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
                self._fsync_dir(self.obj_dir)
            self._made.add(d)
        return d

    def _fsync_dir(self, d: str) -> None:
        if not self.fsync:
            return
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def writer(self, expected_size: int | None = None, *, hold: bool = False) -> Writer:
        return Writer(self, expected_size, hold=hold)

    def install(self, writer: Writer, path: str, *, sync: bool = True) -> set[str]:
        """Rename a sealed upload into place; the directory fsync makes the rename
        durable (done here, or by the caller with ``sync_dirs`` when ``sync`` is off)."""
        d = self.dir_for(path)
        os.rename(writer.tmp_path, path)
        if sync:
            self._fsync_dir(d)
        return {d}

    def move(self, src: str, dst: str, meta: ObjectMeta, *, sync: bool = True) -> set[str]:
        """Give an existing object a new name (versioning archives the old copy so)."""
        d = self.dir_for(dst)
        os.setxattr(src, XATTR, meta.pack())
        os.rename(src, dst)
        dirs = {d, os.path.dirname(src)}
        if sync:
            self.sync_dirs(dirs)
        return dirs

    def sync_dirs(self, dirs) -> None:
        for d in dirs:
            self._fsync_dir(d)

    # -- crash recovery ---------------------------------------------------------

    @property
    def marker(self) -> str:
        return os.path.join(self.root, "running")

    def mark_running(self) -> bool:
        """Note that the store is in use; True if it was not stopped cleanly before."""
        unclean = os.path.exists(self.marker)
        if not unclean:
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
                f.flush()
                os.fsync(f.fileno())
            self._fsync_dir(self.root)
        return unclean

    def mark_stopped(self) -> None:
        try:
            os.unlink(self.marker)
        except FileNotFoundError:
            pass

    def open(self, path: str) -> OpenObject | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            meta = ObjectMeta.unpack(os.getxattr(fd, XATTR))
            size = os.fstat(fd).st_size
        except Exception:
            os.close(fd)
            raise
        return OpenObject(fd, meta, size, path)

    def read_meta(self, path: str) -> ObjectMeta | None:
        try:
            return ObjectMeta.unpack(os.getxattr(path, XATTR))
        except FileNotFoundError:
            return None

    def update_meta(self, path: str, meta: ObjectMeta) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                os.setxattr(fd, XATTR, meta.pack())
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.E2BIG, errno.ERANGE):
                    raise errors.BadRequest("Metadata too large.") from None
                raise
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, path: str) -> bool:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        self._fsync_dir(os.path.dirname(path))
        return True

    def walk(self):
        """Every stored object's metadata (rebuilding the index after a crash)."""
        for sub in sorted(os.listdir(self.obj_dir)):
            d = os.path.join(self.obj_dir, sub)
            for name in os.listdir(d):
                if name.startswith(TMP_PREFIX):  # a crash caught it being sealed
                    os.unlink(os.path.join(d, name))
                    continue
                meta = self.read_meta(os.path.join(d, name))
                if meta is not None:
                    yield meta
