"""Base images of the container driver: one read-only loop mount per image per host.

``<state_path>/image-cache/<image_id>.raw`` holds the image's bytes (qcow2
converted to raw once); ``<state_path>/image-cache/<image_id>/`` is where it
is mounted read-only (``losetup --read-only`` + ``mount -o ro``), shared by
every instance of the image as the lower layer of their overlays.

How the bytes arrive is pluggable: a fetcher ``fn(image_meta, dest_path)``
registered with :func:`register_fetcher` (the compute service registers one
that reads the image service), else ``image_meta["local_path"]``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable

from pocketstack.compute.virt.base import DriverError

LOG = logging.getLogger(__name__)
ID_RE = re.compile(r"^[-_.a-zA-Z0-9]{1,80}$")

_fetchers: list[Callable[[dict, str], bool]] = []


def register_fetcher(fn: Callable[[dict, str], bool]) -> None:
    """``fn(image_meta, dest)`` writes the image to ``dest`` and returns True,
    or returns False when it cannot provide that image."""
    if fn not in _fetchers:
        _fetchers.append(fn)


def unregister_fetcher(fn) -> None:
    if fn in _fetchers:
        _fetchers.remove(fn)


def _image_format(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    return "qcow2" if head == b"QFI\xfb" else "raw"


class ImageCache:
    def __init__(self, state_path: str, rootwrap):
        self.dir = os.path.join(state_path, "image-cache")
        self.rootwrap = rootwrap
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        os.makedirs(self.dir, exist_ok=True)

    def _image_lock(self, image_id: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(image_id, threading.Lock())

    def mountpoint(self, image_id: str) -> str:
        return os.path.join(self.dir, image_id)

    def raw_path(self, image_id: str) -> str:
        return os.path.join(self.dir, f"{image_id}.raw")

    def ensure(self, image_meta: dict) -> str:
        """The mounted base of ``image_meta`` (fetching and mounting it if needed)."""
        image_id = str(image_meta.get("id") or "")
        if not ID_RE.match(image_id):
            raise DriverError(f"bad image id {image_id!r}")
        with self._image_lock(image_id):
            mnt = self.mountpoint(image_id)
            if os.path.ismount(mnt):
                return mnt
            raw = self.raw_path(image_id)
            if not os.path.exists(raw):
                self._fetch(image_meta, raw)
            os.makedirs(mnt, exist_ok=True)
            loop = self._loop_for(raw) or self.rootwrap.execute(
                "losetup", "--find", "--show", "--read-only", raw).strip()
            try:
                self.rootwrap.execute("mount", "-o", "ro", "-t", "ext4", loop, mnt)
            except Exception as exc:
                self.rootwrap.run("losetup", "-d", loop)
                raise DriverError(f"image {image_id} is not a root file system image "
                                  f"(ext4) the container driver can boot: {exc}") from exc
            if not os.path.exists(os.path.join(mnt, "sbin", "init")):
                self.release(image_id)
                raise DriverError(f"image {image_id} has no /sbin/init")
            return mnt

    def _fetch(self, image_meta: dict, raw: str) -> None:
        part = raw + ".part"
        done = False
        for fetcher in list(_fetchers):
            if fetcher(image_meta, part):
                done = True
                break
        if not done:
            local = image_meta.get("local_path")
            if not local or not os.path.exists(local):
                raise DriverError(f"image {image_meta.get('id')} data is not available")
            shutil.copyfile(local, part)
        if _image_format(part) == "qcow2":
            converted = raw + ".conv"
            proc = subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", part,
                                   converted], capture_output=True, text=True)
            if proc.returncode != 0:
                raise DriverError(f"converting image {image_meta.get('id')}: {proc.stderr}")
            os.replace(converted, part)
        os.replace(part, raw)

    def _loop_for(self, path: str) -> str | None:
        out = self.rootwrap.execute("losetup", "-j", path, "-O", "NAME", "-n", check=False)
        names = out.split()
        return names[0] if names else None

    def mounted(self) -> list[str]:
        if not os.path.isdir(self.dir):
            return []
        return [name for name in os.listdir(self.dir)
                if os.path.ismount(os.path.join(self.dir, name))]

    def release(self, image_id: str) -> None:
        """Unmount a base and free its loop device (when no instance uses it)."""
        with self._image_lock(image_id):
            mnt = self.mountpoint(image_id)
            if os.path.ismount(mnt):
                self.rootwrap.execute("umount", mnt)
            raw = self.raw_path(image_id)
            if os.path.exists(raw):
                for loop in self.rootwrap.execute("losetup", "-j", raw, "-O", "NAME", "-n",
                                                  check=False).split():
                    self.rootwrap.run("losetup", "-d", loop)
            try:
                os.rmdir(mnt)
            except OSError:
                pass
