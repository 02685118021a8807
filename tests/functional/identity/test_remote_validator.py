"""A service run apart from identity validates tokens over HTTP (common/auth.py)."""

from __future__ import annotations

import types

import httpx
import pytest
from starlette.testclient import TestClient

from pocketstack import config
from pocketstack.common.auth import RemoteTokenValidator, validator_for
from pocketstack.common.http import Api, RequestIdMiddleware, keystone_error_body

from .conftest import Http, assert_error


@pytest.fixture
def service_user(cloud, http):
    project = http.get("/v3/projects", params={"name": "service"}).json()["projects"][0]
    role = http.get("/v3/roles", params={"name": "service"}).json()["roles"][0]
    user = http.post("/v3/users", json={"user": {"name": "svc", "password": "svc-pass"}}
                     ).json()["user"]
    assert http.put(f"/v3/projects/{project['id']}/users/{user['id']}/roles/{role['id']}"
                    ).status_code == 204
    return user


def _conf(cloud, **extra):
    return config.load([], {"state_path": cloud.state_path,
                            "keystone_authtoken.auth_url": cloud.auth_url,
                            "keystone_authtoken.username": "svc",
                            "keystone_authtoken.password": "svc-pass", **extra})


def _app(validator):
    api = Api(error_body=keystone_error_body, authenticate=validator)

    @api.route("/whoami")
    def whoami(req):
        c = req.context
        return {"user_id": c.user_id, "project_id": c.project_id, "roles": c.roles,
                "domain": c.user_domain_name, "admin": c.is_admin}

    return TestClient(RequestIdMiddleware(api.app()))


def test_remote_validation(cloud, http, service_user):
    calls = []
    client = httpx.Client(event_hooks={"request": [lambda r: calls.append(r.url.path)]})
    validator = RemoteTokenValidator(_conf(cloud), client=client)
    app = _app(validator)
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"],
                          scope={"project": {"id": creds["project_id"]}})

    r = app.get("/whoami", headers={"X-Auth-Token": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": creds["user_id"], "project_id": creds["project_id"],
                        "roles": ["member", "reader"], "domain": "Default", "admin": False}
    assert calls == ["/identity/v3/auth/tokens", "/identity/v3/auth/tokens"]  # login, check
    # Cached: identity is not asked again.
    assert app.get("/whoami", headers={"X-Auth-Token": token}).status_code == 200
    assert len(calls) == 2
    admin = app.get("/whoami", headers={"X-Auth-Token": http.token})
    assert admin.json()["admin"] is True

    r = app.get("/whoami")
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.auth_url}"'
    assert_error(app.get("/whoami", headers={"X-Auth-Token": "garbage"}), 401)
    client.close()


def test_remote_validation_sees_revocation_when_uncached(cloud, http, service_user):
    validator = RemoteTokenValidator(_conf(cloud), cache_time=0)
    app = _app(validator)
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"])
    assert app.get("/whoami", headers={"X-Auth-Token": token}).status_code == 200
    assert http.delete("/v3/auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
    assert_error(app.get("/whoami", headers={"X-Auth-Token": token}), 401)


def test_service_token_renewed(cloud, http, service_user):
    validator = RemoteTokenValidator(_conf(cloud), cache_time=0)
    app = _app(validator)
    token, _ = http.issue("svc", "svc-pass")
    assert app.get("/whoami", headers={"X-Auth-Token": token}).status_code == 200
    # Revoke the service's own token: the validator logs in again and carries on.
    svc_token = validator._service_token
    Http(cloud, http.token).delete("/v3/auth/tokens", headers={"X-Subject-Token": svc_token})
    assert app.get("/whoami", headers={"X-Auth-Token": http.token}).status_code == 200
    assert validator._service_token != svc_token


def test_identity_unreachable_or_misconfigured(cloud, http, service_user):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = RemoteTokenValidator(_conf(cloud, **{
        "keystone_authtoken.auth_url": f"http://127.0.0.1:{port}/identity"}))
    assert_error(_app(down).get("/whoami", headers={"X-Auth-Token": http.token}), 503)
    wrong = RemoteTokenValidator(_conf(cloud, **{"keystone_authtoken.password": "nope"}))
    assert_error(_app(wrong).get("/whoami", headers={"X-Auth-Token": http.token}), 503)


def test_validator_for(cloud):
    assert validator_for(cloud.cloud) is cloud.cloud.services["identity"].validator
    apart = types.SimpleNamespace(services={}, conf=_conf(cloud))
    remote = validator_for(apart)
    assert isinstance(remote, RemoteTokenValidator) and validator_for(apart) is remote
