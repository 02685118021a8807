"""A small NFSv3 client over libnfs (ctypes), for hosts without kernel NFS.

One :class:`NfsClient` is one mounted export (one libnfs context). libnfs
contexts are not thread-safe, so every call takes the client's lock; the
sync calls release the GIL while they wait on the network. Every call has a
timeout: a server that stops answering turns into an :class:`NfsError`
instead of a hung thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading

_lib = None
_lib_lock = threading.Lock()


class NfsError(OSError):
    pass


class _Stat64(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size", "blksize", "blocks",
        "atime", "mtime", "ctime", "atime_nsec", "mtime_nsec", "ctime_nsec", "used")]


class _StatVfs64(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
        "f_favail", "f_fsid", "f_flag", "f_namemax")]


class _Dirent(ctypes.Structure):
    pass


_Dirent._fields_ = [("next", ctypes.POINTER(_Dirent)), ("name", ctypes.c_char_p)]


def library():
    """The loaded libnfs, or None when it is not installed."""
    global _lib
    with _lib_lock:
        if _lib is None:
            path = ctypes.util.find_library("nfs") or "libnfs.so.13"
            try:
                lib = ctypes.CDLL(path, use_errno=True)
            except OSError:
                return None
            vp, cp, u64, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_int
            sigs = {
                "nfs_init_context": ([], vp),
                "nfs_destroy_context": ([vp], None),
                "nfs_get_error": ([vp], cp),
                "nfs_set_timeout": ([vp, i], None),
                "nfs_set_autoreconnect": ([vp, i], None),
                "nfs_mount": ([vp, cp, cp], i),
                "nfs_stat64": ([vp, cp, ctypes.POINTER(_Stat64)], i),
                "nfs_statvfs64": ([vp, cp, ctypes.POINTER(_StatVfs64)], i),
                "nfs_unlink": ([vp, cp], i),
                "nfs_rename": ([vp, cp, cp], i),
                "nfs_truncate": ([vp, cp, u64], i),
                "nfs_mkdir": ([vp, cp], i),
                "nfs_create": ([vp, cp, i, i, ctypes.POINTER(vp)], i),
                "nfs_open": ([vp, cp, i, ctypes.POINTER(vp)], i),
                "nfs_close": ([vp, vp], i),
                "nfs_pread": ([vp, vp, u64, u64, ctypes.c_void_p], i),
                "nfs_pwrite": ([vp, vp, u64, u64, ctypes.c_void_p], i),
                "nfs_fsync": ([vp, vp], i),
                "nfs_opendir": ([vp, cp, ctypes.POINTER(vp)], i),
                "nfs_readdir": ([vp, vp], ctypes.POINTER(_Dirent)),
                "nfs_closedir": ([vp, vp], None),
            }
            for name, (args, res) in sigs.items():
                fn = getattr(lib, name)
                fn.argtypes = args
                fn.restype = res
            _lib = lib
    return _lib


class NfsClient:
    """One export of one server, e.g. ``NfsClient("127.0.0.1", "/srv/share")``."""

    def __init__(self, server: str, export: str, timeout: float = 60.0):
        self.server = server
        self.export = export
        self.timeout = timeout
        self._lock = threading.Lock()
        self._ctx = None

    # -- context -----------------------------------------------------------

    def _context(self):
        if self._ctx is None:
            lib = library()
            if lib is None:
                raise NfsError(errno.ENOSYS, "libnfs is not installed")
            ctx = lib.nfs_init_context()
            if not ctx:
                raise NfsError(errno.ENOMEM, "nfs_init_context failed")
            lib.nfs_set_timeout(ctx, int(self.timeout * 1000))
            lib.nfs_set_autoreconnect(ctx, 0)
            if lib.nfs_mount(ctx, self.server.encode(), self.export.encode()) != 0:
                message = (lib.nfs_get_error(ctx) or b"").decode(errors="replace")
                lib.nfs_destroy_context(ctx)
                raise NfsError(errno.EIO, f"cannot mount {self.server}:{self.export}: {message}")
            self._ctx = ctx
        return self._ctx

    def _drop(self) -> None:
        if self._ctx is not None:
            library().nfs_destroy_context(self._ctx)
            self._ctx = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _call(self, name: str, *args, ok_missing: bool = False):
        """Run one libnfs call under the lock; a broken context is rebuilt next time."""
        with self._lock:
            ctx = self._context()
            rc = getattr(library(), name)(ctx, *args)
            if isinstance(rc, int) and rc < 0:
                code = -rc
                message = (library().nfs_get_error(ctx) or b"").decode(errors="replace")
                if code == errno.ENOENT and ok_missing:
                    return None
                if code not in (errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EACCES,
                                errno.EPERM, errno.ENOTDIR, errno.EISDIR):
                    self._drop()  # a transport error: start a fresh connection next time
                raise NfsError(code, f"{name}: {message}")
            return rc

    @staticmethod
    def _path(name: str) -> bytes:
        return ("/" + name.lstrip("/")).encode()

    # -- operations --------------------------------------------------------

    def stat(self, name: str) -> _Stat64 | None:
        st = _Stat64()
        if self._call("nfs_stat64", self._path(name), ctypes.byref(st), ok_missing=True) is None:
            return None
        return st

    def statvfs(self) -> _StatVfs64:
        st = _StatVfs64()
        self._call("nfs_statvfs64", b"/", ctypes.byref(st))
        return st

    def unlink(self, name: str) -> bool:
        return self._call("nfs_unlink", self._path(name), ok_missing=True) is not None

    def rename(self, old: str, new: str) -> None:
        self._call("nfs_rename", self._path(old), self._path(new))

    def truncate(self, name: str, size: int) -> None:
        self._call("nfs_truncate", self._path(name), size)

    def create(self, name: str, size: int = 0, mode: int = 0o600) -> None:
        """Create a new file (fails if it exists) of ``size`` bytes (sparse)."""
        fh = ctypes.c_void_p()
        flags = os.O_CREAT | os.O_EXCL | os.O_RDWR
        self._call("nfs_create", self._path(name), flags, mode, ctypes.byref(fh))
        try:
            if size:
                self._call("nfs_truncate", self._path(name), size)
        finally:
            with self._lock:
                if self._ctx is not None:
                    library().nfs_close(self._ctx, fh)

    def listdir(self) -> list[str]:
        with self._lock:
            ctx = self._context()
            lib = library()
            handle = ctypes.c_void_p()
            rc = lib.nfs_opendir(ctx, b"/", ctypes.byref(handle))
            if rc < 0:
                message = (lib.nfs_get_error(ctx) or b"").decode(errors="replace")
                self._drop()
                raise NfsError(-rc, f"nfs_opendir: {message}")
            names = []
            try:
                while True:
                    ent = lib.nfs_readdir(ctx, handle)
                    if not ent:
                        break
                    name = ent.contents.name.decode(errors="replace")
                    if name not in (".", ".."):
                        names.append(name)
            finally:
                lib.nfs_closedir(ctx, handle)
            return names

    def write_zeros(self, name: str, length: int, chunk: int = 1 << 20) -> None:
        """Overwrite the first ``length`` bytes of a file with zeros."""
        fh = ctypes.c_void_p()
        self._call("nfs_open", self._path(name), os.O_WRONLY, ctypes.byref(fh))
        zeros = ctypes.create_string_buffer(chunk)
        try:
            offset = 0
            while offset < length:
                n = min(chunk, length - offset)
                written = self._call("nfs_pwrite", fh, offset, n, zeros)
                offset += written if written > 0 else n
            self._call("nfs_fsync", fh)
        finally:
            with self._lock:
                if self._ctx is not None:
                    library().nfs_close(self._ctx, fh)
