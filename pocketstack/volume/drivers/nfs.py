"""The NFS driver (the seed's Cinder NFS driver, with snapshots).

Shares come from ``nfs_shares_config`` (``host:/export [options]`` a line);
each share is a pool holding one file per volume. Where the host has a
kernel NFS client the share is mounted under ``nfs_mount_point_base`` and
used as a directory; elsewhere (``nfs_client = libnfs``, or ``auto`` on a
host without kernel NFS) it is reached in user space: libnfs for file
operations and ``nfs://`` URLs for qemu-img and the hypervisor.
"""

from __future__ import annotations

import hashlib
import logging
import os

from pocketstack.volume import commands
from pocketstack.volume.drivers.base import Driver, DriverError, real_path
from pocketstack.volume.drivers.libnfs import library
from pocketstack.volume.drivers.shares import LibnfsShare, LocalShare, Share, ShareError

LOG = logging.getLogger(__name__)


def read_shares_config(path: str) -> list[tuple[str, str | None]]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise DriverError(f"cannot read nfs_shares_config {path}: {exc.strerror}") from None
    shares = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        share, _, options = line.partition(" ")
        shares.append((share, options.strip() or None))
    return shares


class MountedShare(LocalShare):
    """A share mounted by the kernel NFS client under nfs_mount_point_base.

    Nothing is ever written to the mount point while the share is not mounted
    there (it would land on the local disk): the share is then down, and each
    capacity check tries to mount it again."""

    def __init__(self, share: str, mount_point: str, options: str | None, timeout: float):
        super().__init__(mount_point, name=share, protocol="nfs", export=share)
        self.options = options
        self.timeout = timeout
        self.ensure(quiet=True)

    def ensure(self, quiet: bool = False) -> None:
        if commands.is_mounted(self.path):
            return
        try:
            commands.mount_nfs(self.name, self.path, self.options, self.timeout)
        except commands.CommandError as exc:
            if not quiet:
                raise ShareError(f"NFS share {self.name} is not mounted: {exc}") from exc
            LOG.error("cannot mount %s: %s", self.name, exc)

    def _p(self, filename: str) -> str:
        if not commands.is_mounted(self.path):
            raise ShareError(f"NFS share {self.name} is not mounted at {self.path}")
        return super()._p(filename)

    def capacity(self) -> tuple[int, int]:
        self.ensure()
        return super().capacity()

    def listdir(self) -> list[str]:
        self._p("")
        return super().listdir()


class NfsDriver(Driver):
    protocol = "nfs"

    def setup(self) -> None:
        opts = self.options
        self.qcow2 = opts.nfs_qcow2_volumes
        self.sparse = opts.nfs_sparsed_volumes
        self.snapshots_supported = opts.nfs_snapshot_support
        self.timeout = opts.nfs_timeout
        base = real_path(opts.nfs_mount_point_base or "mnt", self.conf.state_path)
        client = opts.nfs_client
        if client == "auto":
            client = "mount" if commands.kernel_has_nfs() else "libnfs"
        if client == "libnfs" and library() is None:
            raise DriverError("nfs_client is libnfs but libnfs is not installed")
        self.shares = {}
        for share, options in read_shares_config(real_path(opts.nfs_shares_config,
                                                           self.conf.state_path)):
            self.shares[share] = self._open_share(share, options, client, base)
        if not self.shares:
            raise DriverError(f"no NFS shares in {opts.nfs_shares_config}")

    def _open_share(self, share: str, options: str | None, client: str, base: str) -> Share:
        if client == "libnfs":
            return LibnfsShare(share, timeout=self.timeout)
        mount_point = os.path.join(base, hashlib.md5(share.encode()).hexdigest())
        return MountedShare(share, mount_point, options or self.options.nfs_mount_options,
                            self.timeout)

    def op_timeout(self, size_gb: int = 0) -> float:
        # copies get time in proportion to their size; metadata operations the base
        return self.timeout * (1 + size_gb)
