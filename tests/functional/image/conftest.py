"""Helpers for the image service's functional tests: a small cloud and raw HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from tests.conftest import missing


class Glance:
    """Raw Image v2 calls with a user's token (what the SDK hides or checks loosely)."""

    def __init__(self, cloud, conn):
        self.cloud = cloud
        self.conn = conn
        self.token = conn.session.get_token()
        self.client = httpx.Client(base_url=cloud.url + "/image", timeout=60,
                                   headers={"X-Auth-Token": self.token})

    def __getattr__(self, name):
        return getattr(self.client, name)

    def create(self, **body) -> dict:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        r = self.client.post("/v2/images", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def upload(self, image_id: str, data: bytes, expect: int = 204) -> httpx.Response:
        r = self.client.put(f"/v2/images/{image_id}/file", content=data,
                            headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == expect, r.text
        return r

    def patch(self, image_id: str, ops: list, expect: int = 200,
              content_type="application/openstack-images-v2.1-json-patch") -> httpx.Response:
        r = self.client.patch(f"/v2/images/{image_id}", json=ops,
                              headers={"Content-Type": content_type})
        assert r.status_code == expect, r.text
        return r

    def show(self, image_id: str) -> dict:
        r = self.client.get(f"/v2/images/{image_id}")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def cloud_factory(pocketstack_cloud_factory):
    def make(**overrides):
        return pocketstack_cloud_factory(enabled_services=["identity", "image"], **overrides)

    return make


@pytest.fixture
def cloud(cloud_factory):
    return cloud_factory()


@pytest.fixture
def admin(cloud):
    return Glance(cloud, cloud.connect())


def tenant(cloud, **kw) -> tuple[Glance, dict]:
    creds = cloud.make_user(**kw)
    conn = cloud.connect(username=creds["username"], password=creds["password"],
                         project_name=creds["project_name"])
    return Glance(cloud, conn), creds


@pytest.fixture
def qcow2(tmp_path):
    """A real qcow2 file of 1 GiB virtual size, made by qemu-img."""
    qemu_img = shutil.which("qemu-img")
    if not qemu_img:
        missing("qemu-img (Debian package qemu-utils)")
    path = tmp_path / "disk.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(path), "1G"], check=True)
    return path


def image_files(cloud) -> list[str]:
    """Everything in the file store and the staging area (tests check nothing is left)."""
    found = []
    for sub in ("images", "images-staging"):
        path = os.path.join(cloud.state_path, sub)
        if os.path.isdir(path):
            found += [os.path.join(sub, name) for name in os.listdir(path)]
    return found
