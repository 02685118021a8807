"""Domains, projects, users, groups, roles, catalog, credentials through openstacksdk."""

from __future__ import annotations

import json

import openstack.exceptions as osexc
import pytest

from .conftest import Http, assert_error, unique


def test_domains(conn, http):
    d = conn.identity.create_domain(name=unique("dom"), description="a domain")
    assert d.is_enabled is True and d.description == "a domain"
    assert conn.identity.get_domain(d.id).name == d.name
    assert conn.identity.find_domain(d.name).id == d.id
    d = conn.identity.update_domain(d, description="changed")
    assert d.description == "changed"
    # An enabled domain cannot be deleted.
    with pytest.raises(osexc.ForbiddenException):
        conn.identity.delete_domain(d)
    conn.identity.update_domain(d, is_enabled=False)
    names = [x.name for x in conn.identity.domains(is_enabled=False)]
    assert names == [d.name]
    conn.identity.delete_domain(d)
    with pytest.raises(osexc.NotFoundException):
        conn.identity.get_domain(d.id)
    # The default domain is there and cannot go away.
    assert conn.identity.get_domain("default").name == "Default"


def test_project_hierarchy_and_tags(conn, http):
    top = conn.identity.create_project(name=unique("top"), tags=["a", "b"])
    assert top.parent_id == "default" and top.tags == ["a", "b"]
    child = conn.identity.create_project(name=unique("child"), parent_id=top.id)
    leaf = conn.identity.create_project(name=unique("leaf"), parent_id=child.id)
    assert child.parent_id == top.id and child.domain_id == "default"
    r = http.get(f"/v3/projects/{leaf.id}", params={"parents_as_list": ""})
    assert [p["project"]["id"] for p in r.json()["project"]["parents"]] == [child.id, top.id]
    r = http.get(f"/v3/projects/{top.id}", params={"subtree_as_list": ""})
    assert {p["project"]["id"] for p in r.json()["project"]["subtree"]} == {child.id, leaf.id}
    kids = [p.id for p in conn.identity.projects(parent_id=top.id)]
    assert kids == [child.id]
    # A parent with children cannot be deleted.
    assert_error(http.delete(f"/v3/projects/{top.id}"), 403)

    # Tags: add, check, list, filter, replace, delete.
    assert http.put(f"/v3/projects/{child.id}/tags/gold").status_code == 201
    assert http.get(f"/v3/projects/{child.id}/tags/gold").status_code == 204
    assert_error(http.get(f"/v3/projects/{child.id}/tags/silver"), 404)
    assert http.get(f"/v3/projects/{child.id}/tags").json() == {"tags": ["gold"]}
    ids = {p["id"] for p in http.get("/v3/projects", params={"tags": "a,b"}).json()["projects"]}
    assert ids == {top.id}
    ids = {p["id"] for p in http.get("/v3/projects",
                                     params={"tags-any": "gold,a"}).json()["projects"]}
    assert ids == {top.id, child.id}
    r = http.put(f"/v3/projects/{top.id}/tags", json={"tags": ["x", "y"]})
    assert r.json() == {"tags": ["x", "y"]}
    assert http.delete(f"/v3/projects/{top.id}/tags/x").status_code == 204
    assert http.delete(f"/v3/projects/{top.id}/tags").status_code == 204
    assert conn.identity.get_project(top.id).tags == []
    # openstacksdk's tag helpers.
    p = conn.identity.get_project(leaf.id)
    p.add_tag(conn.identity, "blue")
    assert p.check_tag(conn.identity, "blue")

    # Delete bottom-up.
    for p in (leaf, child, top):
        conn.identity.delete_project(p)
    assert conn.identity.find_project(top.name) is None


def test_project_enable_disable(cloud, conn, http):
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"],
                          scope={"project": {"id": creds["project_id"]}})
    conn.identity.update_project(creds["project_id"], is_enabled=False)
    assert conn.identity.get_project(creds["project_id"]).is_enabled is False
    # Its tokens are revoked and no new ones are issued.
    assert_error(http.get("/v3/auth/projects", token=token), 401)
    r = http.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": creds["username"], "domain": {"id": "default"},
            "password": creds["password"]}}},
        "scope": {"project": {"id": creds["project_id"]}}}})
    assert_error(r, 401)
    conn.identity.update_project(creds["project_id"], is_enabled=True)
    http.issue(creds["username"], creds["password"],
               scope={"project": {"id": creds["project_id"]}})


def test_users(conn, http):
    user = conn.identity.create_user(name=unique("u"), password="pw", email="u@example.org",
                                     description="d")
    assert user.email == "u@example.org" and user.is_enabled is True
    raw = http.get(f"/v3/users/{user.id}").json()["user"]
    assert "password" not in raw and "password_hash" not in raw
    assert raw["password_expires_at"] is None and raw["email"] == "u@example.org"
    assert raw["links"]["self"].endswith(f"/v3/users/{user.id}")
    user = conn.identity.update_user(user, description="new", is_enabled=False)
    assert user.description == "new" and user.is_enabled is False
    assert [u.id for u in conn.identity.users(is_enabled=False)] == [user.id]
    http.issue(user.name, "pw", expect=401)
    conn.identity.update_user(user, is_enabled=True, password="pw2")
    http.issue(user.name, "pw2")
    conn.identity.delete_user(user)
    assert conn.identity.find_user(user.name) is None


def test_extras_kept_and_returned(http, conn):
    r = http.post("/v3/users", json={"user": {"name": unique("x"), "email": "a@b.c",
                                              "nickname": {"first": "Al"}, "tally": 3}})
    assert r.status_code == 201
    user = r.json()["user"]
    assert user["email"] == "a@b.c" and user["nickname"] == {"first": "Al"}
    assert user["tally"] == 3
    again = http.get(f"/v3/users/{user['id']}").json()["user"]
    assert again["nickname"] == {"first": "Al"} and again["tally"] == 3
    r = http.patch(f"/v3/users/{user['id']}", json={"user": {"tally": 4, "team": "red"}})
    assert r.json()["user"]["tally"] == 4 and r.json()["user"]["team"] == "red"
    assert r.json()["user"]["email"] == "a@b.c"
    r = http.post("/v3/projects", json={"project": {"name": unique("p"), "cost_center": 42}})
    project = r.json()["project"]
    assert project["cost_center"] == 42
    assert conn.identity.get_project(project["id"]).to_dict().get("cost_center", 42) == 42
    assert http.get(f"/v3/projects/{project['id']}").json()["project"]["cost_center"] == 42


def test_filters(http, conn):
    tag = unique("flt")
    names = [f"{tag}-alpha", f"{tag}-beta", f"{tag}-Gamma"]
    for n in names:
        conn.identity.create_user(name=n)
    conn.identity.update_user(conn.identity.find_user(names[1]), is_enabled=False)

    def users(**params):
        return sorted(u["name"] for u in http.get("/v3/users", params=params).json()["users"])

    assert users(name=names[0]) == [names[0]]
    assert users(name__contains=tag) == sorted(names)
    assert users(name__contains="gamma") == []
    assert users(name__icontains="gamma") == [names[2]]
    assert users(name__startswith=f"{tag}-a") == [names[0]]
    assert users(name__endswith="beta") == [names[1]]
    assert [u for u in users(enabled="false") if u.startswith(tag)] == [names[1]]
    assert names[1] not in users(enabled="true")
    assert [u.name for u in conn.identity.users(name=names[2])] == [names[2]]
    projects = http.get("/v3/projects", params={"name": "admin"}).json()["projects"]
    assert [p["name"] for p in projects] == ["admin"]
    assert [d["name"] for d in http.get("/v3/domains", params={"name": "Default"}
                                        ).json()["domains"]] == ["Default"]


def test_groups_and_membership(cloud, conn, http):
    creds = cloud.make_user()
    group = conn.identity.create_group(name=unique("g"), description="ops")
    assert group.domain_id == "default"
    conn.identity.add_user_to_group(creds["user_id"], group)
    assert conn.identity.check_user_in_group(creds["user_id"], group)
    assert [u.id for u in conn.identity.group_users(group)] == [creds["user_id"]]
    assert [g.id for g in conn.identity.user_groups(creds["user_id"])] == [group.id]

    # A role granted to the group reaches the user (and their tokens).
    project = conn.identity.create_project(name=unique("gp"))
    member = conn.identity.find_role("member")
    conn.identity.assign_project_role_to_group(project, group, member)
    token, body = http.issue(creds["username"], creds["password"],
                             scope={"project": {"id": project.id}})
    assert {r["name"] for r in body["token"]["roles"]} == {"member", "reader"}
    rows = http.get("/v3/role_assignments", params={"effective": "", "user.id": creds["user_id"],
                                                    "scope.project.id": project.id}
                    ).json()["role_assignments"]
    assert {r["role"]["id"] for r in rows} >= {member.id}
    assert all(r["links"].get("membership", "").endswith(
        f"/groups/{group.id}/users/{creds['user_id']}") for r in rows)

    # Leaving the group takes the role away, tokens included.
    conn.identity.remove_user_from_group(creds["user_id"], group)
    assert not conn.identity.check_user_in_group(creds["user_id"], group)
    assert_error(http.get("/v3/auth/projects", token=token), 401)
    conn.identity.update_group(group, description="changed")
    assert conn.identity.get_group(group.id).description == "changed"
    conn.identity.delete_group(group)
    assert conn.identity.find_group(group.name) is None


def test_roles_and_implied_roles(cloud, conn, http):
    creds = cloud.make_user(role="reader")
    boss = conn.identity.create_role(name=unique("boss"))
    worker = conn.identity.create_role(name=unique("worker"))
    r = http.put(f"/v3/roles/{boss.id}/implies/{worker.id}")
    assert r.status_code == 201
    inference = r.json()["role_inference"]
    assert inference["prior_role"]["id"] == boss.id and inference["implies"]["id"] == worker.id
    assert http.head(f"/v3/roles/{boss.id}/implies/{worker.id}").status_code == 204
    r = http.get(f"/v3/roles/{boss.id}/implies")
    assert [x["id"] for x in r.json()["role_inference"]["implies"]] == [worker.id]
    rules = http.get("/v3/role_inferences").json()["role_inferences"]
    assert any(x["prior_role"]["id"] == boss.id for x in rules)
    # A loop is refused.
    assert_error(http.put(f"/v3/roles/{worker.id}/implies/{boss.id}"), 403)

    conn.identity.assign_project_role_to_user(creds["project_id"], creds["user_id"], boss)
    _, body = http.issue(creds["username"], creds["password"],
                         scope={"project": {"id": creds["project_id"]}})
    assert {r["name"] for r in body["token"]["roles"]} == {"reader", boss.name, worker.name}
    direct = http.get("/v3/role_assignments", params={"user.id": creds["user_id"]}
                      ).json()["role_assignments"]
    assert {r["role"]["id"] for r in direct} == {boss.id,
                                                 conn.identity.find_role("reader").id}
    eff = http.get("/v3/role_assignments", params={"user.id": creds["user_id"], "effective": ""}
                   ).json()["role_assignments"]
    implied = [r for r in eff if r["role"]["id"] == worker.id]
    assert implied and implied[0]["links"]["prior_role"].endswith(f"/roles/{boss.id}")

    assert http.delete(f"/v3/roles/{boss.id}/implies/{worker.id}").status_code == 204
    assert_error(http.get(f"/v3/roles/{boss.id}/implies/{worker.id}"), 404)
    new_name = unique("chief")
    assert conn.identity.update_role(boss, name=new_name).name == new_name
    assert conn.identity.get_role(boss.id).name == new_name
    conn.identity.delete_role(boss)
    _, body = http.issue(creds["username"], creds["password"],
                         scope={"project": {"id": creds["project_id"]}})
    assert {r["name"] for r in body["token"]["roles"]} == {"reader"}

    # Domain-specific roles.
    d = conn.identity.create_domain(name=unique("d"))
    dr = conn.identity.create_role(name="local", domain_id=d.id)
    assert dr.domain_id == d.id
    assert [r["id"] for r in http.get("/v3/roles", params={"domain_id": d.id}).json()["roles"]
            ] == [dr.id]
    assert dr.id not in [r.id for r in conn.identity.roles()]


def test_inherited_grants(conn, http, cloud):
    creds = cloud.make_user()
    top = conn.identity.create_project(name=unique("it"))
    sub = conn.identity.create_project(name=unique("is"), parent_id=top.id)
    member = conn.identity.find_role("member")
    r = http.put(f"/v3/OS-INHERIT/projects/{top.id}/users/{creds['user_id']}/roles/"
                 f"{member.id}/inherited_to_projects")
    assert r.status_code == 204
    _, body = http.issue(creds["username"], creds["password"], scope={"project": {"id": sub.id}})
    assert "member" in {r["name"] for r in body["token"]["roles"]}
    http.issue(creds["username"], creds["password"], scope={"project": {"id": top.id}},
               expect=401)


def test_regions_services_endpoints(conn, http):
    region = conn.identity.create_region(id=unique("Region"), description="r")
    child = conn.identity.create_region(id=unique("Sub"), parent_region_id=region.id)
    assert child.parent_region_id == region.id
    assert conn.identity.get_region(region.id).description == "r"
    conn.identity.update_region(region, description="r2")
    assert conn.identity.get_region(region.id).description == "r2"
    # A parent cannot be deleted while a child exists.
    assert_error(http.delete(f"/v3/regions/{region.id}"), 403)

    svc = conn.identity.create_service(name="thing", type="thing-type", description="t")
    assert svc.is_enabled is True
    ep = conn.identity.create_endpoint(service_id=svc.id, interface="public",
                                       url="http://thing.example/v1/$(project_id)s",
                                       region_id=region.id)
    raw = http.get(f"/v3/endpoints/{ep.id}").json()["endpoint"]
    assert raw["region"] == region.id and raw["region_id"] == region.id
    assert [e.id for e in conn.identity.endpoints(service_id=svc.id)] == [ep.id]
    assert [e.id for e in conn.identity.endpoints(interface="public", region_id=region.id)
            ] == [ep.id]
    # The catalog of a project-scoped token substitutes the project id.
    token, body = http.issue("admin", http.cloud.admin_password,
                             scope={"project": {"name": "admin", "domain": {"id": "default"}}})
    entry = next(s for s in body["token"]["catalog"] if s["type"] == "thing-type")
    pid = body["token"]["project"]["id"]
    assert entry["endpoints"][0]["url"] == f"http://thing.example/v1/{pid}"
    # Disabled endpoints leave the catalog.
    conn.identity.update_endpoint(ep, is_enabled=False)
    catalog = http.get("/v3/auth/catalog").json()["catalog"]
    assert next(s for s in catalog if s["type"] == "thing-type")["endpoints"] == []
    conn.identity.update_service(svc, description="t2")
    assert conn.identity.get_service(svc.id).description == "t2"
    assert [s.id for s in conn.identity.services(type="thing-type")] == [svc.id]
    conn.identity.delete_endpoint(ep)
    conn.identity.delete_service(svc)
    conn.identity.delete_region(child)
    conn.identity.delete_region(region)
    with pytest.raises(osexc.NotFoundException):
        conn.identity.get_region(region.id)


def test_credentials(cloud, conn, http):
    creds = cloud.make_user()
    blob = json.dumps({"access": "a", "secret": "s"})
    c = conn.identity.create_credential(user_id=creds["user_id"], type="ec2", blob=blob,
                                        project_id=creds["project_id"])
    assert c.blob == blob and c.type == "ec2"
    assert conn.identity.get_credential(c.id).user_id == creds["user_id"]
    conn.identity.update_credential(c, blob="{}")
    assert conn.identity.get_credential(c.id).blob == "{}"
    # The owner sees their own credentials; another member sees none of them.
    token, _ = http.issue(creds["username"], creds["password"])
    mine = Http(cloud, token)
    assert [x["id"] for x in mine.get("/v3/credentials").json()["credentials"]] == [c.id]
    other = cloud.make_user()
    ot, _ = http.issue(other["username"], other["password"])
    theirs = Http(cloud, ot)
    assert theirs.get("/v3/credentials").json()["credentials"] == []
    assert_error(theirs.get(f"/v3/credentials/{c.id}"), 403)
    assert [x.id for x in conn.identity.credentials(type="ec2")] == [c.id]
    conn.identity.delete_credential(c)
    assert conn.identity.find_credential(c.id) is None
    mine.close()
    theirs.close()


def test_role_assignments_names_and_filters(cloud, conn, http):
    creds = cloud.make_user()
    rows = http.get("/v3/role_assignments", params={"include_names": "",
                                                    "user.id": creds["user_id"]}
                    ).json()["role_assignments"]
    assert rows == [{
        "role": {"id": conn.identity.find_role("member").id, "name": "member"},
        "user": {"id": creds["user_id"], "name": creds["username"],
                 "domain": {"id": "default", "name": "Default"}},
        "scope": {"project": {"id": creds["project_id"], "name": creds["project_name"],
                              "domain": {"id": "default", "name": "Default"}}},
        "links": {"assignment": f"{cloud.auth_url}/v3/projects/{creds['project_id']}/users/"
                                f"{creds['user_id']}/roles/"
                                f"{conn.identity.find_role('member').id}"}}]
    by_project = http.get("/v3/role_assignments", params={"scope.project.id": creds["project_id"]}
                          ).json()["role_assignments"]
    assert len(by_project) == 1
    system = http.get("/v3/role_assignments", params={"scope.system": "all"}
                      ).json()["role_assignments"]
    assert [r["scope"] for r in system] == [{"system": {"all": True}}]
    # sdk view
    found = list(conn.identity.role_assignments(user_id=creds["user_id"]))
    assert len(found) == 1


def test_ec2_credentials(cloud, http):
    creds = cloud.make_user()
    made = cloud.cli("ec2", "credentials", "create", "--user", creds["username"],
                     "--project", creds["project_name"])
    assert made["project_id"] == creds["project_id"] and made["user_id"] == creds["user_id"]
    assert len(made["access"]) == 32 and len(made["secret"]) == 32
    rows = cloud.cli("ec2", "credentials", "list", "--user", creds["username"])
    assert [r["Access"] for r in rows] == [made["access"]]
    r = http.get(f"/v3/users/{creds['user_id']}/credentials/OS-EC2/{made['access']}")
    assert r.json()["credential"]["secret"] == made["secret"]
    # It is also a credential of type ec2.
    listed = http.get("/v3/credentials", params={"type": "ec2"}).json()["credentials"]
    assert [c["user_id"] for c in listed] == [creds["user_id"]]
    # Others cannot read it; a project without a role is refused.
    other = cloud.make_user()
    token, _ = http.issue(other["username"], other["password"])
    assert_error(http.get(f"/v3/users/{creds['user_id']}/credentials/OS-EC2", token=token), 403)
    assert_error(http.post(f"/v3/users/{creds['user_id']}/credentials/OS-EC2",
                           json={"tenant_id": other["project_id"]}), 403)
    proc = cloud.cli("ec2", "credentials", "delete", "--user", creds["username"],
                     made["access"], parse=False)
    assert proc.returncode == 0, proc.stderr
    assert_error(http.get(f"/v3/users/{creds['user_id']}/credentials/OS-EC2/{made['access']}"),
                 404)


def test_application_credential_access_rules(cloud, http):
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"],
                          scope={"project": {"id": creds["project_id"]}})
    me = Http(cloud, token)
    rule = {"service": "compute", "path": "/v2.1/servers", "method": "GET"}
    r = me.post(f"/v3/users/{creds['user_id']}/application_credentials", json={
        "application_credential": {"name": "ro", "access_rules": [rule]}})
    assert r.status_code == 201, r.text
    made = r.json()["application_credential"]["access_rules"]
    assert [{k: v for k, v in x.items() if k != "id"} for x in made] == [rule]
    rule_id = made[0]["id"]
    rules = me.get(f"/v3/users/{creds['user_id']}/access_rules").json()["access_rules"]
    assert [x["id"] for x in rules] == [rule_id]
    assert me.get(f"/v3/users/{creds['user_id']}/access_rules/{rule_id}"
                  ).json()["access_rule"]["path"] == "/v2.1/servers"
    # A second credential reuses the rule by id.
    r = me.post(f"/v3/users/{creds['user_id']}/application_credentials", json={
        "application_credential": {"name": "ro2", "access_rules": [{"id": rule_id}]}})
    assert r.json()["application_credential"]["access_rules"][0]["id"] == rule_id
    assert_error(me.delete(f"/v3/users/{creds['user_id']}/access_rules/{rule_id}"), 403)
    assert_error(me.post(f"/v3/users/{creds['user_id']}/application_credentials", json={
        "application_credential": {"name": "bad", "access_rules": [{"method": "FETCH"}]}}), 400)
    assert_error(me.get(f"/v3/users/{creds['user_id']}/access_rules/nope"), 404)
    rows = cloud.cli("access", "rule", "list", username=creds["username"],
                     password=creds["password"], project_name=creds["project_name"])
    assert [x["ID"] for x in rows] == [rule_id]
    me.close()


def test_list_limit_truncates(pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                         "identity.list_limit": 2})
    http = Http(cloud)
    http.token = http.admin_token()
    for i in range(3):
        http.post("/v3/users", json={"user": {"name": f"many-{i}"}})
    body = http.get("/v3/users").json()
    assert len(body["users"]) == 2 and body["truncated"] is True
    body = http.get("/v3/users", params={"name": "many-1"}).json()
    assert [u["name"] for u in body["users"]] == ["many-1"] and "truncated" not in body
    http.close()
