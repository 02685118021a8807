"""The commands issue 3 names, run with the real `openstack` CLI."""

from __future__ import annotations

from .conftest import unique


def test_readme_walkthrough(cloud):
    token = cloud.cli("token", "issue")
    assert token["id"] and token["project_id"] and token["user_id"]

    project = cloud.cli("project", "create", "demo", "--description", "Demo project")
    assert project["name"] == "demo" and project["domain_id"] == "default"
    assert project["enabled"] is True

    user = cloud.cli("user", "create", "--password", "secret", "--project", "demo", "alice")
    assert user["name"] == "alice" and user["domain_id"] == "default"
    assert "password" not in user

    proc = cloud.cli("role", "add", "--user", "alice", "--project", "demo", "member",
                     parse=False)
    assert proc.returncode == 0, proc.stderr

    rows = cloud.cli("role", "assignment", "list", "--names")
    assert {"Role": "member", "User": "alice@Default", "Group": "",
            "Project": "demo@Default", "Domain": "", "System": "",
            "Inherited": False} in rows
    assert any(r["Role"] == "admin" and r["User"] == "admin@Default" and r["System"] == "all"
               for r in rows)

    # Effective: implied roles (member -> reader) show up; groups expand to users.
    rows = cloud.cli("role", "assignment", "list", "--names", "--effective",
                     "--user", "alice", "--project", "demo")
    assert sorted(r["Role"] for r in rows) == ["member", "reader"]

    # alice logs in with her own password and sees her project.
    alice = cloud.cli("token", "issue", username="alice", password="secret",
                      project_name="demo")
    assert alice["project_id"] == project["id"] and alice["user_id"] == user["id"]
    mine = cloud.cli("project", "list", "--my-projects", username="alice",
                     password="secret", project_name="demo")
    assert [p["Name"] for p in mine] == ["demo"]

    catalog = cloud.cli("catalog", "list")
    identity = next(c for c in catalog if c["Type"] == "identity")
    assert identity["Name"] == "keystone"
    assert {e["interface"] for e in identity["Endpoints"]} == {"public", "internal", "admin"}
    assert all(e["url"] == cloud.auth_url for e in identity["Endpoints"])

    endpoints = cloud.cli("endpoint", "list")
    assert {(e["Service Type"], e["Interface"], e["Region"], e["URL"]) for e in endpoints} == {
        ("identity", i, "RegionOne", cloud.auth_url) for i in ("public", "internal", "admin")}


def test_user_changes_own_password(cloud):
    creds = cloud.make_user()
    name, old = creds["username"], creds["password"]
    proc = cloud.cli("user", "password", "set", "--original-password", old,
                     "--password", "brand-new-pass", parse=False, username=name,
                     password=old, project_name=creds["project_name"])
    assert proc.returncode == 0, proc.stderr
    # The old password no longer works, the new one does.
    bad = cloud.cli("token", "issue", username=name, password=old,
                    project_name=creds["project_name"], check=False)
    assert bad.returncode != 0
    assert "401" in bad.stderr or "authentication" in bad.stderr.lower()
    good = cloud.cli("token", "issue", username=name, password="brand-new-pass",
                     project_name=creds["project_name"])
    assert good["user_id"] == creds["user_id"]


def test_cli_groups_domains_and_disable(cloud):
    domain = cloud.cli("domain", "create", unique("dom"))
    group = cloud.cli("group", "create", "--domain", domain["id"], "ops")
    user = cloud.cli("user", "create", "--domain", domain["id"], "--password", "pw1", "bob")
    proc = cloud.cli("group", "add", "user", "--group-domain", domain["id"],
                     "--user-domain", domain["id"], "ops", "bob", parse=False)
    assert proc.returncode == 0, proc.stderr
    members = cloud.cli("user", "list", "--group", group["id"])
    assert [m["ID"] for m in members] == [user["id"]]
    proc = cloud.cli("user", "set", "--disable", user["id"], parse=False)
    assert proc.returncode == 0, proc.stderr
    shown = cloud.cli("user", "show", user["id"])
    assert shown["enabled"] is False
