"""Helpers for networking's functional tests: a small cloud, raw HTTP, tenants."""

from __future__ import annotations

import uuid

import httpx
import pytest


class Http:
    """Raw Networking v2.0 calls with a token (for exact shapes and error bodies)."""

    def __init__(self, cloud, token: str):
        self.cloud = cloud
        self.token = token
        self.client = httpx.Client(base_url=f"{cloud.url}/networking/v2.0", timeout=60,
                                   headers={"X-Auth-Token": token})

    def request(self, method, path, **kw) -> httpx.Response:
        return self.client.request(method, path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create(self, kind: str, expect: int = 201, **body) -> dict:
        coll = {"security_group": "security-groups",
                "security_group_rule": "security-group-rules"}.get(kind, kind + "s")
        r = self.post(f"/{coll}", json={kind: body})
        assert r.status_code == expect, r.text
        return r.json()[kind] if expect == 201 else r.json()

    def close(self):
        self.client.close()


def token_for(cloud, username="admin", password=None, project_name="admin") -> str:
    r = httpx.post(f"{cloud.auth_url}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": username, "password": password or cloud.admin_password,
            "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": project_name, "domain": {"name": "Default"}}}}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def assert_error(r: httpx.Response, status: int, kind: str | None = None) -> dict:
    """A Neutron-shaped error body with this status (and type)."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    assert isinstance(err["message"], str) and err["message"]
    if kind is not None:
        assert err["type"] == kind, err
    assert r.headers.get("x-openstack-request-id", "").startswith("req-")
    return err


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Tenant:
    def __init__(self, cloud, creds: dict):
        self.creds = creds
        self.project_id = creds["project_id"]
        self.http = Http(cloud, token_for(cloud, creds["username"], creds["password"],
                                          creds["project_name"]))
        self._cloud = cloud
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self._cloud.connect(username=self.creds["username"],
                                             password=self.creds["password"],
                                             project_name=self.creds["project_name"])
        return self._conn

    def cli(self, *args, **kw):
        return self._cloud.cli(*args, username=self.creds["username"],
                               password=self.creds["password"],
                               project_name=self.creds["project_name"], **kw)


@pytest.fixture
def cloud(pocketstack_cloud_factory):
    """A cloud running identity and networking only."""
    return pocketstack_cloud_factory(enabled_services=["identity", "network"])


@pytest.fixture
def admin(cloud):
    client = Http(cloud, token_for(cloud))
    yield client
    client.close()


@pytest.fixture
def conn(cloud):
    return cloud.connect()


@pytest.fixture
def make_tenant(cloud):
    made = []

    def make() -> Tenant:
        tenant = Tenant(cloud, cloud.make_user())
        made.append(tenant)
        return tenant

    yield make
    for tenant in made:
        tenant.http.close()


@pytest.fixture
def manager(cloud):
    return cloud.cloud.services["network"].manager
