"""Flavors, keypairs, metadata, tags, multi-create, limits, usage, services (openstacksdk)."""

from __future__ import annotations

import openstack.exceptions as osexc
import pytest


def test_server_metadata_tags_and_multi_create(compute_env):
    env = compute_env()
    conn = env.conn
    server = env.boot(name="tagged", tags=["a", "b"], metadata={"k": "v"})
    assert sorted(conn.compute.get_server(server).tags) == ["a", "b"]
    conn.compute.set_server_metadata(server, extra="1")
    assert conn.compute.get_server_metadata(server).metadata == {"k": "v", "extra": "1"}
    conn.compute.delete_server_metadata(server, ["k"])
    assert conn.compute.get_server_metadata(server).metadata == {"extra": "1"}
    conn.compute.add_tag_to_server(server, "c") if hasattr(conn.compute, "add_tag_to_server") \
        else server.add_tag(conn.compute, "c")
    assert "c" in conn.compute.get_server(server).tags
    assert [s.id for s in conn.compute.servers(tags="c")] == [server.id]
    conn.compute.update_server(server, name="renamed", description="d")
    assert conn.compute.get_server(server).name == "renamed"

    many = conn.compute.post("/servers", json={"server": {
        "name": "many", "imageRef": env.image.id, "flavorRef": "1",
        "networks": [{"uuid": env.network.id}], "min_count": 3, "max_count": 3}},
        microversion="2.37").json()
    assert "server" in many
    names = sorted(s.name for s in conn.compute.servers(name="^many"))
    assert names == ["many-1", "many-2", "many-3"]
    page = list(conn.compute.servers(limit=2, paginated=False))
    assert len(page) == 2


def test_flavors_keypairs_and_access(compute_env):
    env = compute_env()
    conn = env.conn
    flavors = {f.name for f in conn.compute.flavors()}
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= flavors
    private = conn.compute.create_flavor(name="private", ram=128, vcpus=1, disk=1,
                                         is_public=False)
    conn.compute.create_flavor_extra_specs(private, {"hw:cpu_policy": "shared"})
    assert conn.compute.fetch_flavor_extra_specs(private).extra_specs == {
        "hw:cpu_policy": "shared"}
    with pytest.raises(osexc.ConflictException):
        conn.compute.create_flavor(name="private", ram=128, vcpus=1, disk=1)
    tenant = env.cloud.make_user()
    tconn = env.cloud.connect(username=tenant["username"], password=tenant["password"],
                              project_name=tenant["project_name"])
    assert "private" not in {f.name for f in tconn.compute.flavors()}
    with pytest.raises(osexc.BadRequestException):
        env.boot(conn=tconn, flavor_id=private.id, wait=False)
    conn.compute.flavor_add_tenant_access(private, tenant["project_id"])
    assert "private" in {f.name for f in tconn.compute.flavors()}
    server = env.boot(conn=tconn, flavor_id=private.id, name="allowed")
    assert server.status == "ACTIVE"

    generated = conn.compute.create_keypair(name="gen")
    assert generated.private_key.startswith("-----BEGIN")
    assert len(generated.fingerprint.split(":")) == 16
    assert {k.name for k in conn.compute.keypairs()} == {"gen"}
    with pytest.raises(osexc.ConflictException):
        conn.compute.create_keypair(name="gen")
    conn.compute.delete_keypair("gen")
    assert list(conn.compute.keypairs()) == []


def test_limits_usage_services_and_zones(compute_env):
    env = compute_env(**{"fake.hosts": 2})
    conn = env.conn
    env.boot(name="counted")
    limits = conn.compute.get_limits().absolute
    assert limits.instances_used == 1 and limits.instances == 10
    assert conn.compute.get_quota_set(conn.current_project_id, usage=True).usage[
        "instances"] == 1
    services = list(conn.compute.services())
    fake1 = next(s for s in services if s.host == "fake-1")
    conn.compute.disable_service(fake1, fake1.host, fake1.binary, "maintenance")
    for _ in range(3):
        assert env.boot(name="not-on-1").compute_host == "fake-2"
    conn.compute.enable_service(fake1, fake1.host, fake1.binary)
    fake2 = next(s for s in services if s.host == "fake-2")
    conn.compute.update_service_forced_down(fake2, fake2.host, fake2.binary, True)
    down = {s.host: s for s in conn.compute.services()}
    assert down["fake-2"].state == "down" and down["fake-2"].is_forced_down
    assert env.boot(name="not-on-2").compute_host == "fake-1"
    conn.compute.update_service_forced_down(fake2, fake2.host, fake2.binary, False)
    assert {s.host: s.state for s in conn.compute.services()}["fake-2"] == "up"
    zones = [z.name for z in conn.compute.availability_zones()]
    assert zones == ["nova"]
    usage = conn.compute.get("/os-simple-tenant-usage?detailed=1").json()["tenant_usages"]
    assert usage and usage[0]["server_usages"]
