"""Bad input gets Keystone's 4xx error body and writes nothing."""

from __future__ import annotations

import time

import pytest

from pocketstack.identity.tokens import Payload

from .conftest import Http, assert_error, unique


def _counts(http) -> dict:
    return {c: len(http.get(f"/v3/{c}").json()[c])
            for c in ("users", "projects", "domains", "groups", "roles", "regions",
                      "services", "endpoints", "credentials")}


@pytest.mark.parametrize("path,body", [
    ("/v3/users", b'{"user": {"name": "x",'),
    ("/v3/projects", b"not json"),
    ("/v3/domains", b'\xff\xfe'),
    ("/v3/auth/tokens", b"{"),
])
def test_malformed_json(http, path, body):
    before = _counts(http)
    r = http.post(path, content=body)
    err = assert_error(r, 400)
    assert "JSON" in err["message"] or "json" in err["message"]
    assert _counts(http) == before


LONG = "n" * 256


@pytest.mark.parametrize("path,body,words", [
    ("/v3/users", {"user": {"name": 42}}, "name"),
    ("/v3/users", {"user": {"name": "ok", "enabled": "yes"}}, "enabled"),
    ("/v3/users", {"user": {"description": "no name"}}, "name"),
    ("/v3/users", {"user": {"name": LONG}}, "name"),
    ("/v3/users", {"usr": {"name": "typo"}}, "user"),
    ("/v3/users", ["user"], ""),
    ("/v3/projects", {"project": {"name": LONG}}, "name"),
    ("/v3/projects", {"project": {"name": "p", "tags": "a"}}, "tags"),
    ("/v3/projects", {"project": {"name": "p", "is_domain": True}}, "is_domain"),
    ("/v3/projects", {"project": {}}, "name"),
    ("/v3/domains", {"domain": {"name": ""}}, "name"),
    ("/v3/domains", {"domain": {"name": LONG}}, "name"),
    ("/v3/groups", {"group": {"name": None}}, "name"),
    ("/v3/roles", {"role": {"name": LONG}}, "name"),
    ("/v3/services", {"service": {"name": "no type"}}, "type"),
    ("/v3/endpoints", {"endpoint": {"service_id": "x", "interface": "sideways",
                                    "url": "http://x"}}, "interface"),
    ("/v3/endpoints", {"endpoint": {"service_id": "x", "interface": "public",
                                    "url": "not a url"}}, "url"),
    ("/v3/credentials", {"credential": {"type": "ec2", "blob": "{}"}}, "user_id"),
    ("/v3/regions", {"region": {"id": LONG}}, "id"),
    ("/v3/auth/tokens", {"auth": {}}, "identity"),
    ("/v3/auth/tokens", {"auth": {"identity": {"methods": "password"}}}, "methods"),
    ("/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": 12}}}}}, "password"),
])
def test_schema_violations(http, path, body, words):
    before = _counts(http)
    err = assert_error(http.post(path, json=body), 400)
    assert words in err["message"]
    assert _counts(http) == before


def test_bad_updates_write_nothing(http, conn):
    user = conn.identity.create_user(name=unique("u"))
    r = http.patch(f"/v3/users/{user.id}", json={"user": {"name": LONG}})
    assert_error(r, 400)
    r = http.patch(f"/v3/users/{user.id}", json={"user": {"enabled": 1}})
    assert_error(r, 400)
    r = http.patch(f"/v3/users/{user.id}", json={"user": {"domain_id": "other"}})
    assert_error(r, 400)
    assert conn.identity.get_user(user.id).name == user.name
    project = conn.identity.create_project(name=unique("p"))
    assert_error(http.patch(f"/v3/projects/{project.id}",
                            json={"project": {"parent_id": "elsewhere"}}), 400)
    assert_error(http.put(f"/v3/projects/{project.id}/tags", json={"tags": ["a,b"]}), 400)
    assert_error(http.put(f"/v3/projects/{project.id}/tags", json={"tags": ["t"] * 81}), 400)
    assert conn.identity.get_project(project.id).tags == []


def test_unknown_ids(http, conn):
    before = _counts(http)
    missing = "0" * 32
    assert_error(http.post("/v3/users", json={"user": {"name": "u", "domain_id": missing}}), 404)
    assert_error(http.post("/v3/users", json={"user": {"name": "u",
                                                       "default_project_id": missing}}), 404)
    assert_error(http.post("/v3/projects", json={"project": {"name": "p",
                                                             "domain_id": missing}}), 404)
    assert_error(http.post("/v3/projects", json={"project": {"name": "p",
                                                             "parent_id": missing}}), 404)
    assert_error(http.post("/v3/groups", json={"group": {"name": "g", "domain_id": missing}}),
                 404)
    assert_error(http.post("/v3/endpoints", json={"endpoint": {
        "service_id": missing, "interface": "public", "url": "http://x"}}), 404)
    assert_error(http.post("/v3/regions", json={"region": {"id": "R9",
                                                           "parent_region_id": missing}}), 404)
    assert_error(http.post("/v3/credentials", json={"credential": {
        "user_id": missing, "type": "ec2", "blob": "{}"}}), 404)
    for kind in ("users", "projects", "domains", "groups", "roles", "regions", "services",
                 "endpoints", "credentials"):
        err = assert_error(http.get(f"/v3/{kind}/{missing}"), 404)
        assert missing in err["message"]
        assert_error(http.patch(f"/v3/{kind}/{missing}", json={kind[:-1]: {}}), 404) \
            if kind not in ("regions",) else None
        assert_error(http.delete(f"/v3/{kind}/{missing}"), 404)
    role = conn.identity.find_role("member")
    admin = conn.identity.find_user("admin")
    assert_error(http.put(f"/v3/projects/{missing}/users/{admin.id}/roles/{role.id}"), 404)
    assert_error(http.put(f"/v3/projects/{conn.identity.find_project('admin').id}/users/"
                          f"{missing}/roles/{role.id}"), 404)
    assert_error(http.put(f"/v3/domains/default/users/{admin.id}/roles/{missing}"), 404)
    assert_error(http.delete(f"/v3/domains/default/users/{admin.id}/roles/{role.id}"), 404)
    assert_error(http.put(f"/v3/groups/{missing}/users/{admin.id}"), 404)
    assert_error(http.get("/v3/nothing-here"), 404)
    assert_error(http.request("PUT", "/v3/users"), 405)
    assert _counts(http) == before


def test_duplicates_conflict(http, conn):
    name = unique("dup")
    conn.identity.create_user(name=name)
    before = _counts(http)
    err = assert_error(http.post("/v3/users", json={"user": {"name": name}}), 409)
    assert "Duplicate" in err["message"]
    conn.identity.create_project(name=name)
    assert_error(http.post("/v3/projects", json={"project": {"name": name}}), 409)
    conn.identity.create_group(name=name)
    assert_error(http.post("/v3/groups", json={"group": {"name": name}}), 409)
    assert_error(http.post("/v3/domains", json={"domain": {"name": "Default"}}), 409)
    assert_error(http.post("/v3/roles", json={"role": {"name": "member"}}), 409)
    assert_error(http.post("/v3/regions", json={"region": {"id": "RegionOne"}}), 409)
    # Renaming onto an existing name.
    other = conn.identity.create_user(name=unique("other"))
    assert_error(http.patch(f"/v3/users/{other.id}", json={"user": {"name": name}}), 409)
    after = _counts(http)
    assert after == {**before, "projects": before["projects"] + 1,
                     "groups": before["groups"] + 1, "users": before["users"] + 1}
    # Same name in another domain is fine.
    d = conn.identity.create_domain(name=unique("d"))
    assert http.post("/v3/users", json={"user": {"name": name, "domain_id": d.id}}
                     ).status_code == 201


def test_wrong_password_gives_no_hint(cloud, http):
    creds = cloud.make_user()
    bodies = []
    for user in ({"name": creds["username"], "domain": {"name": "Default"}, "password": "bad"},
                 {"name": "nobody-at-all", "domain": {"name": "Default"}, "password": "bad"},
                 {"name": creds["username"], "domain": {"name": "NoSuchDomain"},
                  "password": creds["password"]},
                 {"id": "0" * 32, "password": "bad"},
                 {"id": creds["user_id"], "password": ""}):
        r = http.client.post("/v3/auth/tokens", json={"auth": {"identity": {
            "methods": ["password"], "password": {"user": user}}}})
        bodies.append(assert_error(r, 401))
        assert "X-Subject-Token" not in r.headers
    assert all(b == bodies[0] for b in bodies), bodies
    assert "password" not in bodies[0]["message"].lower()
    # A scope the user has no role on: 401 as well.
    r = http.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "id": creds["user_id"], "password": creds["password"]}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert assert_error(r, 401) == bodies[0]


def test_bad_tokens(cloud, http):
    identity = cloud.cloud.services["identity"]
    formatter = identity.authenticator.formatter
    admin_id = http.get("/v3/users", params={"name": "admin"}).json()["users"][0]["id"]
    now = time.time()
    expired = formatter.encode(Payload(user_id=admin_id, methods=["password"],
                                       expires_at=now - 5, issued_at=now - 3605,
                                       audit_ids=["AAAAAAAAAAAAAAAAAAAAAA"]))
    good = http.token
    for bad in (expired, "garbage", good[:-4] + "AAAA", "gAAAAA" + "x" * 100, "x" * 5000):
        err = assert_error(http.get("/v3/users", token=bad), 401)
        assert err["title"] == "Unauthorized"
        r = http.get("/v3/auth/tokens", headers={"X-Subject-Token": bad})
        assert_error(r, 404)
        r = http.client.post("/v3/auth/tokens", json={"auth": {"identity": {
            "methods": ["token"], "token": {"id": bad}}}})
        assert_error(r, 401)
    r = http.client.get("/v3/users")
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")
    assert_error(http.get("/v3/auth/tokens"), 400)  # no X-Subject-Token


def test_member_calling_admin_apis(cloud, http):
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"],
                          scope={"project": {"id": creds["project_id"]}})
    member = Http(cloud, token)
    before = _counts(http)
    for method, path, body in [
        ("GET", "/v3/users", None),
        ("POST", "/v3/users", {"user": {"name": "sneaky"}}),
        ("POST", "/v3/projects", {"project": {"name": "sneaky"}}),
        ("POST", "/v3/domains", {"domain": {"name": "sneaky"}}),
        ("POST", "/v3/roles", {"role": {"name": "sneaky"}}),
        ("POST", "/v3/services", {"service": {"type": "sneaky"}}),
        ("POST", "/v3/regions", {"region": {"id": "sneaky"}}),
        ("GET", "/v3/role_assignments", None),
        ("GET", "/v3/groups", None),
        ("PATCH", f"/v3/projects/{creds['project_id']}", {"project": {"name": "mine"}}),
        ("DELETE", f"/v3/projects/{creds['project_id']}", None),
        ("PATCH", f"/v3/users/{creds['user_id']}", {"user": {"enabled": True}}),
        ("PUT", f"/v3/projects/{creds['project_id']}/users/{creds['user_id']}/roles/"
                f"{http.get('/v3/roles', params={'name': 'admin'}).json()['roles'][0]['id']}",
         None),
    ]:
        err = assert_error(member.request(method, path, json=body), 403)
        assert "not authorized" in err["message"]
    # A member still reads itself and its project.
    assert member.get(f"/v3/users/{creds['user_id']}").status_code == 200
    assert member.get(f"/v3/projects/{creds['project_id']}").status_code == 200
    assert member.get("/v3/role_assignments", params={"user.id": creds["user_id"]}
                      ).status_code == 200
    other = http.get("/v3/projects", params={"name": "admin"}).json()["projects"][0]
    assert_error(member.get(f"/v3/projects/{other['id']}"), 403)
    assert _counts(http) == before
    member.close()


def test_domain_admin_stays_in_its_domain(cloud, http, conn):
    d1 = conn.identity.create_domain(name=unique("d1"))
    d2 = conn.identity.create_domain(name=unique("d2"))
    boss = conn.identity.create_user(name="boss", domain_id=d1.id, password="pw")
    conn.identity.create_user(name="u1", domain_id=d1.id)
    outsider = conn.identity.create_user(name="u2", domain_id=d2.id)
    admin_role = conn.identity.find_role("admin")
    conn.identity.assign_domain_role_to_user(d1, boss, admin_role)
    token, body = http.issue("boss", "pw", domain=d1.name, scope={"domain": {"id": d1.id}})
    assert body["token"]["domain"]["id"] == d1.id
    da = Http(cloud, token)
    names = sorted(u["name"] for u in da.get("/v3/users").json()["users"])
    assert names == ["boss", "u1"]
    assert da.get("/v3/users", params={"domain_id": d1.id}).status_code == 200
    before = _counts(http)
    assert_error(da.get("/v3/users", params={"domain_id": d2.id}), 403)
    assert_error(da.get(f"/v3/users/{outsider.id}"), 403)
    assert_error(da.patch(f"/v3/users/{outsider.id}", json={"user": {"enabled": False}}), 403)
    assert_error(da.post("/v3/users", json={"user": {"name": "x", "domain_id": d2.id}}), 403)
    assert_error(da.get("/v3/groups", params={"domain_id": d2.id}), 403)
    assert_error(da.get("/v3/projects", params={"domain_id": d2.id}), 403)
    assert_error(da.post("/v3/domains", json={"domain": {"name": "nope"}}), 403)
    assert _counts(http) == before
    # Inside its own domain it administers.
    r = da.post("/v3/users", json={"user": {"name": "new-in-d1"}})
    assert r.status_code == 201 and r.json()["user"]["domain_id"] == d1.id
    r = da.post("/v3/projects", json={"project": {"name": "proj-in-d1"}})
    assert r.status_code == 201 and r.json()["project"]["domain_id"] == d1.id
    da.close()
