"""trigger_crash_dump (2.17), the server password (os-server-password and the
metadata service's POST), quota classes (the default class gives projects their
defaults): openstacksdk, the openstack CLI and raw calls."""

from __future__ import annotations

import httpx
import openstack.exceptions as osexc
import pytest

from pocketstack.compute.metadata import sign
from tests.functional.compute.conftest import wait_for

SECRET = "extras-secret"


def test_trigger_crash_dump(compute_env):
    env = compute_env(**{"fake.hosts": 1})
    conn = env.conn
    server = env.boot(name="dumped")
    action = f"/servers/{server.id}/action"
    assert conn.compute.post(action, json={"trigger_crash_dump": None},
                             microversion="2.16").status_code == 404
    r = conn.compute.post(action, json={"trigger_crash_dump": {}}, microversion="2.17")
    assert r.status_code == 400
    conn.compute.trigger_server_crash_dump(server)
    wait_for(lambda: "NMI received" in conn.compute.get_server_console_output(server)["output"],
             "the guest got the NMI")
    conn.compute.stop_server(server)
    env.wait_status(server, "SHUTOFF")
    with pytest.raises(osexc.ConflictException):
        conn.compute.trigger_server_crash_dump(server)


def test_server_password_from_the_guest(compute_env):
    env = compute_env(**{"fake.hosts": 1, "neutron.metadata_proxy_shared_secret": SECRET})
    conn, cloud = env.conn, env.cloud
    server = env.boot(name="passworded")
    url = cloud.url + "/metadata/openstack/latest/password"
    signed = {"X-Instance-ID": server.id, "X-Instance-ID-Signature": sign(SECRET, server.id)}
    assert conn.compute.get_server_password(server) == ""
    assert httpx.get(url, headers=signed).text == ""

    encrypted = "c2VjcmV0LWVuY3J5cHRlZC13aXRoLXRoZS1rZXk=" * 4
    assert httpx.post(url, headers=signed, content=encrypted).status_code == 200
    assert httpx.post(url, headers=signed, content="again").status_code == 409
    assert httpx.post(url, headers=signed, content="x" * 1021).status_code == 400
    assert httpx.get(url, headers=signed).text == encrypted
    assert conn.compute.get_server_password(server) == encrypted

    user = cloud.make_user()
    other = cloud.connect(username=user["username"], password=user["password"],
                          project_name=user["project_name"])
    with pytest.raises(osexc.NotFoundException):
        other.compute.get_server_password(server)
    with pytest.raises(osexc.NotFoundException):
        other.compute.clear_server_password(server)
    conn.compute.clear_server_password(server)
    assert conn.compute.get_server_password(server) == ""
    assert httpx.post(url, headers=signed, content="new").status_code == 200
    assert conn.compute.get_server_password(server) == "new"


def test_quota_classes_give_project_defaults(compute_env):
    env = compute_env(**{"fake.hosts": 1})
    conn, cloud = env.conn, env.cloud
    default = conn.compute.get_quota_class_set("default")
    assert default.instances == 10 and default.cores == 20
    raw = conn.compute.get("/os-quota-class-sets/default", microversion="2.1").json()
    assert raw["quota_class_set"]["id"] == "default"
    assert raw["quota_class_set"]["floating_ips"] == 10
    assert "server_groups" not in raw["quota_class_set"]
    latest = conn.compute.get("/os-quota-class-sets/default",
                              microversion="2.57").json()["quota_class_set"]
    assert "injected_files" not in latest and latest["server_group_members"] == 10

    r = conn.compute.put("/os-quota-class-sets/default", microversion="2.57",
                         json={"quota_class_set": {"injected_files": 3}})
    assert r.status_code == 400 and "injected_files" in r.text
    r = conn.compute.put("/os-quota-class-sets/default", microversion="2.57",
                         json={"quota_class_set": {"instances": -2}})
    assert r.status_code == 400
    cloud.cli("quota", "set", "--class", "--instances", "1", "--cores", "7", "default",
              parse=False)
    shown = conn.compute.get_quota_class_set("default")  # the CLI shows no classes
    assert shown.instances == 1 and shown.cores == 7

    # projects without their own quotas now get the class's limits
    user = cloud.make_user()
    other = cloud.connect(username=user["username"], password=user["password"],
                          project_name=user["project_name"])
    quota = conn.compute.get(f"/os-quota-sets/{user['project_id']}").json()["quota_set"]
    assert quota["instances"] == 1 and quota["cores"] == 7
    defaults = conn.compute.get(f"/os-quota-sets/{user['project_id']}/defaults").json()
    assert defaults["quota_set"]["instances"] == 1
    env.boot(conn=other, name="first")
    with pytest.raises(osexc.ForbiddenException):
        env.boot(conn=other, name="second")
    # a project's own quota still wins over the class
    conn.compute.put(f"/os-quota-sets/{user['project_id']}",
                     json={"quota_set": {"instances": 2}})
    env.boot(conn=other, name="second")

    # quota classes are the admin's
    assert other.compute.get("/os-quota-class-sets/default").status_code == 403
    assert other.compute.put("/os-quota-class-sets/default", json={
        "quota_class_set": {"instances": 50}}).status_code == 403
    assert conn.compute.get_quota_class_set("default").instances == 1
