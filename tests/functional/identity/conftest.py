"""Helpers for identity's functional tests: a small cloud and a raw HTTP client."""

from __future__ import annotations

import uuid

import httpx
import pytest


class Http:
    """Raw Identity v3 calls (for what openstacksdk does not expose or checks loosely)."""

    def __init__(self, cloud, token: str | None = None):
        self.cloud = cloud
        self.base = cloud.auth_url
        self.client = httpx.Client(base_url=self.base, timeout=30)
        self.token = token

    def request(self, method: str, path: str, *, token: str | None = None, json=None,
                content=None, headers=None, params=None) -> httpx.Response:
        hdrs = dict(headers or {})
        tok = token if token is not None else self.token
        if tok:
            hdrs.setdefault("X-Auth-Token", tok)
        if content is not None:
            hdrs.setdefault("Content-Type", "application/json")
        return self.client.request(method, path, json=json, content=content, headers=hdrs,
                                   params=params)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def issue(self, username=None, password=None, *, user_id=None, domain="Default",
              scope=None, methods=None, expect=201, params=None) -> tuple[str, dict]:
        user = {"password": password}
        if user_id:
            user["id"] = user_id
        else:
            user.update(name=username, domain={"name": domain})
        body = {"auth": {"identity": {"methods": methods or ["password"],
                                      "password": {"user": user}}}}
        if scope is not None:
            body["auth"]["scope"] = scope
        r = self.client.post("/v3/auth/tokens", json=body, params=params)
        assert r.status_code == expect, r.text
        return r.headers.get("X-Subject-Token"), r.json()

    def admin_token(self) -> str:
        token, _ = self.issue("admin", self.cloud.admin_password,
                              scope={"project": {"name": "admin", "domain": {"name": "Default"}}})
        return token

    def close(self):
        self.client.close()


def assert_error(r: httpx.Response, status: int) -> dict:
    """A Keystone-shaped error body with this status."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["title"], str)
    assert r.headers.get("x-openstack-request-id", "").startswith("req-")
    return body["error"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cloud(pocketstack_cloud_factory):
    """A cloud running only identity."""
    return pocketstack_cloud_factory(enabled_services=["identity"])


@pytest.fixture
def http(cloud):
    client = Http(cloud)
    client.token = client.admin_token()
    yield client
    client.close()


@pytest.fixture
def conn(cloud):
    return cloud.connect()
