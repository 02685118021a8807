"""Servers through openstacksdk: the boot path, actions, state machine, bad input."""

from __future__ import annotations

import base64

import httpx
import openstack.exceptions as osexc
import pytest

from tests.functional.compute.conftest import wait_for


def test_boot_actions_and_delete_free_everything(compute_env):
    env = compute_env()
    conn = env.conn
    server = env.boot(name="vm1", metadata={"role": "web"})
    assert server.status == "ACTIVE"
    assert server.power_state == 1
    assert server.compute_host in ("fake-1", "fake-2")
    addrs = server.addresses["private"]
    assert addrs[0]["addr"].startswith("10.0.0.")
    port = next(conn.network.ports(device_id=server.id))
    assert port.binding_host_id == server.compute_host

    conn.compute.stop_server(server)
    assert env.wait_status(server, "SHUTOFF").power_state == 4
    # an invalid transition is a 409 and changes nothing
    with pytest.raises(osexc.ConflictException):
        conn.compute.stop_server(server)
    conn.compute.start_server(server)
    env.wait_status(server, "ACTIVE")
    conn.compute.pause_server(server)
    env.wait_status(server, "PAUSED")
    conn.compute.unpause_server(server)
    env.wait_status(server, "ACTIVE")
    conn.compute.suspend_server(server)
    env.wait_status(server, "SUSPENDED")
    conn.compute.resume_server(server)
    env.wait_status(server, "ACTIVE")
    conn.compute.reboot_server(server, "SOFT")
    env.wait_status(server, "ACTIVE")
    conn.compute.lock_server(server)
    assert conn.compute.get_server(server).is_locked
    conn.compute.unlock_server(server)
    out = conn.compute.get_server_console_output(server)["output"]
    assert "booted" in out
    actions = [a.action for a in conn.compute.server_actions(server)]
    assert actions[-1] == "create" and "stop" in actions

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.02, wait=60)
    assert list(conn.network.ports(device_id=server.id)) == []
    hyps = {h.name: h for h in conn.compute.hypervisors(details=True)}
    assert set(hyps) == {"fake-1", "fake-2"}


def test_resize_confirm_revert_and_snapshot(compute_env):
    env = compute_env()
    conn = env.conn
    server = env.boot(name="rs")
    conn.compute.resize_server(server, "2")
    server = env.wait_status(server, "VERIFY_RESIZE")
    assert server.flavor.original_name == "m1.small"
    conn.compute.revert_server_resize(server)
    server = env.wait_status(server, "ACTIVE")
    assert conn.compute.get_server(server).flavor.original_name == "m1.tiny"
    conn.compute.resize_server(server, "2")
    env.wait_status(server, "VERIFY_RESIZE")
    conn.compute.confirm_server_resize(server)
    server = env.wait_status(server, "ACTIVE")
    assert server.flavor.original_name == "m1.small"
    image = conn.compute.create_server_image(server, "snap", wait=True, timeout=60)
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.instance_uuid == server.id
    wait_for(lambda: conn.compute.get_server(server).task_state is None, "snapshot done")


def test_no_valid_host_goes_to_error_with_fault(compute_env):
    env = compute_env(**{"fake.memory_mb": 1024})
    conn = env.conn
    big = conn.compute.create_flavor(name="huge", ram=20000, vcpus=1, disk=1)
    server = env.boot(name="big", flavor_id=big.id, wait=False)
    server = env.wait_status(server, "ERROR")
    assert "No valid host" in server.fault["message"]
    assert server.fault["code"] == 500
    # the failed server holds no port and no capacity; delete ends
    assert list(conn.network.ports(device_id=server.id)) == []
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.02, wait=60)


def test_spawn_failure_frees_the_claim_and_ports(compute_env):
    env = compute_env(**{"fake.hosts": 1, "fake.fail_hosts": ["fake-1"]})
    conn = env.conn
    server = env.boot(name="doomed", wait=False)
    server = env.wait_status(server, "ERROR")
    assert "Simulated failure" in server.fault["message"]
    assert list(conn.network.ports(device_id=server.id)) == []
    hyp = next(conn.compute.hypervisors(details=True))
    raw = conn.compute.get(f"/os-hypervisors/{hyp.id}",
                           microversion="2.87").json()["hypervisor"]
    assert raw["memory_mb_used"] == 0 and raw["running_vms"] == 0


def test_bad_input_is_4xx_and_creates_nothing(compute_env):
    env = compute_env()
    conn = env.conn
    before_ports = len(list(conn.network.ports()))

    def assert_rejected(exc_type, **kw):
        with pytest.raises(exc_type):
            env.boot(wait=False, **kw)

    assert_rejected(osexc.BadRequestException, flavor_id="nope")
    assert_rejected(osexc.BadRequestException, image_id="00000000-0000-0000-0000-000000000000")
    assert_rejected(osexc.BadRequestException,
                    networks=[{"uuid": "00000000-0000-0000-0000-000000000000"}])
    queued = conn.image.create_image(name="queued", disk_format="raw",
                                     container_format="bare")
    assert_rejected(osexc.BadRequestException, image_id=queued.id)
    assert_rejected(osexc.BadRequestException,
                    user_data=base64.b64encode(b"x" * 70000).decode())
    assert_rejected(osexc.BadRequestException, block_device_mapping=[
        {"source_type": "volume", "destination_type": "volume", "boot_index": 0}])
    assert_rejected(osexc.BadRequestException, block_device_mapping=[
        {"source_type": "image", "uuid": env.image.id, "boot_index": 3}])
    assert_rejected(osexc.BadRequestException, key_name="missing-key")
    assert list(conn.compute.servers()) == []
    assert len(list(conn.network.ports())) == before_ports

    # quota: 403 with the quota message, nothing created
    tenant = env.cloud.make_user()
    tconn = env.cloud.connect(username=tenant["username"], password=tenant["password"],
                              project_name=tenant["project_name"])
    conn.compute.update_quota_set(tenant["project_id"], instances=1)
    env.boot(conn=tconn, name="one")
    with pytest.raises(osexc.ForbiddenException) as err:
        env.boot(conn=tconn, name="two", wait=False)
    assert "Quota exceeded for instances" in str(err.value)
    assert len(list(tconn.compute.servers())) == 1


def test_tenants_are_isolated_and_admin_calls_are_403(compute_env):
    env = compute_env()
    admin_server = env.boot(name="admins")
    tenant = env.cloud.make_user()
    tconn = env.cloud.connect(username=tenant["username"], password=tenant["password"],
                              project_name=tenant["project_name"])
    with pytest.raises(osexc.NotFoundException):
        tconn.compute.get_server(admin_server.id)
    with pytest.raises(osexc.NotFoundException):
        tconn.compute.delete_server(admin_server.id, ignore_missing=False)
    assert list(tconn.compute.servers()) == []
    with pytest.raises(osexc.ForbiddenException):
        tconn.compute.create_aggregate(name="agg")
    mine = env.boot(conn=tconn, name="mine")
    with pytest.raises(osexc.ForbiddenException):
        tconn.compute.live_migrate_server(mine, host=None, block_migration="auto")
    assert "OS-EXT-SRV-ATTR:host" not in tconn.compute.get(
        f"/servers/{mine.id}").json()["server"]


def test_live_migrate_and_server_group_anti_affinity(compute_env):
    env = compute_env(**{"fake.hosts": 2})
    conn = env.conn
    group = conn.compute.create_server_group(name="spread", policy="anti-affinity")
    hints = {"group": group.id}
    a = env.boot(name="a", scheduler_hints=hints)
    b = env.boot(name="b", scheduler_hints=hints)
    assert {a.compute_host, b.compute_host} == {"fake-1", "fake-2"}
    c = env.boot(name="c", scheduler_hints=hints, wait=False)
    c = env.wait_status(c, "ERROR")
    assert "No valid host" in c.fault["message"]
    assert set(conn.compute.get_server_group(group.id).member_ids) == {a.id, b.id, c.id}

    solo = env.boot(name="solo")
    source = solo.compute_host
    conn.compute.live_migrate_server(solo, host=None, block_migration="auto")
    wait_for(lambda: conn.compute.get_server(solo).compute_host != source, "migration")
    solo = env.wait_status(solo, "ACTIVE")
    port = next(conn.network.ports(device_id=solo.id))
    assert solo.task_state is None and port.id


def test_microversions_negotiated_and_echoed(compute_env):
    env = compute_env()
    url = env.cloud.url + "/compute"
    root = httpx.get(url + "/").json()
    v21 = next(v for v in root["versions"] if v["id"] == "v2.1")
    assert v21["min_version"] == "2.1"
    token = env.conn.session.get_token()
    for header, value, echoed in (("OpenStack-API-Version", "compute 2.37", "2.37"),
                                  ("X-OpenStack-Nova-API-Version", "2.53", "2.53"),
                                  ("OpenStack-API-Version", "compute latest",
                                   v21["version"])):
        r = httpx.get(url + "/v2.1/flavors", headers={"X-Auth-Token": token, header: value})
        assert r.status_code == 200
        assert r.headers["OpenStack-API-Version"] == f"compute {echoed}"
        assert r.headers["X-OpenStack-Nova-API-Version"] == echoed
    r = httpx.get(url + "/v2.1/flavors", headers={"X-Auth-Token": token,
                                                  "OpenStack-API-Version": "compute 2.999"})
    assert r.status_code == 406
    assert "notAcceptable" in r.json()
    server = env.boot(name="shape")
    show21 = httpx.get(f"{url}/v2.1/servers/{server.id}", headers={
        "X-Auth-Token": token}).json()["server"]
    assert set(show21["flavor"]) == {"id", "links"} and "locked" not in show21
    show = httpx.get(f"{url}/v2.1/servers/{server.id}", headers={
        "X-Auth-Token": token, "OpenStack-API-Version": "compute 2.100"}).json()["server"]
    assert show["flavor"]["original_name"] == "m1.tiny"
    for key in ("locked", "tags", "server_groups", "locked_reason",
                "pinned_availability_zone", "scheduler_hints", "host_status"):
        assert key in show
    r = httpx.get(f"{url}/v2.1/servers/{server.id}/os-server-password",
                  headers={"X-Auth-Token": token})
    assert r.status_code == 200 and r.json() == {"password": ""}


def test_proxy_apis_exist_before_2_36_only(compute_env):
    env = compute_env()
    conn = env.conn
    images = conn.compute.get("/images/detail", microversion="2.35").json()["images"]
    assert [i["name"] for i in images] == ["cirros"] and images[0]["status"] == "ACTIVE"
    nets = conn.compute.get("/os-networks", microversion="2.1").json()["networks"]
    assert "private" in {n["label"] for n in nets}
    assert conn.compute.get("/images", microversion="2.36").status_code == 404
    assert conn.compute.get("/os-networks", microversion="2.36").status_code == 404


def test_delete_during_build_leaves_no_guest(compute_env):
    env = compute_env(**{"fake.hosts": 1, "fake.boot_delay": 0.5})
    conn = env.conn
    servers = [env.boot(name=f"short-{i}", wait=False) for i in range(3)]
    for s in servers:
        conn.compute.delete_server(s)
    for s in servers:
        conn.compute.wait_for_delete(s, interval=0.02, wait=60)
    agent = env.cloud.cloud.services["compute"].agents[0]
    wait_for(lambda: agent.driver.list_instances() == [], "guests removed")
    assert list(conn.network.ports(device_owner="compute:nova")) == []
