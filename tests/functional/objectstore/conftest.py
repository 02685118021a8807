"""Object storage functional tests: a small cloud, raw HTTP and the swift CLI."""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from pocketstack.objectstore.storage import TMP_PREFIX
from tests.conftest import missing


class Swift:
    """Raw Object Storage v1 calls with a token (or none)."""

    def __init__(self, cloud, creds: dict | None = None):
        self.cloud = cloud
        self.creds = creds
        client = httpx.Client(timeout=60)
        auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": creds["username"] if creds else "admin",
            "password": creds["password"] if creds else cloud.admin_password,
            "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": creds["project_name"] if creds else "admin",
                                  "domain": {"name": "Default"}}}}
        r = client.post(cloud.auth_url + "/v3/auth/tokens", json={"auth": auth})
        assert r.status_code == 201, r.text
        self.token = r.headers["X-Subject-Token"]
        self.project_id = r.json()["token"]["project"]["id"]
        self.account = f"AUTH_{self.project_id}"
        self.base = f"{cloud.url}/object-store/v1/{self.account}"
        self.client = client

    def url(self, path: str = "", account: str | None = None) -> str:
        base = self.base if account is None else f"{self.cloud.url}/object-store/v1/{account}"
        return base + (("/" + path.lstrip("/")) if path else "")

    def request(self, method: str, path: str = "", *, token: str | None | bool = True,
                headers=None, account=None, **kw) -> httpx.Response:
        hdrs = dict(headers or {})
        if token is True:
            hdrs["X-Auth-Token"] = self.token
        elif token:
            hdrs["X-Auth-Token"] = token
        return self.client.request(method, self.url(path, account), headers=hdrs, **kw)

    def __getattr__(self, name):
        if name in ("get", "put", "post", "delete", "head", "copy"):
            return lambda path="", **kw: self.request(name.upper(), path, **kw)
        raise AttributeError(name)


def swift_cli(cloud, *args: str, creds: dict | None = None, check: bool = True,
              cwd: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("swift")
    if exe is None:
        missing("swift (python-swiftclient)")
    creds = creds or {}
    env = cloud.env(creds.get("username", "admin"), creds.get("password"),
                    creds.get("project_name", "admin"))
    proc = subprocess.run([exe, "--os-auth-url", cloud.auth_url, "--auth-version", "3", *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=cwd)
    if check:
        assert proc.returncode == 0, f"swift {' '.join(args)}:\n{proc.stderr}\n{proc.stdout}"
    return proc


@pytest.fixture
def cloud(pocketstack_cloud_factory):
    return pocketstack_cloud_factory(enabled_services=["identity", "objectstore"])


@pytest.fixture
def swift(cloud):
    client = Swift(cloud)
    yield client
    client.client.close()


@pytest.fixture
def store(cloud):
    return cloud.cloud.services["objectstore"].store


def tmp_files(store) -> list[str]:
    """Uploads not (yet) installed: in the temporary directory, or being sealed
    beside their object."""
    disk = store.disk
    found = os.listdir(disk.tmp_dir)
    for sub in os.listdir(disk.obj_dir):
        found += [n for n in os.listdir(os.path.join(disk.obj_dir, sub))
                  if n.startswith(TMP_PREFIX)]
    return found


def assert_swift_error(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    if r.request.method != "HEAD" and status not in (304,):
        assert r.headers["content-type"].startswith("text/html")
        assert r.text.startswith("<html><h1>")
    assert r.headers.get("x-trans-id")
    assert r.headers.get("x-openstack-request-id")
