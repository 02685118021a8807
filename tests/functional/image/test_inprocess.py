"""The manager interface other services (compute) use in-process."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from pocketstack.common import errors
from pocketstack.common.context import RequestContext

from .conftest import tenant


def test_snapshot_style_create_upload_and_lookup(cloud, tmp_path):
    alice, creds = tenant(cloud)
    images = cloud.cloud.services["image"].manager
    system = RequestContext.internal_admin()
    user = RequestContext(user_id=creds["user_id"], project_id=creds["project_id"],
                          roles=["member", "reader"])
    other = RequestContext(user_id="u2", project_id="someone-else", roles=["member", "reader"])

    disk = tmp_path / "snap.raw"
    disk.write_bytes(b"\x00" * 1_000_000 + b"end")
    image = images.create(system, {"name": "snap-1", "disk_format": "raw",
                                   "container_format": "bare", "visibility": "private",
                                   "owner": creds["project_id"],
                                   "image_type": "snapshot", "instance_uuid": "abc"})
    assert image["status"] == "queued" and image["owner"] == creds["project_id"]
    done = asyncio.run(images.upload(system, image["id"], str(disk)))
    assert done["status"] == "active"
    assert done["checksum"] == hashlib.md5(disk.read_bytes()).hexdigest()

    found = images.get(user, image["id"])
    assert found["image_type"] == "snapshot" and found["min_disk"] == 0
    with pytest.raises(errors.NotFound):
        images.get(other, image["id"])
    path = images.data_path(user, image["id"])
    assert open(path, "rb").read() == disk.read_bytes()

    async def read():
        _, body = images.open_data(user, image["id"], 999_998, 5)
        return b"".join([b async for b in body])

    assert asyncio.run(read()) == b"\x00\x00end"
    # The owner sees it over HTTP too.
    assert alice.show(image["id"])["name"] == "snap-1"
    # Uploading twice is refused in-process as over HTTP.
    with pytest.raises(errors.Conflict):
        asyncio.run(images.upload(system, image["id"], b"again"))
    with open(disk, "rb") as f:
        second = images.create(user, {"name": "from-file", "disk_format": "raw",
                                      "container_format": "bare"})
        assert asyncio.run(images.upload(user, second["id"], f))["size"] == 1_000_003
