"""The `objectstore` image store: images kept as objects in this cloud's object storage."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from .conftest import Glance
from .test_uploads import partial_upload, wait_for


@pytest.fixture
def cloud(pocketstack_cloud_factory):
    return pocketstack_cloud_factory(**{"enabled_services": ["identity", "objectstore", "image"],
                                        "glance_store.default_store": "objectstore"})


def objects(cloud) -> list[str]:
    store = cloud.cloud.services["image"].manager.store
    listing = store.objects.list_objects(store.account, store.container) \
        if store.objects.get_container(store.account, store.container) else []
    return [o["name"] if isinstance(o, dict) else o.name for o in listing]


def test_images_as_objects(cloud):
    conn = cloud.connect()
    glance = Glance(cloud, conn)
    data = b"kept in object storage " * 50000
    image = conn.image.create_image(name="in-swift", data=data, disk_format="raw",
                                    container_format="bare", validate_checksum=False)
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.hash_value == hashlib.sha512(data).hexdigest()
    assert objects(cloud) == [image.id]
    assert conn.image.download_image(image).content == data
    r = glance.get(f"/v2/images/{image.id}/file", headers={"Range": "bytes=5-9"})
    assert r.status_code == 206 and r.content == data[5:10]
    assert glance.get("/v2/info/stores").json()["stores"][0]["id"] == "objectstore"
    # In-process readers (compute) get the bytes through the manager.
    manager = cloud.cloud.services["image"].manager
    from pocketstack.common.context import RequestContext

    async def read_all():
        _, body = manager.open_data(RequestContext.internal_admin(), image.id)
        return b"".join([chunk async for chunk in body])

    assert asyncio.run_coroutine_threadsafe(read_all(), manager.store.loop).result(30) == data
    assert manager.data_path(RequestContext.internal_admin(), image.id) is None

    conn.image.delete_image(image)
    wait_for(lambda: objects(cloud) == [], "object deleted")


def test_interrupted_upload_leaves_no_object(cloud):
    glance = Glance(cloud, cloud.connect())
    image = glance.create(name="cut")
    partial_upload(cloud, glance.token, image["id"], 32 * 1024 * 1024, 9 * 1024 * 1024)
    wait_for(lambda: glance.show(image["id"])["status"] == "queued", "back to queued")
    assert objects(cloud) == []
    glance.upload(image["id"], b"complete")
    assert glance.get(f"/v2/images/{image['id']}/file").content == b"complete"


def test_import_into_objectstore(cloud):
    glance = Glance(cloud, cloud.connect())
    image = glance.create(name="imported")
    glance.put(f"/v2/images/{image['id']}/stage", content=b"staged" * 1000,
               headers={"Content-Type": "application/octet-stream"})
    r = glance.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}})
    assert r.status_code == 202
    wait_for(lambda: glance.show(image["id"])["status"] == "active", "import finished")
    assert glance.get(f"/v2/images/{image['id']}/file").content == b"staged" * 1000
    assert objects(cloud) == [image["id"]]
