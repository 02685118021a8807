"""Policy: oslo.policy defaults in code, <state_path>/policy/identity.yaml overrides."""

from __future__ import annotations

import os

from .conftest import Http, assert_error


def _write(cloud, text: str) -> None:
    path = os.path.join(cloud.state_path, "policy")
    os.makedirs(path, exist_ok=True)
    tmp = os.path.join(path, "identity.yaml.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(path, "identity.yaml"))


def test_policy_file_changes_rules(cloud, http):
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"],
                          scope={"project": {"id": creds["project_id"]}})
    member = Http(cloud, token)
    assert_error(member.get("/v3/users"), 403)
    assert http.post("/v3/projects", json={"project": {"name": "before"}}).status_code == 201

    # Members may list users; nobody may create projects.
    _write(cloud, '"identity:list_users": "role:member"\n'
                  '"identity:create_project": "!"\n')
    r = member.get("/v3/users")
    assert r.status_code == 200 and creds["username"] in {u["name"] for u in r.json()["users"]}
    err = assert_error(http.post("/v3/projects", json={"project": {"name": "after"}}), 403)
    assert "identity:create_project" in err["message"]
    assert [p["name"] for p in http.get("/v3/projects", params={"name": "after"}
                                        ).json()["projects"]] == []
    # Rules the file does not name keep their defaults.
    assert_error(member.post("/v3/users", json={"user": {"name": "x"}}), 403)

    # Removing the override restores the defaults.
    _write(cloud, "{}\n")
    assert_error(member.get("/v3/users"), 403)
    assert http.post("/v3/projects", json={"project": {"name": "again"}}).status_code == 201
    member.close()


def test_policy_file_present_at_start(pocketstack_cloud_factory, tmp_path):
    state = tmp_path / "pre"
    (state / "policy").mkdir(parents=True)
    (state / "policy" / "identity.yaml").write_text('"identity:list_regions": "role:admin"\n')
    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                         "state_path": str(state)})
    http = Http(cloud)
    http.token = http.admin_token()
    creds = cloud.make_user()
    token, _ = http.issue(creds["username"], creds["password"])
    assert_error(http.get("/v3/regions", token=token), 403)
    assert http.get("/v3/regions").status_code == 200
    http.close()
