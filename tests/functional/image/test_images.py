"""Images over HTTP: create/show/list/update/delete, with openstacksdk and raw calls."""

from __future__ import annotations

import hashlib

import openstack.exceptions
import pytest

from .conftest import image_files, tenant

BASE_FIELDS = {"id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
               "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "min_ram",
               "min_disk", "container_format", "disk_format", "created_at", "updated_at",
               "tags", "self", "file", "schema"}


def test_create_show_fields_as_glance(admin):
    image = admin.create(name="cirros", tags=["a", "b"], os_distro="cirros",
                         min_ram=64)
    assert set(image) == BASE_FIELDS | {"os_distro"}
    assert image["status"] == "queued" and image["visibility"] == "shared"
    assert image["size"] is None and image["checksum"] is None
    assert image["virtual_size"] is None and image["os_hash_value"] is None
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["owner"] == admin.conn.current_project_id
    assert image["created_at"].endswith("Z") and "locations" not in image
    assert admin.show(image["id"]) == image


def test_create_rejects_bad_input_and_writes_nothing(admin):
    cases = [
        ({"disk_format": "floppy"}, 400),
        ({"container_format": "zip"}, 400),
        ({"visibility": "everyone"}, 400),
        ({"min_ram": -1}, 400),
        ({"name": "x" * 256}, 400),
        ({"foo": 1}, 400),  # additional properties are strings
        ({"id": "not-a-uuid"}, 400),
        ({"status": "active"}, 403),
        ({"checksum": "0" * 32}, 403),
        ({"location": "file:///etc/passwd"}, 403),
        ({"os_glance_importing_to_stores": "x"}, 403),
        ({"self": "/elsewhere"}, 403),
    ]
    for body, status in cases:
        r = admin.post("/v2/images", json={"name": "bad", **body})
        assert r.status_code == status, (body, r.text)
        assert r.json()["message"]
    r = admin.post("/v2/images", content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert admin.get("/v2/images").json()["images"] == []


def test_create_with_id_then_duplicate_conflicts(admin):
    image_id = "6d3e7f1c-5a8b-4d2e-9f01-23456789abcd"
    assert admin.create(id=image_id)["id"] == image_id
    r = admin.post("/v2/images", json={"id": image_id})
    assert r.status_code == 409


def test_sdk_upload_download_roundtrip(cloud):
    conn = cloud.connect()
    data = bytes(range(256)) * 4096 + b"tail"
    image = conn.image.create_image(name="blob", data=data, disk_format="raw",
                                    container_format="bare", validate_checksum=False)
    image = conn.image.get_image(image.id)
    assert image.status == "active"
    assert image.size == len(data) and image.virtual_size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(data).hexdigest()
    got = conn.image.download_image(image)  # the SDK verifies the sha512
    assert got.content == data


def test_download_headers_and_ranges(admin):
    data = b"0123456789" * 1000
    image = admin.create(name="ranges")
    admin.upload(image["id"], data)
    r = admin.get(f"/v2/images/{image['id']}/file")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert r.headers["content-type"] == "application/octet-stream"
    r = admin.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = admin.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = admin.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=99999-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    # No data yet: 204.
    empty = admin.create(name="empty")
    r = admin.get(f"/v2/images/{empty['id']}/file")
    assert r.status_code == 204 and r.content == b""


def test_upload_rules(admin, cloud):
    image = admin.create(name="once")
    r = admin.put(f"/v2/images/{image['id']}/file", content=b"abc",
                  headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert admin.show(image["id"])["status"] == "queued"
    admin.upload(image["id"], b"first")
    before = sorted(image_files(cloud))
    r = admin.upload(image["id"], b"second", expect=409)
    assert "active" in r.json()["message"]
    after = admin.show(image["id"])
    assert after["size"] == 5 and after["checksum"] == hashlib.md5(b"first").hexdigest()
    assert sorted(image_files(cloud)) == before
    r = admin.put("/v2/images/00000000-0000-0000-0000-000000000000/file", content=b"x",
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 404


def test_qcow2_virtual_size_and_backing_file_refused(admin, qcow2, tmp_path):
    image = admin.create(name="disk", disk_format="qcow2")
    admin.upload(image["id"], qcow2.read_bytes())
    shown = admin.show(image["id"])
    assert shown["virtual_size"] == 1024 ** 3
    assert shown["size"] == qcow2.stat().st_size
    # A qcow2 pointing at a backing file on the host is refused, nothing kept.
    import subprocess

    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    str(qcow2), str(overlay)], check=True)
    bad = admin.create(name="overlay", disk_format="qcow2")
    r = admin.upload(bad["id"], overlay.read_bytes(), expect=400)
    assert "backing file" in r.json()["message"]
    after = admin.show(bad["id"])
    assert after["status"] == "queued" and after["size"] is None


def test_list_pagination_sorting_filters(admin):
    ids = []
    for i in range(7):
        image = admin.create(name=f"img-{i}", tags=["even"] if i % 2 == 0 else [],
                             min_ram=i, **({"flavour": "vanilla"} if i < 3 else {}))
        ids.append(image["id"])
    body = admin.get("/v2/images", params={"limit": 3}).json()
    assert body["schema"] == "/v2/schemas/images" and body["first"] == "/v2/images?limit=3"
    assert [i["name"] for i in body["images"]] == ["img-6", "img-5", "img-4"]
    seen = [i["name"] for i in body["images"]]
    while "next" in body:
        assert body["next"].startswith("/v2/images?")
        body = admin.get(body["next"]).json()
        seen += [i["name"] for i in body["images"]]
    assert seen == [f"img-{i}" for i in range(6, -1, -1)]

    def names(**params):
        r = admin.get("/v2/images", params=params)
        assert r.status_code == 200, r.text
        return [i["name"] for i in r.json()["images"]]

    assert names(sort="name:asc", limit=2) == ["img-0", "img-1"]
    assert names(sort_key="name", sort_dir="asc")[:3] == ["img-0", "img-1", "img-2"]
    assert names(sort="status:asc,name:desc", limit=2) == ["img-6", "img-5"]
    assert names(name="img-3") == ["img-3"]
    assert sorted(names(name='in:img-1,"img-2"')) == ["img-1", "img-2"]
    assert sorted(names(tag="even")) == ["img-0", "img-2", "img-4", "img-6"]
    assert sorted(names(flavour="vanilla")) == ["img-0", "img-1", "img-2"]
    assert names(status="active") == []
    assert len(names(status="in:queued,active")) == 7
    assert names(id=ids[5]) == ["img-5"]
    # Bad parameters are 400s.
    for params in ({"sort_key": "min_ram"}, {"sort_dir": "up"}, {"limit": "x"},
                   {"limit": -1}, {"visibility": "everyone"}, {"member_status": "maybe"},
                   {"os_hidden": "perhaps"}, {"marker": "nope"}, {"size_min": "big"},
                   {"sort": "name:asc", "sort_key": "name"}, {"created_at": "gt:yesterday"}):
        r = admin.get("/v2/images", params=params)
        assert r.status_code == 400, (params, r.text)


def test_hidden_and_size_filters(admin):
    hidden = admin.create(name="hidden", os_hidden=True)
    shown = admin.create(name="shown")
    admin.upload(shown["id"], b"x" * 100)
    names = [i["name"] for i in admin.get("/v2/images").json()["images"]]
    assert names == ["shown"]
    r = admin.get("/v2/images", params={"os_hidden": "true"}).json()["images"]
    assert [i["id"] for i in r] == [hidden["id"]]
    assert len(admin.get("/v2/images", params={"size_min": 100}).json()["images"]) == 1
    assert admin.get("/v2/images", params={"size_max": 99}).json()["images"] == []


def test_json_patch_update(admin):
    image = admin.create(name="before", os_distro="ubuntu")
    ops = [{"op": "replace", "path": "/name", "value": "after"},
           {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
           {"op": "replace", "path": "/os_distro", "value": "debian"},
           {"op": "add", "path": "/tags", "value": ["x", "y"]},
           {"op": "replace", "path": "/min_disk", "value": 2},
           {"op": "replace", "path": "/protected", "value": True}]
    updated = admin.patch(image["id"], ops).json()
    assert updated["name"] == "after" and updated["hw_disk_bus"] == "virtio"
    assert updated["os_distro"] == "debian" and updated["tags"] == ["x", "y"]
    assert updated["min_disk"] == 2 and updated["protected"] is True
    removed = admin.patch(image["id"], [{"op": "remove", "path": "/hw_disk_bus"}]).json()
    assert "hw_disk_bus" not in removed
    # Draft 4 style (v2.0 media type) works too.
    admin.patch(image["id"], [{"replace": "/name", "value": "d4"}],
                content_type="application/openstack-images-v2.0-json-patch")
    assert admin.show(image["id"])["name"] == "d4"

    bad = [
        ([{"op": "remove", "path": "/nothing"}], 409),
        ([{"op": "replace", "path": "/nothing", "value": "x"}], 409),
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/checksum", "value": "0"}], 403),
        ([{"op": "add", "path": "/os_glance_x", "value": "1"}], 403),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
        ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400),
        ([{"op": "add", "path": "/prop", "value": 5}], 400),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "replace", "path": "/a/b", "value": "x"}], 400),
        ([{"op": "replace", "path": "name", "value": "x"}], 400),
        ([{"op": "replace", "path": "/name"}], 400),
        ({"op": "replace"}, 400),
        (["replace"], 400),
    ]
    before = admin.show(image["id"])
    for ops, status in bad:
        r = admin.patch(image["id"], ops, expect=status)
        assert r.json()["message"]
    # A bad op anywhere in the list means none of the list is applied.
    admin.patch(image["id"], [{"op": "replace", "path": "/name", "value": "half"},
                              {"op": "remove", "path": "/nothing"}], expect=409)
    r = admin.patch(image["id"], [], content_type="application/json", expect=415)
    assert "openstack-images-v2.1-json-patch" in r.headers["accept-patch"]
    assert admin.show(image["id"]) == before


def test_disk_format_fixed_once_active(admin):
    image = admin.create(name="fixed")
    admin.upload(image["id"], b"data")
    admin.patch(image["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}],
                expect=403)


def test_protected_image_cannot_be_deleted(admin, cloud):
    image = admin.create(name="keep", protected=True)
    admin.upload(image["id"], b"precious")
    r = admin.delete(f"/v2/images/{image['id']}")
    assert r.status_code == 403
    assert admin.show(image["id"])["status"] == "active"
    admin.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert admin.delete(f"/v2/images/{image['id']}").status_code == 204
    assert admin.get(f"/v2/images/{image['id']}").status_code == 404
    assert image_files(cloud) == []


def test_deactivate_reactivate(cloud, admin):
    user, creds = tenant(cloud)
    image = user.create(name="mine")
    r = user.post(f"/v2/images/{image['id']}/actions/deactivate")
    assert r.status_code == 403  # only active images can be deactivated
    user.upload(image["id"], b"bits")
    assert user.post(f"/v2/images/{image['id']}/actions/deactivate").status_code == 204
    assert user.show(image["id"])["status"] == "deactivated"
    assert user.get(f"/v2/images/{image['id']}/file").status_code == 403
    assert admin.get(f"/v2/images/{image['id']}/file").content == b"bits"
    assert user.post(f"/v2/images/{image['id']}/actions/reactivate").status_code == 204
    assert user.get(f"/v2/images/{image['id']}/file").content == b"bits"


def test_tags(admin):
    image = admin.create(name="tagged")
    assert admin.put(f"/v2/images/{image['id']}/tags/fast").status_code == 204
    assert admin.put(f"/v2/images/{image['id']}/tags/fast").status_code == 204
    assert admin.put(f"/v2/images/{image['id']}/tags/small").status_code == 204
    assert admin.show(image["id"])["tags"] == ["fast", "small"]
    assert admin.delete(f"/v2/images/{image['id']}/tags/fast").status_code == 204
    assert admin.delete(f"/v2/images/{image['id']}/tags/fast").status_code == 404
    assert admin.show(image["id"])["tags"] == ["small"]
    assert admin.put(f"/v2/images/{image['id']}/tags/{'t' * 256}").status_code == 400


def test_schemas_versions_info(cloud, admin):
    import httpx

    r = httpx.get(cloud.url + "/image/")
    assert r.status_code == 300
    versions = r.json()["versions"]
    assert versions[0]["status"] == "CURRENT"
    assert versions[0]["links"][0]["href"] == cloud.url + "/image/v2/"
    for name in ("image", "images", "member", "members"):
        body = admin.get(f"/v2/schemas/{name}").json()
        assert body["name"] == name and "properties" in body
    image_schema = admin.get("/v2/schemas/image").json()
    assert "qcow2" in image_schema["properties"]["disk_format"]["enum"]
    assert image_schema["additionalProperties"] == {"type": "string"}
    info = admin.get("/v2/info/import").json()
    assert info["import-methods"]["value"] == ["glance-direct"]
    stores = admin.get("/v2/info/stores").json()["stores"]
    assert stores == [{"id": "file", "description": stores[0]["description"],
                       "default": True}]
    assert admin.get("/v2/images").status_code == 200
    r = httpx.get(cloud.url + "/image/v2/images")
    assert r.status_code == 401


def test_sdk_find_update_delete(cloud):
    conn = cloud.connect()
    image = conn.image.create_image(name="sdk-image", disk_format="qcow2",
                                    container_format="bare", allow_duplicates=True)
    assert conn.image.find_image("sdk-image").id == image.id
    conn.image.update_image(image, name="renamed", hw_rng_model="virtio")
    fetched = conn.image.get_image(image.id)
    assert fetched.name == "renamed"
    assert fetched.hw_rng_model == "virtio"
    assert [i.id for i in conn.image.images(name="renamed")] == [image.id]
    conn.image.delete_image(image)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(image.id)


def test_download_abandoned_midway_releases_everything(admin):
    import os
    import time

    data = os.urandom(1024 * 1024) * 24
    image = admin.create(name="abandoned")
    admin.upload(image["id"], data)
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with admin.stream("GET", f"/v2/images/{image['id']}/file") as r:
            assert r.status_code == 200
            next(r.iter_raw(65536))
        # leaving the block closes the connection with most of the body unread
    deadline = time.monotonic() + 30
    while len(os.listdir("/proc/self/fd")) > fds + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= fds + 2
    assert hashlib.md5(admin.get(f"/v2/images/{image['id']}/file").content).hexdigest() == \
        hashlib.md5(data).hexdigest()
