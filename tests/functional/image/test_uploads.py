"""Uploads that fail, quotas, and interoperable import (glance-direct)."""

from __future__ import annotations

import hashlib
import socket
import time
from urllib.parse import urlsplit

from .conftest import image_files, tenant


def wait_for(fn, what: str, deadline: float = 60):
    end = time.monotonic() + deadline
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.05)


def partial_upload(cloud, token: str, image_id: str, declared: int, sent: int) -> None:
    """Send ``sent`` of ``declared`` bytes of a PUT /file, then hang up."""
    url = urlsplit(cloud.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {declared}\r\n\r\n")
        sock.sendall(head.encode())
        chunk = b"z" * 65536
        left = sent
        while left > 0:
            sock.sendall(chunk[:left])
            left -= len(chunk)


def test_client_gone_mid_upload_leaves_nothing(cloud, admin):
    image = admin.create(name="interrupted")
    partial_upload(cloud, admin.token, image["id"], 64 * 1024 * 1024, 20 * 1024 * 1024)
    # The server notices the hang-up on its own time: the image goes back to queued.
    wait_for(lambda: admin.show(image["id"])["status"] == "queued"
             and not image_files(cloud), "image back to queued, no data left")
    shown = admin.show(image["id"])
    assert shown["size"] is None and shown["checksum"] is None
    # ... and it can be uploaded again.
    admin.upload(image["id"], b"second try")
    assert admin.show(image["id"])["status"] == "active"


def test_storage_quota(cloud_factory):
    cloud = cloud_factory(user_storage_quota="1MB")
    alice, _ = tenant(cloud)
    first = alice.create(name="fits")
    alice.upload(first["id"], b"a" * 700_000)
    second = alice.create(name="too-big")
    # Content-Length already says it does not fit.
    r = alice.upload(second["id"], b"b" * 400_000, expect=413)
    assert "quota" in r.json()["message"]
    assert alice.show(second["id"])["status"] == "queued"

    # Chunked (no Content-Length): cut off while streaming.
    def gen():
        for _ in range(10):
            yield b"c" * 100_000

    r = alice.put(f"/v2/images/{second['id']}/file", content=gen(),
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413, r.text
    assert alice.show(second["id"])["status"] == "queued"
    assert sorted(image_files(cloud)) == [f"images/{first['id']}"]
    usage = alice.get("/v2/info/usage").json()["usage"]
    assert usage["image_size_total"] == {"limit": 1, "usage": 0}
    assert usage["image_count_total"]["usage"] == 2
    alice.upload(second["id"], b"d" * 300_000)


def test_image_count_and_property_quotas(cloud_factory):
    cloud = cloud_factory(image_count_quota=2, image_property_quota=2, image_tag_quota=1)
    alice, _ = tenant(cloud)
    one = alice.create(name="1", a="1", b="2")
    r = alice.post("/v2/images", json={"name": "x", "a": "1", "b": "2", "c": "3"})
    assert r.status_code == 413
    r = alice.post("/v2/images", json={"name": "x", "tags": ["t1", "t2"]})
    assert r.status_code == 413
    alice.patch(one["id"], [{"op": "add", "path": "/c", "value": "3"}], expect=413)
    alice.create(name="2")
    r = alice.post("/v2/images", json={"name": "3"})
    assert r.status_code == 413
    assert len(alice.get("/v2/images").json()["images"]) == 2


def test_image_size_cap(cloud_factory):
    cloud = cloud_factory(image_size_cap=1000)
    admin = tenant(cloud)[0]
    image = admin.create(name="cap")
    r = admin.upload(image["id"], b"x" * 1001, expect=413)
    assert "too large" in r.json()["message"]
    admin.upload(image["id"], b"x" * 1000)


def test_glance_direct_import(cloud, admin):
    data = b"staged data " * 10000
    image = admin.create(name="imported", disk_format="raw")
    # Import before staging: 409.
    body = {"method": {"name": "glance-direct"}}
    assert admin.post(f"/v2/images/{image['id']}/import", json=body).status_code == 409
    r = admin.put(f"/v2/images/{image['id']}/stage", content=data,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert admin.show(image["id"])["status"] == "uploading"
    assert admin.post(f"/v2/images/{image['id']}/import",
                      json={"method": {"name": "web-download"}}).status_code == 400
    assert admin.post(f"/v2/images/{image['id']}/import", json={}).status_code == 400
    r = admin.post(f"/v2/images/{image['id']}/import", json=body)
    assert r.status_code == 202, r.text
    shown = wait_for(lambda: (lambda s: s if s["status"] == "active" else None)(
        admin.show(image["id"])), "import finished")
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["size"] == len(data) and shown["virtual_size"] == len(data)
    assert admin.get(f"/v2/images/{image['id']}/file").content == data
    assert image_files(cloud) == [f"images/{image['id']}"]


def test_sdk_import(cloud):
    conn = cloud.connect()
    data = b"via the sdk " * 1000
    image = conn.image.create_image(name="sdk-import", data=data, disk_format="raw",
                                    container_format="bare", use_import=True,
                                    validate_checksum=False)
    active = conn.image.wait_for_status(image, "active", wait=60, interval=0.1)
    assert active.checksum == hashlib.md5(data).hexdigest()
    assert conn.image.download_image(active).content == data


def test_delete_during_staging_state(cloud, admin):
    image = admin.create(name="staged-then-deleted")
    admin.put(f"/v2/images/{image['id']}/stage", content=b"x" * 1000,
              headers={"Content-Type": "application/octet-stream"})
    assert admin.delete(f"/v2/images/{image['id']}").status_code == 204
    assert image_files(cloud) == []


def test_hashing_algorithm_option(cloud_factory):
    cloud = cloud_factory(hashing_algorithm="sha256")
    conn = cloud.connect()
    data = b"sha256 please" * 1000
    image = conn.image.create_image(name="h", data=data, disk_format="raw",
                                    container_format="bare", validate_checksum=False)
    image = conn.image.get_image(image.id)
    assert image.hash_algo == "sha256"
    assert image.hash_value == hashlib.sha256(data).hexdigest()
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert conn.image.download_image(image).content == data  # verified with sha256


def test_web_download_import(cloud_factory, tmp_path):
    import functools
    import http.server
    import threading

    data = b"fetched from a web server " * 20000
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "disk.raw").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "www"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    try:
        cloud = cloud_factory(**{"enabled_import_methods": ["glance-direct", "web-download"],
                                 "import_filtering_opts.allowed_ports": [port]})
        glance = tenant(cloud)[0]
        assert glance.get("/v2/info/import").json()["import-methods"]["value"] == [
            "glance-direct", "web-download"]
        image = glance.create(name="from-web")
        path = f"/v2/images/{image['id']}/import"

        def web(uri):
            return glance.post(path, json={"method": {"name": "web-download", "uri": uri}})

        # Filtered out (scheme, port) or no uri: 400, the image stays queued.
        for uri in ("file:///etc/passwd", f"http://127.0.0.1:{port + 1}/disk.raw",
                    "ftp://127.0.0.1/disk.raw", None):
            assert web(uri).status_code == 400, uri
        assert glance.show(image["id"])["status"] == "queued"
        # A URL that is not there: the import fails, the image goes back to queued.
        assert web(f"http://127.0.0.1:{port}/missing.raw").status_code == 202
        wait_for(lambda: glance.show(image["id"])["status"] == "queued", "failed import")
        assert web(f"http://127.0.0.1:{port}/disk.raw").status_code == 202
        shown = wait_for(lambda: (lambda s: s if s["status"] == "active" else None)(
            glance.show(image["id"])), "web-download finished")
        assert shown["checksum"] == hashlib.md5(data).hexdigest()
        assert glance.get(f"/v2/images/{image['id']}/file").content == data
        assert web(f"http://127.0.0.1:{port}/disk.raw").status_code == 409  # not queued
    finally:
        httpd.shutdown()
