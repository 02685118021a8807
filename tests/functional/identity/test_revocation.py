"""Revocation: token delete, user disabled, password changed, role removed, and expiry.

Each case first makes the service-side validator (common/auth.py) cache the token by
using it, then checks that the cache no longer accepts it."""

from __future__ import annotations

import time

from .conftest import Http, assert_error


def _scoped(cloud, http, creds):
    token, _ = http.issue(creds["username"], creds["password"],
                          scope={"project": {"id": creds["project_id"]}})
    user = Http(cloud, token)
    assert user.get(f"/v3/users/{creds['user_id']}").status_code == 200
    validator = cloud.cloud.services["identity"].validator
    assert validator.cached(token) is not None  # the service cache holds it now
    return token, user, validator


def _assert_dead(user, validator, token):
    assert_error(user.get("/v3/auth/projects"), 401)
    assert validator.cached(token) is None
    r = user.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": token}}}})
    assert_error(r, 401)


def test_token_delete(cloud, http):
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    other, _ = http.issue(creds["username"], creds["password"])
    assert http.delete("/v3/auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
    _assert_dead(user, validator, token)
    # Only that token: the user's other token lives on.
    assert http.get("/v3/auth/tokens", headers={"X-Subject-Token": other}).status_code == 200


def test_user_disabled(cloud, http):
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    assert http.patch(f"/v3/users/{creds['user_id']}",
                      json={"user": {"enabled": False}}).status_code == 200
    _assert_dead(user, validator, token)
    # Enabling again does not bring old tokens back.
    http.patch(f"/v3/users/{creds['user_id']}", json={"user": {"enabled": True}})
    _assert_dead(user, validator, token)
    http.issue(creds["username"], creds["password"])


def test_password_changed_by_user(cloud, http):
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    r = user.post(f"/v3/users/{creds['user_id']}/password", json={"user": {
        "original_password": creds["password"], "password": "another-secret"}})
    assert r.status_code == 204, r.text
    _assert_dead(user, validator, token)
    http.issue(creds["username"], "another-secret")


def test_password_reset_by_admin(cloud, http):
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    http.patch(f"/v3/users/{creds['user_id']}", json={"user": {"password": "reset-pw"}})
    _assert_dead(user, validator, token)


def test_wrong_original_password_changes_nothing(cloud, http):
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    r = user.post(f"/v3/users/{creds['user_id']}/password", json={"user": {
        "original_password": "wrong", "password": "another-secret"}})
    assert_error(r, 401)
    assert user.get("/v3/auth/projects").status_code == 200
    http.issue(creds["username"], creds["password"])


def test_role_removed(cloud, http):
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    member = http.get("/v3/roles", params={"name": "member"}).json()["roles"][0]["id"]
    r = http.delete(f"/v3/projects/{creds['project_id']}/users/{creds['user_id']}/roles/{member}")
    assert r.status_code == 204
    _assert_dead(user, validator, token)
    assert_error(http.get("/v3/auth/tokens", headers={"X-Subject-Token": token}), 404)


def test_role_deleted_drops_it_from_tokens(cloud, http):
    creds = cloud.make_user()
    extra = http.post("/v3/roles", json={"role": {"name": "extra"}}).json()["role"]
    http.put(f"/v3/projects/{creds['project_id']}/users/{creds['user_id']}/roles/{extra['id']}")
    token, user, validator = _scoped(cloud, http, creds)
    r = http.get("/v3/auth/tokens", headers={"X-Subject-Token": token})
    assert "extra" in {x["name"] for x in r.json()["token"]["roles"]}
    assert http.delete(f"/v3/roles/{extra['id']}").status_code == 204
    r = http.get("/v3/auth/tokens", headers={"X-Subject-Token": token})
    if r.status_code == 200:
        assert "extra" not in {x["name"] for x in r.json()["token"]["roles"]}
    assert validator.cached(token) is None or "extra" not in validator.cached(token).roles


def test_user_and_project_deleted(cloud, http):
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    assert http.delete(f"/v3/projects/{creds['project_id']}").status_code == 204
    _assert_dead(user, validator, token)
    creds = cloud.make_user()
    token, user, validator = _scoped(cloud, http, creds)
    assert http.delete(f"/v3/users/{creds['user_id']}").status_code == 204
    _assert_dead(user, validator, token)


def test_domain_disabled(cloud, http):
    d = http.post("/v3/domains", json={"domain": {"name": "dd"}}).json()["domain"]
    u = http.post("/v3/users", json={"user": {"name": "du", "domain_id": d["id"],
                                              "password": "pw"}}).json()["user"]
    token, _ = http.issue("du", "pw", domain="dd")
    user = Http(cloud, token)
    assert user.get(f"/v3/users/{u['id']}").status_code == 200
    http.patch(f"/v3/domains/{d['id']}", json={"domain": {"enabled": False}})
    assert_error(user.get(f"/v3/users/{u['id']}"), 401)
    http.issue("du", "pw", domain="dd", expect=401)


def test_expiry_honoured(pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                         "token.expiration": 2})
    http = Http(cloud)
    token, body = http.issue("admin", cloud.admin_password,
                             scope={"project": {"name": "admin", "domain": {"id": "default"}}})
    http.token = token
    assert http.get("/v3/users").status_code == 200
    issued, expires = body["token"]["issued_at"], body["token"]["expires_at"]
    assert expires > issued
    time.sleep(2.5)
    assert_error(http.get("/v3/users"), 401)
    assert cloud.cloud.services["identity"].validator.cached(token) is None
    r = http.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": token}}}})
    assert_error(r, 401)
    http.close()
