"""Evacuate: an admin rebuilds a server of a down (forced down) host on another host,
through openstacksdk, the `openstack server evacuate` command and raw 2.1 calls."""

from __future__ import annotations

import openstack.exceptions as osexc
import pytest

from tests.functional.compute.conftest import wait_for


def _force_down(conn, host: str, down: bool = True) -> None:
    service = next(s for s in conn.compute.services() if s.host == host
                   and s.binary == "nova-compute")
    conn.compute.update_service_forced_down(service, host, service.binary, forced=down)


def _evacuate(conn, server, body, version):
    return conn.compute.post(f"/servers/{server.id}/action", json={"evacuate": body},
                             microversion=version)


def test_evacuate_rebuilds_on_another_host(compute_env):
    env = compute_env(**{"fake.hosts": 3})
    conn, cloud = env.conn, env.cloud
    server = env.boot(name="evacuee")
    source = server.compute_host
    others = sorted({"fake-1", "fake-2", "fake-3"} - {source})

    # the host is up: nothing moves
    r = _evacuate(conn, server, {}, "2.29")
    assert r.status_code == 400 and "is still in use" in r.text
    _force_down(conn, source)
    for body, version, status, text in (
            ({}, "2.1", 400, "onSharedStorage"),
            ({"onSharedStorage": True, "adminPass": "x"}, "2.1", 400, "existing disk"),
            ({"force": True}, "2.29", 400, "non-provided destination"),
            ({"host": "nowhere"}, "2.29", 404, "Compute host nowhere not found."),
            ({"host": source}, "2.29", 400, "can't be the same one"),
            ({"bogus": 1}, "2.29", 400, "bogus")):
        r = _evacuate(conn, server, body, version)
        assert r.status_code == status and text in r.text, (body, r.text)
    user = cloud.make_user()
    other = cloud.connect(username=user["username"], password=user["password"],
                          project_name=user["project_name"])
    assert _evacuate(other, server, {}, "2.29").status_code == 404  # not their server
    assert conn.compute.get_server(server).compute_host == source

    # 2.1: a new password in the answer; the server is ACTIVE on another host
    r = _evacuate(conn, server, {"onSharedStorage": False}, "2.1")
    assert r.status_code == 200 and len(r.json()["adminPass"]) >= 8
    moved = wait_for(lambda: (lambda s: s if s.task_state is None else None)(
        conn.compute.get_server(server)), "evacuated")
    assert moved.status == "ACTIVE"
    assert moved.compute_host in others and moved.task_state is None
    assert [p.binding_host_id for p in conn.network.ports(device_id=server.id)] == \
        [moved.compute_host]
    migration = next(iter(conn.compute.migrations(instance_uuid=server.id)))
    assert migration.migration_type == "evacuation"
    assert (migration.source_compute, migration.dest_compute) == (source, moved.compute_host)

    # openstacksdk at the latest microversion (2.95+): the evacuated server is stopped
    _force_down(conn, moved.compute_host)
    target = next(h for h in others if h != moved.compute_host)
    conn.compute.evacuate_server(server, host=target)
    server = env.wait_status(server, "SHUTOFF")
    assert server.compute_host == target and server.power_state == 4


def test_openstack_server_evacuate(compute_env):
    env = compute_env(**{"fake.hosts": 2})
    server = env.boot(name="cli-evacuee")
    target = "fake-2" if server.compute_host == "fake-1" else "fake-1"
    _force_down(env.conn, server.compute_host)
    env.cloud.cli("--os-compute-api-version", "2.29", "server", "evacuate", "--host", target,
                  server.id, parse=False)
    server = wait_for(lambda: (lambda s: s if s.task_state is None else None)(
        env.conn.compute.get_server(server)), "evacuated")
    assert server.status == "ACTIVE" and server.compute_host == target
    paused = env.boot(name="paused-one")
    env.conn.compute.pause_server(paused)
    env.wait_status(paused, "PAUSED")
    _force_down(env.conn, paused.compute_host)
    with pytest.raises(osexc.ConflictException):
        env.conn.compute.evacuate_server(paused)
