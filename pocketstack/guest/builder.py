"""Build the guest image: an ext4 root file system image from Debian packages.

Made without mounting anything and without root: ``apt-get download`` the
packages, ``dpkg-deb -x`` them, assemble a tree (busybox and its applet
links, dropbear and the shared libraries it needs, our init scripts), then
``mkfs.ext4 -d <tree>`` writes the file system image and ``qemu-img``
converts it to qcow2 when asked. Builds are cached by the hash of their
inputs, so building again is free.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading

from pocketstack.guest import rootfs

LOG = logging.getLogger(__name__)

PACKAGES = ["busybox-static", "dropbear-bin", "libc6", "libcrypt1", "libtomcrypt1",
            "libtommath1", "libgmp10", "zlib1g"]
BINARIES = {  # from the unpacked packages -> path in the guest
    "bin/busybox": "bin/busybox",
    "usr/sbin/dropbear": "usr/sbin/dropbear",
    "usr/bin/dropbearkey": "usr/bin/dropbearkey",
    "usr/bin/dbclient": "usr/bin/dbclient",
}
LIB_DIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"]
LOADER = "lib64/ld-linux-x86-64.so.2"
IMAGE_NAME = "pocketstack-guest"
DEFAULT_SIZE_MB = 64
BUILDER_VERSION = "1"


class BuildError(Exception):
    pass


def _run(*cmd: str, cwd: str | None = None) -> str:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def build_key(fmt: str, size_mb: int) -> str:
    digest = hashlib.sha256()
    digest.update(f"{BUILDER_VERSION}:{fmt}:{size_mb}:{','.join(PACKAGES)}".encode())
    for path in sorted(rootfs.FILES):
        content, mode = rootfs.FILES[path]
        digest.update(f"{path}:{mode:o}:{content}".encode())
    return digest.hexdigest()[:16]


def download_packages(dest: str, debs_dir: str | None = None) -> list[str]:
    """The .deb files (from ``debs_dir`` when given, else ``apt-get download``)."""
    os.makedirs(dest, exist_ok=True)
    if debs_dir:
        return sorted(os.path.join(debs_dir, f) for f in os.listdir(debs_dir)
                      if f.endswith(".deb"))
    _run("apt-get", "download", "-q", *PACKAGES, cwd=dest)
    return sorted(os.path.join(dest, f) for f in os.listdir(dest) if f.endswith(".deb"))


def _needed(path: str) -> list[str]:
    out = _run("readelf", "-d", "-W", path)
    names = []
    for line in out.splitlines():
        if "(NEEDED)" in line and "[" in line:
            names.append(line.rsplit("[", 1)[1].rstrip("]"))
    return names


def _find_lib(name: str, unpacked: str) -> str:
    for base in (unpacked, "/"):
        for d in LIB_DIRS:
            candidate = os.path.join(base, d, name)
            if os.path.exists(candidate):
                return os.path.realpath(candidate)
    raise BuildError(f"shared library {name} not found in the packages or on the host")


def assemble_tree(unpacked: str, tree: str) -> dict:
    """Lay the guest's root out in ``tree``; returns what went in."""
    for d in rootfs.DIRS:
        os.makedirs(os.path.join(tree, d), exist_ok=True)
    os.chmod(os.path.join(tree, "tmp"), 0o1777)
    os.chmod(os.path.join(tree, "root"), 0o700)
    for src, dst in BINARIES.items():
        source = os.path.join(unpacked, src)
        if not os.path.exists(source):
            raise BuildError(f"{src} missing from the unpacked packages")
        target = os.path.join(tree, dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
        os.chmod(target, 0o755)
    # every busybox applet as a link (init, sh, udhcpc, wget, ip, ...)
    busybox = os.path.join(unpacked, "bin/busybox")
    applets = _run(busybox, "--list-full").split()
    for applet in applets:
        link = os.path.join(tree, applet)
        if os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        depth = applet.count("/")
        os.symlink("../" * depth + "bin/busybox", link)
    # shared libraries dropbear needs, transitively, and the dynamic loader
    libdir = os.path.join(tree, "lib/x86_64-linux-gnu")
    os.makedirs(libdir, exist_ok=True)
    todo = [os.path.join(tree, dst) for dst in BINARIES.values() if "busybox" not in dst]
    copied: set[str] = set()
    while todo:
        for name in _needed(todo.pop()):
            if name in copied:
                continue
            copied.add(name)
            target = os.path.join(libdir, name)
            shutil.copy2(_find_lib(name, unpacked), target)
            todo.append(target)
    loader = _find_lib("ld-linux-x86-64.so.2", unpacked)
    shutil.copy2(loader, os.path.join(libdir, "ld-linux-x86-64.so.2"))
    os.symlink("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", os.path.join(tree, LOADER))
    for path, (content, mode) in rootfs.FILES.items():
        target = os.path.join(tree, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(content)
        os.chmod(target, mode)
    return {"applets": len(applets), "libraries": sorted(copied)}


def build(output: str, fmt: str = "raw", size_mb: int = DEFAULT_SIZE_MB,
          debs_dir: str | None = None, work_dir: str | None = None) -> dict:
    """Build the image at ``output``; returns a description of it."""
    if fmt not in ("raw", "qcow2"):
        raise BuildError(f"unsupported format {fmt!r} (raw or qcow2)")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pocketstack-guest-", dir=work_dir) as tmp:
        debs = download_packages(os.path.join(tmp, "debs"), debs_dir)
        unpacked = os.path.join(tmp, "unpacked")
        versions = {}
        for deb in debs:
            _run("dpkg-deb", "-x", deb, unpacked)
            fields = _run("dpkg-deb", "-f", deb, "Package", "Version").splitlines()
            versions[fields[0].split(": ", 1)[1]] = fields[1].split(": ", 1)[1]
        tree = os.path.join(tmp, "tree")
        contents = assemble_tree(unpacked, tree)
        raw = os.path.join(tmp, "rootfs.raw")
        # -d: populate from the tree, no mount; root-owned files even when
        # built by another user; no journal: smaller, and the overlay is the
        # writable layer under the container driver anyway.
        _run("mkfs.ext4", "-q", "-F", "-L", "pocketstack-root", "-O", "^has_journal",
             "-E", "root_owner=0:0", "-d", tree, raw, f"{size_mb}M")
        partial = output + ".part"
        if fmt == "qcow2":
            _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, partial)
        else:
            shutil.move(raw, partial)
        os.replace(partial, output)
    info = {"path": output, "format": fmt, "size": os.path.getsize(output),
            "virtual_size_mb": size_mb, "packages": versions, **contents}
    with open(output + ".json", "w") as f:
        json.dump(info, f, indent=1)
    return info


_lock = threading.Lock()

opts = None


def register_opts(conf) -> None:
    from oslo_config import cfg

    try:
        conf.register_opts([
            cfg.BoolOpt("register", default=True,
                        help="`pocketstack up` builds (once, cached) and registers the guest "
                             "image in the image service when it is missing."),
            cfg.StrOpt("debs_dir", default=None,
                       help="Directory of .deb files to build from instead of apt-get "
                            "download (offline builds)."),
        ], group="guest_image")
    except cfg.DuplicateOptError:
        pass


def cached_image(state_path: str, fmt: str = "raw", size_mb: int = DEFAULT_SIZE_MB,
                 debs_dir: str | None = None) -> str:
    """The image for this builder version, built once under ``state_path``."""
    key = build_key(fmt, size_mb)
    path = os.path.join(state_path, "guest", f"{IMAGE_NAME}-{key}.{fmt}")
    with _lock:
        if not os.path.exists(path):
            LOG.info("building the guest image %s", path)
            build(path, fmt, size_mb, debs_dir=debs_dir)
    return path


IMAGE_PROPERTIES = {
    # what the container driver boots directly, and what QEMU needs with a
    # kernel/ramdisk pair (kernel_id/ramdisk_id set by the operator)
    "os_type": "linux",
    "os_distro": "pocketstack-guest",
    "hw_rootfs_type": "ext4",
    "os_command_line": "root=/dev/vda rw console=ttyS0 init=/sbin/init",
    "pocketstack_guest_build": "",
}
