"""Where volume files live: a local directory (the file driver, a mounted NFS
share) or an NFS export reached in user space through libnfs.

A share only knows files by name; ``ref(name)`` is what ``qemu-img`` and a
hypervisor open (a path, or an ``nfs://`` URL), ``backing_ref(name)`` what a
qcow2 overlay records as its backing file.
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod

from pocketstack.volume.drivers.libnfs import NfsClient, NfsError

SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)


class ShareError(Exception):
    """The share cannot be reached or refused an operation."""


class Share(ABC):
    name: str  # how the config names it (a directory, or host:/export)
    protocol: str  # "file" or "nfs"
    reopen_rw = True  # qemu can reopen a backing file of this share read-write

    @abstractmethod
    def ref(self, filename: str) -> str: ...

    def backing_ref(self, filename: str) -> str:
        return self.ref(filename)

    @abstractmethod
    def exists(self, filename: str) -> bool: ...

    @abstractmethod
    def size(self, filename: str) -> int | None: ...

    @abstractmethod
    def remove(self, filename: str, *, zero: bool = False) -> bool: ...

    @abstractmethod
    def create_raw(self, filename: str, size: int, *, sparse: bool = True) -> None: ...

    @abstractmethod
    def truncate(self, filename: str, size: int) -> None: ...

    @abstractmethod
    def listdir(self) -> list[str]: ...

    @abstractmethod
    def capacity(self) -> tuple[int, int]:
        """(total bytes, free bytes)."""

    def local_path(self, filename: str) -> str | None:
        return None

    def connection(self, filename: str) -> dict:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - most shares hold nothing open
        return None


class LocalShare(Share):
    """A directory on this host: the file driver's, or a mounted NFS share."""

    def __init__(self, path: str, *, name: str | None = None, protocol: str = "file",
                 export: str | None = None):
        self.path = path
        self.name = name or path
        self.protocol = protocol
        self.export = export  # host:/export when this is a mounted NFS share
        os.makedirs(path, exist_ok=True)

    def _p(self, filename: str) -> str:
        return os.path.join(self.path, filename)

    def ref(self, filename: str) -> str:
        return self._p(filename)

    def backing_ref(self, filename: str) -> str:
        return filename  # relative: the overlay sits in the same directory

    def local_path(self, filename: str) -> str:
        return self._p(filename)

    def exists(self, filename: str) -> bool:
        return os.path.exists(self._p(filename))

    def size(self, filename: str) -> int | None:
        try:
            return os.stat(self._p(filename)).st_size
        except FileNotFoundError:
            return None

    def remove(self, filename: str, *, zero: bool = False) -> bool:
        path = self._p(filename)
        try:
            if zero:
                zero_data(path)
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ShareError(f"cannot remove {filename}: {exc}") from exc

    def create_raw(self, filename: str, size: int, *, sparse: bool = True) -> None:
        fd = os.open(self._p(filename), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            if sparse:
                os.ftruncate(fd, size)
            else:
                os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)

    def truncate(self, filename: str, size: int) -> None:
        os.truncate(self._p(filename), size)

    def listdir(self) -> list[str]:
        return os.listdir(self.path)

    def capacity(self) -> tuple[int, int]:
        st = os.statvfs(self.path)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def connection(self, filename: str) -> dict:
        if self.protocol == "nfs":
            return {"export": self.export, "name": filename, "mount_point": self.path,
                    "path": self._p(filename)}
        return {"path": self._p(filename)}


def zero_data(path: str, chunk: int = 1 << 20) -> None:
    """Overwrite the allocated ranges of a file with zeros (holes stay holes)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        end = os.fstat(fd).st_size
        zeros = bytes(chunk)
        offset = 0
        while offset < end:
            try:
                start = os.lseek(fd, offset, SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break  # only a hole is left
                start = offset
            stop = os.lseek(fd, start, SEEK_HOLE)
            pos = start
            while pos < stop:
                pos += os.pwrite(fd, zeros[: min(chunk, stop - pos)], pos)
            offset = stop
        os.fsync(fd)
    finally:
        os.close(fd)


class LibnfsShare(Share):
    """An NFS export reached without a kernel client: libnfs for file
    operations, nfs:// URLs for qemu-img and hypervisors."""

    protocol = "nfs"
    reopen_rw = False

    def __init__(self, share: str, timeout: float):
        host, _, export = share.partition(":")
        if not host or not export.startswith("/"):
            raise ShareError(f"invalid NFS share '{share}': expected host:/export")
        self.name = share
        self.host = host
        self.export = export.rstrip("/") or "/"
        self.client = NfsClient(host, self.export, timeout=timeout)

    def _call(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except NfsError as exc:
            raise ShareError(f"NFS share {self.name}: {exc.strerror or exc}") from exc

    def ref(self, filename: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"nfs://{host}{self.export.rstrip('/')}/{filename}"

    def exists(self, filename: str) -> bool:
        return self._call(self.client.stat, filename) is not None

    def size(self, filename: str) -> int | None:
        st = self._call(self.client.stat, filename)
        return None if st is None else st.size

    def remove(self, filename: str, *, zero: bool = False) -> bool:
        if zero:
            st = self._call(self.client.stat, filename)
            if st is None:
                return False
            self._call(self.client.write_zeros, filename, st.size)
        return self._call(self.client.unlink, filename)

    def create_raw(self, filename: str, size: int, *, sparse: bool = True) -> None:
        self._call(self.client.create, filename, size)
        if not sparse:
            self._call(self.client.write_zeros, filename, size)

    def truncate(self, filename: str, size: int) -> None:
        self._call(self.client.truncate, filename, size)

    def listdir(self) -> list[str]:
        return self._call(self.client.listdir)

    def capacity(self) -> tuple[int, int]:
        st = self._call(self.client.statvfs)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def connection(self, filename: str) -> dict:
        return {"export": self.name, "name": filename, "url": self.ref(filename)}

    def close(self) -> None:
        self.client.close()
