"""POST/GET/HEAD/DELETE /v3/auth/tokens, scopes, rescope, auth/*, application credentials."""

from __future__ import annotations

import re

from .conftest import Http, assert_error, unique

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _member(cloud, http):
    creds = cloud.make_user()
    return creds


def test_project_scoped_token_shape(cloud, http):
    r = http.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": cloud.admin_password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert r.status_code == 201
    assert r.headers["X-Subject-Token"]
    assert r.headers["x-openstack-request-id"].startswith("req-")
    token = r.json()["token"]
    assert set(token) == {"methods", "user", "audit_ids", "expires_at", "issued_at",
                          "project", "is_domain", "roles", "catalog"}
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "admin"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["name"] == "admin"
    assert token["project"]["domain"] == {"id": "default", "name": "Default"}
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    assert ISO.match(token["expires_at"]) and ISO.match(token["issued_at"])
    assert len(token["audit_ids"]) == 1
    entry = next(s for s in token["catalog"] if s["type"] == "identity")
    assert {e["interface"] for e in entry["endpoints"]} == {"public", "internal", "admin"}
    assert all(e["region"] == "RegionOne" and e["region_id"] == "RegionOne"
               for e in entry["endpoints"])


def test_unscoped_domain_and_system_tokens(cloud, http):
    _, body = http.issue("admin", cloud.admin_password, scope="unscoped")
    token = body["token"]
    assert "project" not in token and "roles" not in token and "catalog" not in token
    assert token["user"]["domain"]["name"] == "Default"

    # No scope and no default project: unscoped too.
    _, body = http.issue("admin", cloud.admin_password)
    assert "project" not in body["token"]

    _, body = http.issue("admin", cloud.admin_password, scope={"system": {"all": True}})
    assert body["token"]["system"] == {"all": True}
    assert {r["name"] for r in body["token"]["roles"]} >= {"admin"}
    assert "catalog" in body["token"]

    # Domain scope needs a role on the domain.
    http.issue("admin", cloud.admin_password, scope={"domain": {"id": "default"}}, expect=401)
    admin_id = body["token"]["user"]["id"]
    admin_role = next(r["id"] for r in body["token"]["roles"] if r["name"] == "admin")
    r = http.put(f"/v3/domains/default/users/{admin_id}/roles/{admin_role}")
    assert r.status_code == 204
    _, body = http.issue("admin", cloud.admin_password, scope={"domain": {"name": "Default"}})
    assert body["token"]["domain"] == {"id": "default", "name": "Default"}
    assert "project" not in body["token"]


def test_default_project_scope(cloud, http):
    creds = cloud.make_user()
    _, body = http.issue(creds["username"], creds["password"])
    assert body["token"]["project"]["id"] == creds["project_id"]


def test_nocatalog(cloud, http):
    token, body = http.issue("admin", cloud.admin_password,
                             scope={"project": {"name": "admin", "domain": {"id": "default"}}},
                             params={"nocatalog": "1"})
    assert "catalog" not in body["token"]
    r = http.get("/v3/auth/tokens", headers={"X-Subject-Token": token},
                 params={"nocatalog": ""})
    assert r.status_code == 200 and "catalog" not in r.json()["token"]
    r = http.get("/v3/auth/tokens", headers={"X-Subject-Token": token})
    assert "catalog" in r.json()["token"]


def test_validate_check_and_revoke(cloud, http):
    creds = cloud.make_user()
    subject, issued = http.issue(creds["username"], creds["password"],
                                 scope={"project": {"id": creds["project_id"]}})
    r = http.head("/v3/auth/tokens", headers={"X-Subject-Token": subject})
    assert r.status_code == 200
    r = http.get("/v3/auth/tokens", headers={"X-Subject-Token": subject})
    assert r.status_code == 200 and r.headers["X-Subject-Token"] == subject
    validated = r.json()["token"]
    assert validated["audit_ids"] == issued["token"]["audit_ids"]
    assert validated["expires_at"] == issued["token"]["expires_at"]
    assert validated["project"]["id"] == creds["project_id"]

    # A user may validate (and revoke) their own token with itself.
    r = http.get("/v3/auth/tokens", token=subject, headers={"X-Subject-Token": subject})
    assert r.status_code == 200

    r = http.delete("/v3/auth/tokens", headers={"X-Subject-Token": subject})
    assert r.status_code == 204
    assert_error(http.get("/v3/auth/tokens", headers={"X-Subject-Token": subject}), 404)
    assert http.head("/v3/auth/tokens", headers={"X-Subject-Token": subject}).status_code == 404
    assert_error(http.get("/v3/auth/projects", token=subject), 401)
    # Revoking twice: the token no longer exists.
    assert_error(http.delete("/v3/auth/tokens", headers={"X-Subject-Token": subject}), 404)


def test_member_cannot_validate_others_tokens(cloud, http):
    a, b = cloud.make_user(), cloud.make_user()
    ta, _ = http.issue(a["username"], a["password"])
    tb, _ = http.issue(b["username"], b["password"])
    assert_error(http.get("/v3/auth/tokens", token=ta, headers={"X-Subject-Token": tb}), 403)
    assert_error(http.delete("/v3/auth/tokens", token=ta, headers={"X-Subject-Token": tb}), 403)
    # b's token still works.
    assert http.get("/v3/auth/tokens", token=tb, headers={"X-Subject-Token": tb}).status_code == 200


def test_rescope(cloud, http):
    creds = cloud.make_user()
    other = http.post("/v3/projects", json={"project": {"name": unique("p2")}}).json()["project"]
    role = http.get("/v3/roles", params={"name": "reader"}).json()["roles"][0]
    assert http.put(f"/v3/projects/{other['id']}/users/{creds['user_id']}/roles/{role['id']}"
                    ).status_code == 204
    unscoped, body = http.issue(creds["username"], creds["password"], scope="unscoped")
    parent_audit = body["token"]["audit_ids"][0]
    r = http.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"id": other["id"]}}}})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["methods"] == ["token"]
    assert token["project"]["id"] == other["id"]
    assert [x["name"] for x in token["roles"]] == ["reader"]
    assert token["audit_ids"][1] == parent_audit
    assert token["expires_at"] == body["token"]["expires_at"]
    # Rescope from a scoped token to another project works too.
    scoped = r.headers["X-Subject-Token"]
    r = http.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": scoped}},
        "scope": {"project": {"id": creds["project_id"]}}}})
    assert r.status_code == 201
    # No role on a project: 401.
    r = http.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert_error(r, 401)


def test_auth_projects_domains_catalog(cloud, http):
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"], scope="unscoped")
    r = http.get("/v3/auth/projects", token=token)
    assert r.status_code == 200
    assert [p["id"] for p in r.json()["projects"]] == [creds["project_id"]]
    r = http.get("/v3/auth/domains", token=token)
    assert r.json()["domains"] == []
    # The catalog needs a scoped token.
    assert_error(http.get("/v3/auth/catalog", token=token), 403)
    scoped, _ = http.issue(creds["username"], creds["password"],
                           scope={"project": {"id": creds["project_id"]}})
    r = http.get("/v3/auth/catalog", token=scoped)
    assert r.status_code == 200
    assert [s["type"] for s in r.json()["catalog"]] == ["identity"]
    # A domain role shows in auth/domains.
    domain = http.post("/v3/domains", json={"domain": {"name": unique("d")}}).json()["domain"]
    role = http.get("/v3/roles", params={"name": "member"}).json()["roles"][0]
    http.put(f"/v3/domains/{domain['id']}/users/{creds['user_id']}/roles/{role['id']}")
    r = http.get("/v3/auth/domains", token=token)
    assert [d["id"] for d in r.json()["domains"]] == [domain["id"]]
    r = http.get("/v3/auth/system", token=token)
    assert r.json()["system"] == []


def test_application_credentials(cloud, http, conn):
    creds = cloud.make_user()
    user_conn = cloud.connect(username=creds["username"], password=creds["password"],
                              project_name=creds["project_name"])
    app = user_conn.identity.create_application_credential(
        user=creds["user_id"], name="ci", description="for CI")
    assert app.secret and app.project_id == creds["project_id"]
    assert {r["name"] for r in app.roles} == {"member", "reader"}
    listed = list(user_conn.identity.application_credentials(user=creds["user_id"]))
    assert [a.name for a in listed] == ["ci"]
    assert listed[0].secret is None

    # Authenticate with it (by id, and by name + user).
    r = http.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": app.id, "secret": app.secret}}}})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["project"]["id"] == creds["project_id"]
    assert token["application_credential"] == {"id": app.id, "name": "ci", "restricted": True}
    assert token["methods"] == ["application_credential"]
    r = http.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"name": "ci", "secret": app.secret,
                                   "user": {"name": creds["username"],
                                            "domain": {"name": "Default"}}}}}})
    assert r.status_code == 201
    app_token = r.headers["X-Subject-Token"]

    # openstacksdk with the v3applicationcredential plugin.
    import openstack

    ac = openstack.connect(auth_type="v3applicationcredential", auth={
        "auth_url": cloud.auth_url, "application_credential_id": app.id,
        "application_credential_secret": app.secret}, region_name="RegionOne",
        load_yaml_config=False, load_envvars=False)
    assert ac.identity.get_project(creds["project_id"]).name == creds["project_name"]
    ac.close()

    # Wrong secret: 401. A restricted app-cred token cannot make more app creds.
    r = http.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": app.id, "secret": "nope"}}}})
    assert_error(r, 401)
    r = http.post(f"/v3/users/{creds['user_id']}/application_credentials", token=app_token,
                  json={"application_credential": {"name": "more"}})
    assert_error(r, 403)

    # Delete it: its tokens stop working.
    user_conn.identity.delete_application_credential(creds["user_id"], app.id)
    assert_error(http.get("/v3/auth/projects", token=app_token), 401)
    user_conn.close()


def test_application_credential_role_subset(cloud, http):
    creds = cloud.make_user()
    t, _ = http.issue(creds["username"], creds["password"],
                      scope={"project": {"id": creds["project_id"]}})
    u = Http(cloud, t)
    r = u.post(f"/v3/users/{creds['user_id']}/application_credentials",
               json={"application_credential": {"name": "ro", "roles": [{"name": "reader"}],
                                                 "secret": "s3cret"}})
    assert r.status_code == 201, r.text
    app = r.json()["application_credential"]
    assert app["secret"] == "s3cret" and [x["name"] for x in app["roles"]] == ["reader"]
    r = http.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": app["id"], "secret": "s3cret"}}}})
    assert [x["name"] for x in r.json()["token"]["roles"]] == ["reader"]
    # A role the user lacks: 404, nothing created.
    r = u.post(f"/v3/users/{creds['user_id']}/application_credentials",
               json={"application_credential": {"name": "x", "roles": [{"name": "admin"}]}})
    assert_error(r, 404)
    # Duplicate name: 409.
    r = u.post(f"/v3/users/{creds['user_id']}/application_credentials",
               json={"application_credential": {"name": "ro"}})
    assert_error(r, 409)
    names = [a["name"] for a in u.get(f"/v3/users/{creds['user_id']}/application_credentials"
                                      ).json()["application_credentials"]]
    assert names == ["ro"]
    u.close()
