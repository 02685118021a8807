"""Every host command the volume service runs, in one place.

``qemu-img`` works on files the service owns (or nfs:// URLs) and runs
unprivileged; ``mount``/``umount`` need root and are the commands the
rootwrap layer will filter. Arguments are always a list, never a shell
string; names that reach a command line are built by the drivers from ids,
never taken from a request.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess

LOG = logging.getLogger(__name__)

ROOT_COMMANDS = {"mount", "umount"}


class CommandError(Exception):
    def __init__(self, argv: list[str], code: int | None, stderr: str):
        self.argv = argv
        self.code = code
        self.stderr = stderr.strip()
        what = "timed out" if code is None else f"exit code {code}"
        super().__init__(f"{os.path.basename(argv[0])} {what}: {self.stderr[-400:]}")


def execute(*argv: str, timeout: float | None = None, root: bool = False) -> str:
    """Run a command; return its stdout or raise CommandError."""
    argv_list = [str(a) for a in argv]
    if root and argv_list[0] not in ROOT_COMMANDS:
        raise CommandError(argv_list, 99, "not an allowed privileged command")
    LOG.debug("running %s", argv_list)
    try:
        proc = subprocess.run(argv_list, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv_list, None, (exc.stderr or b"").decode(errors="replace")
                           if isinstance(exc.stderr, bytes) else (exc.stderr or "")) from None
    except FileNotFoundError:
        raise CommandError(argv_list, 127, f"{argv_list[0]} is not installed") from None
    if proc.returncode != 0:
        raise CommandError(argv_list, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def have(binary: str) -> bool:
    return shutil.which(binary) is not None


# -- qemu-img -----------------------------------------------------------------


def qemu_img_create(ref: str, fmt: str, size: int, *, backing: str | None = None,
                    backing_fmt: str | None = None, preallocate: bool = False,
                    timeout: float | None = None) -> None:
    argv = ["qemu-img", "create", "-q", "-f", fmt]
    if backing:
        argv += ["-b", backing, "-F", backing_fmt or "raw"]
    if preallocate:
        argv += ["-o", "preallocation=falloc" if fmt == "raw" else "preallocation=metadata"]
    argv += [ref, str(size)]
    execute(*argv, timeout=timeout)


def qemu_img_info(ref: str, *, chain: bool = False, timeout: float | None = None) -> dict | list:
    argv = ["qemu-img", "info", "--output=json", "-U"]
    if chain:
        argv.append("--backing-chain")
    return json.loads(execute(*argv, ref, timeout=timeout))


def qemu_img_convert(src: str, dst: str, *, src_fmt: str | None = None, dst_fmt: str = "raw",
                     existing: bool = False, sparse: bool = True,
                     timeout: float | None = None) -> None:
    argv = ["qemu-img", "convert", "-q", "-W", "-m", "8"]
    if src_fmt:
        argv += ["-f", src_fmt]
    argv += ["-O", dst_fmt]
    if existing:
        argv.append("-n")
    if not sparse:
        argv += ["-S", "0"]
    argv += [src, dst]
    execute(*argv, timeout=timeout)


def qemu_img_commit(ref: str, *, timeout: float | None = None) -> None:
    """Write an overlay's data into its backing file (the overlay stays)."""
    execute("qemu-img", "commit", "-q", "-d", ref, timeout=timeout)


def qemu_img_rebase_unsafe(ref: str, backing: str, backing_fmt: str, *,
                           timeout: float | None = None) -> None:
    """Point an overlay at another backing file with the same data (no copy)."""
    execute("qemu-img", "rebase", "-u", "-F", backing_fmt, "-b", backing, ref, timeout=timeout)


def qemu_img_rebase(ref: str, backing: str, backing_fmt: str | None, *,
                    timeout: float | None = None) -> None:
    """Point an overlay at another backing file, copying in whatever differs
    (``backing=""`` makes the overlay stand alone)."""
    argv = ["qemu-img", "rebase", "-q", "-f", "qcow2", "-b", backing]
    if backing and backing_fmt:
        argv += ["-F", backing_fmt]
    execute(*argv, ref, timeout=timeout)


def qemu_img_resize(ref: str, size: int, fmt: str, *, timeout: float | None = None) -> None:
    execute("qemu-img", "resize", "-q", "-f", fmt, ref, str(size), timeout=timeout)


# -- mounts (root) ----------------------------------------------------------------


def kernel_has_nfs() -> bool:
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] in ("nfs", "nfs4") for line in f if line.strip())
    except OSError:
        return False


def is_mounted(path: str) -> bool:
    try:
        with open("/proc/mounts") as f:
            return any(line.split()[1] == path for line in f if line.strip())
    except OSError:
        return False


def mount_nfs(share: str, path: str, options: str | None, timeout: float) -> None:
    os.makedirs(path, exist_ok=True)
    argv = ["mount", "-t", "nfs"]
    if options:
        argv += ["-o", options]
    execute(*argv, share, path, root=True, timeout=timeout)
