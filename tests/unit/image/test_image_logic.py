"""Pure logic of the image service: disk headers, ranges, JSON-patch, filters."""

from __future__ import annotations

import struct

import pytest

from pocketstack.common import errors
from pocketstack.image import api, core, formats


def qcow2_header(size: int, backing: int = 0, version: int = 3, features: int = 0) -> bytes:
    head = b"QFI\xfb" + struct.pack(">IQIIQ", version, backing, 0, 16, size)
    head += b"\0" * (72 - len(head)) + struct.pack(">Q", features)
    return head + b"\0" * 24


def test_virtual_size():
    assert formats.virtual_size("qcow2", qcow2_header(10 * 2 ** 30), 196_616) == 10 * 2 ** 30
    assert formats.virtual_size("raw", b"anything", 1234) == 1234
    assert formats.virtual_size("qcow2", b"not a qcow2 header at all......", 10) is None
    assert formats.virtual_size("vhd", b"", 10) is None
    vmdk = b"KDMV" + struct.pack("<IIQ", 1, 3, 2048) + b"\0" * 100
    assert formats.virtual_size("vmdk", vmdk, 10) == 2048 * 512
    with pytest.raises(formats.UnsafeImage):
        formats.virtual_size("qcow2", qcow2_header(2 ** 30, backing=512), 1000)
    with pytest.raises(formats.UnsafeImage):
        formats.virtual_size("qcow2", qcow2_header(2 ** 30, features=4), 1000)


def test_parse_range():
    assert api.parse_range("bytes=0-9", 100) == (0, 10)
    assert api.parse_range("bytes=90-", 100) == (90, 100)
    assert api.parse_range("bytes=-10", 100) == (90, 100)
    assert api.parse_range("bytes=50-500", 100) == (50, 100)
    for bad in ("bytes=100-", "bytes=5-2", "bytes=-", "items=0-1", "bytes=0-1,3-4"):
        with pytest.raises(errors.RangeNotSatisfiable):
            api.parse_range(bad, 100)


def test_parse_patch():
    changes = api.parse_patch([{"op": "add", "path": "/a~1b", "value": "x"},
                               {"op": "remove", "path": "/c"}], 10)
    assert changes == [{"op": "add", "path": ["a/b"], "value": "x"},
                       {"op": "remove", "path": ["c"]}]
    assert api.parse_patch([{"replace": "/name", "value": "n"}], 4)[0]["op"] == "replace"
    for body, exc in ((None, errors.BadRequest), ([{"op": "test", "path": "/a"}],
                                                   errors.BadRequest),
                      ([{"op": "add", "path": "/a//b", "value": "x"}], errors.BadRequest),
                      ([{"op": "add", "path": "/size", "value": 1}], errors.Forbidden),
                      ([{"op": "add", "path": "/deleted", "value": "1"}], errors.Forbidden)):
        with pytest.raises(exc):
            api.parse_patch(body, 10)


def test_in_filter_and_quota_syntax():
    assert core._split_in('a,"b, c",d') == ["a", "b, c", "d"]
    assert core.parse_quota("0") == 0
    assert core.parse_quota("10GB") == 10 * 2 ** 30
    assert core.parse_quota("512 kb") == 512 * 1024
    with pytest.raises(ValueError):
        core.parse_quota("lots")
