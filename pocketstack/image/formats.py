"""Disk image headers: the virtual size of an image, read from its first bytes.

Only the formats whose size sits in a fixed header are read (qcow2, VMDK
sparse extents, VDI); raw and ISO images are as big as their data.
"""

from __future__ import annotations

import struct

QCOW2_MAGIC = b"QFI\xfb"
VMDK_MAGIC = b"KDMV"
VDI_SIGNATURE = 0xBEDA107F


class UnsafeImage(ValueError):
    """The data is a format with features that would let a guest read host files."""


def qcow2_info(head: bytes) -> dict | None:
    """The fields of a qcow2 header we care about, or None if ``head`` is not qcow2."""
    if len(head) < 32 or head[:4] != QCOW2_MAGIC:
        return None
    version, backing_offset, backing_size, cluster_bits, size = struct.unpack(
        ">IQIIQ", head[4:32])
    info = {"version": version, "backing_file_offset": backing_offset,
            "backing_file_size": backing_size, "cluster_bits": cluster_bits, "size": size,
            "incompatible_features": 0}
    if version >= 3 and len(head) >= 80:
        info["incompatible_features"] = struct.unpack(">Q", head[72:80])[0]
    return info


def virtual_size(disk_format: str | None, head: bytes, size: int) -> int | None:
    """The size the guest sees, or None when the format or data does not tell."""
    if disk_format in ("raw", "iso"):
        return size
    if disk_format == "qcow2":
        info = qcow2_info(head)
        if info is None:
            return None
        if info["backing_file_offset"]:
            raise UnsafeImage("QCOW2 images with a backing file are not accepted.")
        if info["incompatible_features"] & 0x4:
            raise UnsafeImage("QCOW2 images with an external data file are not accepted.")
        return info["size"]
    if disk_format == "vmdk" and len(head) >= 20 and head[:4] == VMDK_MAGIC:
        return struct.unpack("<Q", head[12:20])[0] * 512
    if disk_format == "vdi" and len(head) >= 376:
        if struct.unpack("<I", head[64:68])[0] == VDI_SIGNATURE:
            return struct.unpack("<Q", head[368:376])[0]
    return None
