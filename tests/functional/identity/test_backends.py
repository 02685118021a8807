"""The kvs, pam and templated drivers."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import missing

from . import test_bad_input, test_resources, test_revocation, test_tokens
from .conftest import Http, assert_error

KVS = {"identity.driver": "kvs", "resource.driver": "kvs", "assignment.driver": "kvs"}

REPRESENTATIVE = [
    test_tokens.test_project_scoped_token_shape,
    test_tokens.test_unscoped_domain_and_system_tokens,
    test_tokens.test_validate_check_and_revoke,
    test_tokens.test_rescope,
    test_tokens.test_auth_projects_domains_catalog,
    test_tokens.test_application_credentials,
    test_resources.test_domains,
    test_resources.test_project_hierarchy_and_tags,
    test_resources.test_users,
    test_resources.test_extras_kept_and_returned,
    test_resources.test_filters,
    test_resources.test_groups_and_membership,
    test_resources.test_roles_and_implied_roles,
    test_resources.test_inherited_grants,
    test_resources.test_credentials,
    test_resources.test_role_assignments_names_and_filters,
    test_bad_input.test_duplicates_conflict,
    test_bad_input.test_unknown_ids,
    test_bad_input.test_domain_admin_stays_in_its_domain,
    test_revocation.test_password_changed_by_user,
    test_revocation.test_role_removed,
    test_revocation.test_user_disabled,
]


@pytest.mark.parametrize("case", REPRESENTATIVE, ids=lambda f: f.__name__)
def test_on_kvs(case, pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(enabled_services=["identity"], **KVS)
    http = Http(cloud)
    http.token = http.admin_token()
    available = {"cloud": cloud, "http": http, "conn": None}
    kwargs = {}
    for name in inspect.signature(case).parameters:
        if name == "conn":
            available["conn"] = available["conn"] or cloud.connect()
        kwargs[name] = available[name]
    case(**kwargs)
    http.close()
    # Users, projects and assignments lived in memory: the SQL tables stayed empty.
    engine = sa.create_engine(f"sqlite:///{cloud.state_path}/identity.sqlite")
    with engine.connect() as c:
        for table in ("identity_user", "identity_project", "identity_assignment",
                      "identity_domain", "identity_role"):
            assert c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
    engine.dispose()


def test_kvs_cli(pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(enabled_services=["identity"], **KVS)
    cloud.cli("project", "create", "demo")
    cloud.cli("user", "create", "--password", "secret", "alice")
    cloud.cli("role", "add", "--user", "alice", "--project", "demo", "member", parse=False)
    rows = cloud.cli("role", "assignment", "list", "--names", "--user", "alice")
    assert [(r["Role"], r["Project"]) for r in rows] == [("member", "demo@Default")]


# -- PAM -----------------------------------------------------------------------


@pytest.fixture
def system_user():
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("chpasswd"):
        missing("root with useradd/chpasswd (PAM test)")
    try:
        import pam  # noqa: F401
    except ImportError:
        missing("python-pam")
    created = []

    def make(password: str) -> str:
        name = f"pst{uuid.uuid4().hex[:8]}"
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
        created.append(name)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        return name

    yield make
    for name in created:
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def _pam_issue(http, name, password, scope=None):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": password}}}}}
    if scope:
        body["auth"]["scope"] = scope
    return http.client.post("/v3/auth/tokens", json=body)


def test_pam(system_user, pocketstack_cloud_factory):
    alice = system_user("Alice-pw-1")
    boss = system_user("Boss-pw-1")
    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                         "identity.driver": "pam", "pam.service": "login",
                                         "pam.admin_user": boss})
    http = Http(cloud)
    # The system account logs in; its tenant (a project named as the user) appears.
    r = _pam_issue(http, alice, "Alice-pw-1")
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["user"] == {"id": alice, "name": alice,
                             "domain": {"id": "default", "name": "Default"},
                             "password_expires_at": None}
    assert token["project"]["name"] == alice and token["project"]["id"] == alice
    assert {x["name"] for x in token["roles"]} == {"member", "reader"}
    assert_error(_pam_issue(http, alice, "wrong"), 401)
    assert_error(_pam_issue(http, "no-such-account", "x"), 401)
    # A member of its own tenant only: no admin APIs.
    member = Http(cloud, r.headers["X-Subject-Token"])
    assert member.get(f"/v3/users/{alice}").json()["user"]["name"] == alice
    assert_error(member.get("/v3/users"), 403)

    # The admin user (root by default, here [pam] admin_user) has the admin role.
    r = _pam_issue(http, boss, "Boss-pw-1", scope={"project": {"name": boss,
                                                               "domain": {"id": "default"}}})
    assert r.status_code == 201, r.text
    assert "admin" in {x["name"] for x in r.json()["token"]["roles"]}
    admin = Http(cloud, r.headers["X-Subject-Token"])
    names = {u["name"] for u in admin.get("/v3/users").json()["users"]}
    assert {alice, boss, "root"} <= names
    assert "daemon" not in names
    # Users are read-only: they are the host's accounts.
    before = len(admin.get("/v3/users").json()["users"])
    assert_error(admin.post("/v3/users", json={"user": {"name": "new"}}), 501)
    assert_error(admin.delete(f"/v3/users/{alice}"), 501)
    assert len(admin.get("/v3/users").json()["users"]) == before
    # Projects and grants still work (they live in SQL).
    project = admin.post("/v3/projects", json={"project": {"name": "shared"}}).json()["project"]
    role = admin.get("/v3/roles", params={"name": "member"}).json()["roles"][0]
    assert admin.put(f"/v3/projects/{project['id']}/users/{alice}/roles/{role['id']}"
                     ).status_code == 204
    r = _pam_issue(http, alice, "Alice-pw-1", scope={"project": {"id": project["id"]}})
    assert r.status_code == 201

    # The PAM service is configurable: a service that denies everyone denies alice.
    with open("/etc/pam.d/pocketstack-deny-test", "w") as f:
        f.write("auth required pam_deny.so\naccount required pam_deny.so\n")
    try:
        deny = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                            "identity.driver": "pam",
                                            "pam.service": "pocketstack-deny-test"})
        assert_error(_pam_issue(Http(deny), alice, "Alice-pw-1"), 401)
    finally:
        os.remove("/etc/pam.d/pocketstack-deny-test")
    for h in (http, member, admin):
        h.close()


# -- templated catalog ---------------------------------------------------------

TEMPLATE = """\
# a Keystone-style catalog template
catalog.RegionOne.identity.publicURL = http://127.0.0.1:$(public_port)s/identity
catalog.RegionOne.identity.internalURL = http://127.0.0.1:$(public_port)s/identity
catalog.RegionOne.identity.adminURL = http://127.0.0.1:$(admin_port)s/identity
catalog.RegionOne.identity.name = Identity Service

catalog.RegionTwo.compute.publicURL = http://compute.example:8774/v2.1/$(tenant_id)s
catalog.RegionTwo.compute.name = nova
"""


def test_templated_catalog(tmp_path, pocketstack_cloud_factory):
    template = tmp_path / "catalog.templates"
    template.write_text(TEMPLATE)
    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                         "catalog.driver": "templated",
                                         "catalog.template_file": str(template)})
    port = cloud.url.rsplit(":", 1)[1]
    http = Http(cloud)
    token, body = http.issue("admin", cloud.admin_password,
                             scope={"project": {"name": "admin", "domain": {"id": "default"}}})
    http.token = token
    pid = body["token"]["project"]["id"]
    catalog = {s["type"]: s for s in body["token"]["catalog"]}
    assert set(catalog) == {"identity", "compute"}
    assert catalog["identity"]["name"] == "Identity Service"
    assert {(e["interface"], e["url"], e["region_id"]) for e in catalog["identity"]["endpoints"]
            } == {(i, f"http://127.0.0.1:{port}/identity", "RegionOne")
                  for i in ("public", "internal", "admin")}
    assert catalog["compute"]["endpoints"] == [{
        "id": catalog["compute"]["endpoints"][0]["id"], "interface": "public",
        "region": "RegionTwo", "region_id": "RegionTwo",
        "url": f"http://compute.example:8774/v2.1/{pid}"}]
    rows = cloud.cli("endpoint", "list")
    assert {(r["Service Name"], r["Region"]) for r in rows} == {
        ("Identity Service", "RegionOne"), ("nova", "RegionTwo")}
    assert {r["id"] for r in http.get("/v3/regions").json()["regions"]} == {"RegionOne",
                                                                            "RegionTwo"}
    # Read-only through the API; nothing is written.
    assert_error(http.post("/v3/services", json={"service": {"type": "x"}}), 501)
    assert_error(http.delete(f"/v3/services/{catalog['compute']['id']}"), 501)
    assert len(http.get("/v3/services").json()["services"]) == 2
    # The file is read again when it changes.
    template.write_text(TEMPLATE + "catalog.RegionOne.image.publicURL = http://img/\n")
    os.utime(template, ns=(1, 1))
    types = {s["type"] for s in http.get("/v3/auth/catalog").json()["catalog"]}
    assert types == {"identity", "compute", "image"}
    http.close()


def test_templated_default_template(pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                         "catalog.driver": "templated"})
    path = os.path.join(cloud.state_path, "default_catalog.templates")
    assert "catalog.$(region_name)s.identity.publicURL = $(public_url)s/identity" in open(
        path).read()
    rows = cloud.cli("catalog", "list")
    assert [(r["Type"], sorted(e["interface"] for e in r["Endpoints"])) for r in rows] == [
        ("identity", ["admin", "internal", "public"])]
    assert all(e["url"] == cloud.auth_url for e in rows[0]["Endpoints"])
