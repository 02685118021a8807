"""The volume driver: one file per volume on a share, snapshots as qcow2 overlays.

Both drivers keep a volume as a chain of files on one share (a pool):

    volume-<id>  <-  volume-<id>.<snap1>  <-  volume-<id>.<snap2>   (active)

The first file is raw (or qcow2); taking snapshot S freezes the active file
(S's data) and puts a new qcow2 overlay named after S on top, which becomes
the active file. Deleting S merges the overlay that followed it into S's
file (``qemu-img commit``), points the next overlay at the merged file and
removes the now-empty overlay, so the chain stays linear and short. Volumes
from a snapshot or another volume are flat copies (``qemu-img convert``),
so no other volume ever depends on a chain.

``provider_location`` of a volume: ``{"pool": <share>, "chain": [[file,
fmt], ...]}`` (last is active); of a snapshot: ``{"pool", "file", "fmt"}``.
"""

from __future__ import annotations

import logging
import os
import threading

from pocketstack.volume import commands
from pocketstack.volume.drivers.shares import Share, ShareError

LOG = logging.getLogger(__name__)

GiB = 1 << 30


class DriverError(Exception):
    """A driver operation failed; the message is fit for the user."""


class Driver:
    protocol = "file"
    snapshots_supported = True

    def __init__(self, backend: str, options, conf):
        self.backend = backend
        self.options = options
        self.conf = conf
        self.shares: dict[str, Share] = {}
        self.qcow2 = False
        self.sparse = True
        self.zero_on_delete = options.volume_clear == "zero"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------

    def setup(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        for share in self.shares.values():
            share.close()

    def lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def op_timeout(self, size_gb: int = 0) -> float | None:
        return None

    def share(self, pool: str) -> Share:
        try:
            return self.shares[pool]
        except KeyError:
            raise DriverError(f"pool {pool} is not configured on backend {self.backend}") from None

    # -- capacity ------------------------------------------------------------

    def pools(self) -> list[dict]:
        """Each pool (share) with its capacity; an unreachable one is reported down."""
        result = []
        for name, share in self.shares.items():
            try:
                total, free = share.capacity()
                up = True
            except (ShareError, OSError) as exc:
                LOG.warning("backend %s pool %s is down: %s", self.backend, name, exc)
                total, free, up = 0, 0, False
            result.append({"name": name, "total_capacity_gb": round(total / GiB, 2),
                           "free_capacity_gb": round(free / GiB, 2), "up": up})
        return result

    # -- volumes -----------------------------------------------------------

    @staticmethod
    def base_name(volume_id: str) -> str:
        return f"volume-{volume_id}"

    def _guard(self, what: str, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except ShareError as exc:
            raise DriverError(f"{what} failed: {exc}") from exc
        except commands.CommandError as exc:
            raise DriverError(f"{what} failed: {exc}") from exc
        except OSError as exc:
            raise DriverError(f"{what} failed: {exc.strerror or exc}") from exc

    def create_volume(self, volume_id: str, size_gb: int, pool: str) -> dict:
        share = self.share(pool)
        name = self.base_name(volume_id)
        size = size_gb * GiB

        def create():
            if self.qcow2:
                commands.qemu_img_create(share.ref(name), "qcow2", size,
                                         preallocate=not self.sparse,
                                         timeout=self.op_timeout(size_gb))
            else:
                share.create_raw(name, size, sparse=self.sparse)

        self._guard("creating the volume file", create)
        return {"pool": pool, "chain": [[name, "qcow2" if self.qcow2 else "raw"]]}

    def create_from_source(self, volume_id: str, size_gb: int, pool: str, src_ref: str,
                           src_fmt: str | None) -> dict:
        """A new volume holding a copy of ``src_ref`` (a chain file, an image file)."""
        share = self.share(pool)
        name = self.base_name(volume_id)
        fmt = "qcow2" if self.qcow2 else "raw"

        def copy():
            commands.qemu_img_convert(src_ref, share.ref(name), src_fmt=src_fmt, dst_fmt=fmt,
                                      sparse=self.sparse, timeout=self.op_timeout(size_gb))
            current = share.size(name) if fmt == "raw" else None
            if fmt == "raw" and current is not None and current < size_gb * GiB:
                share.truncate(name, size_gb * GiB)
            elif fmt == "qcow2":
                commands.qemu_img_resize(share.ref(name), size_gb * GiB, fmt,
                                         timeout=self.op_timeout())

        self._guard("copying into the volume", copy)
        return {"pool": pool, "chain": [[name, fmt]]}

    def volume_files(self, volume_id: str, pool: str) -> list[str]:
        share = self.share(pool)
        base = self.base_name(volume_id)
        names = self._guard("listing the share", share.listdir)
        return [n for n in names if n == base or n.startswith(base + ".")]

    def delete_files(self, pool: str, names: list[str]) -> None:
        share = self.share(pool)
        for name in names:
            self._guard(f"removing {name}", share.remove, name, zero=self.zero_on_delete)

    def delete_volume(self, volume_id: str, location: dict | None, pool: str) -> None:
        """Remove every file of the volume (its chain and anything a failed
        operation left), zeroing the bytes first when volume_clear=zero."""
        self.delete_files(pool, self.volume_files(volume_id, pool))

    def extend_volume(self, location: dict, size_gb: int) -> None:
        share = self.share(location["pool"])
        name, fmt = location["chain"][-1]
        if fmt == "raw":
            self._guard("extending the volume", share.truncate, name, size_gb * GiB)
        else:
            self._guard("extending the volume", commands.qemu_img_resize, share.ref(name),
                        size_gb * GiB, fmt, timeout=self.op_timeout())

    def source(self, location: dict) -> tuple[str, str]:
        """(ref, fmt) of a volume's active file or a snapshot's file, for reading."""
        share = self.share(location["pool"])
        if "chain" in location:
            name, fmt = location["chain"][-1]
        else:
            name, fmt = location["file"], location["fmt"]
        return share.ref(name), fmt

    # -- snapshots -----------------------------------------------------------

    def create_snapshot(self, volume_id: str, location: dict, snapshot_id: str,
                        size_gb: int) -> tuple[dict, dict]:
        if not self.snapshots_supported:
            raise DriverError(f"backend {self.backend} does not support snapshots")
        share = self.share(location["pool"])
        active, fmt = location["chain"][-1]
        overlay = f"{self.base_name(volume_id)}.{snapshot_id}"
        self._guard("creating the snapshot overlay", commands.qemu_img_create,
                    share.ref(overlay), "qcow2", size_gb * GiB,
                    backing=share.backing_ref(active), backing_fmt=fmt,
                    timeout=self.op_timeout())
        new_location = {**location, "chain": [*location["chain"], [overlay, "qcow2"]]}
        return new_location, {"pool": location["pool"], "file": active, "fmt": fmt}

    def delete_snapshot(self, location: dict, snap_location: dict | None,
                        others: dict[str, dict]) -> tuple[dict, dict[str, dict]]:
        """Merge away the overlay that followed the snapshot's file.

        ``others`` maps the volume's other snapshots to their locations; the
        changed ones are returned with the volume's new location."""
        if not snap_location:
            return location, {}
        share = self.share(location["pool"])
        chain = [list(x) for x in location["chain"]]
        names = [n for n, _ in chain]
        frozen = snap_location["file"]
        if frozen not in names or names.index(frozen) == len(names) - 1:
            return location, {}
        i = names.index(frozen)
        child = chain[i + 1][0]
        frozen_fmt = chain[i][1]
        timeout = self.op_timeout(1)

        def merge():
            if share.reopen_rw:
                # C's data into F: cheap, the overlay is usually small
                commands.qemu_img_commit(share.ref(child), timeout=timeout)
                if i + 2 < len(chain):
                    commands.qemu_img_rebase_unsafe(share.ref(chain[i + 2][0]),
                                                    share.backing_ref(frozen), frozen_fmt,
                                                    timeout=timeout)
                share.remove(child)
                return "commit"
            # qemu cannot reopen an nfs:// backing file read-write (commit needs
            # that), so the merge goes the other way: F's data into C
            if i > 0:
                parent, parent_fmt = chain[i - 1]
                commands.qemu_img_rebase(share.ref(child), share.backing_ref(parent),
                                         parent_fmt, timeout=timeout)
            else:
                commands.qemu_img_rebase(share.ref(child), "", None, timeout=timeout)
            share.remove(frozen)
            return "rebase"

        how = self._guard("merging the snapshot", merge)
        if how == "commit":
            del chain[i + 1]
            changed = {sid: {**loc, "file": frozen, "fmt": frozen_fmt}
                       for sid, loc in others.items() if loc and loc.get("file") == child}
        else:
            del chain[i]
            changed = {}
        return {**location, "chain": chain}, changed

    # -- data in and out ---------------------------------------------------------

    def export_raw(self, location: dict, dest: str) -> None:
        """The volume's (or snapshot's) data as a local raw file at ``dest``."""
        ref, fmt = self.source(location)
        self._guard("reading the volume", commands.qemu_img_convert, ref, dest, src_fmt=fmt,
                    dst_fmt="raw", timeout=self.op_timeout(64))

    def export_image(self, location: dict, dest: str, disk_format: str) -> None:
        ref, fmt = self.source(location)
        self._guard("converting the volume", commands.qemu_img_convert, ref, dest,
                    src_fmt=fmt, dst_fmt=disk_format, timeout=self.op_timeout(64))

    def import_raw(self, location: dict, src: str) -> None:
        """Write a local raw file over the volume's data (restore)."""
        share = self.share(location["pool"])
        name, fmt = location["chain"][-1]
        self._guard("writing the volume", commands.qemu_img_convert, src, share.ref(name),
                    src_fmt="raw", dst_fmt=fmt, existing=True, timeout=self.op_timeout(64))

    # -- attachments ----------------------------------------------------------------

    def connection_info(self, volume_id: str, location: dict, connector: dict | None,
                        mode: str) -> dict:
        share = self.share(location["pool"])
        name, fmt = location["chain"][-1]
        data = {"volume_id": volume_id, "format": fmt, "access_mode": mode,
                "qos_specs": None, **share.connection(name)}
        return {"driver_volume_type": self.protocol, "data": data}


def real_path(path: str, state_path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(state_path, path)
