"""Fixtures of the compute tests: a small cloud with an image and a network."""

from __future__ import annotations

import time

import pytest

SERVICES = ["identity", "image", "network", "compute"]


def wait_for(fn, what: str, timeout: float = 30.0, interval: float = 0.02):
    """Poll until fn() is truthy (a safety deadline only; never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(interval)


class Env:
    def __init__(self, cloud, conn):
        self.cloud = cloud
        self.conn = conn
        self.image = conn.image.create_image(name="cirros", data=b"fake-disk" * 64,
                                             disk_format="raw", container_format="bare",
                                             visibility="public")
        self.network = conn.network.create_network(name="private", shared=True)
        self.subnet = conn.network.create_subnet(network_id=self.network.id,
                                                 cidr="10.0.0.0/24", ip_version=4)

    def boot(self, conn=None, name="vm", wait=True, **kw):
        conn = conn or self.conn
        kw.setdefault("image_id", self.image.id)
        kw.setdefault("flavor_id", "1")
        kw.setdefault("networks", [{"uuid": self.network.id}])
        server = conn.compute.create_server(name=name, **kw)
        if wait:
            server = conn.compute.wait_for_server(server, interval=0.02, wait=60)
        return server

    def wait_status(self, server, status, conn=None):
        conn = conn or self.conn
        return conn.compute.wait_for_server(server, status=status, interval=0.02, wait=60,
                                            failures=[] if status == "ERROR" else ["ERROR"])


@pytest.fixture
def compute_env(pocketstack_cloud_factory):
    def make(**overrides):
        settings = {"enabled_services": SERVICES, "fake.hosts": 2}
        settings.update(overrides)
        cloud = pocketstack_cloud_factory(**settings)
        return Env(cloud, cloud.connect())
    return make
