"""Rebuild, rescue, shelve/unshelve, migrate, lock, reset state, console, diagnostics."""

from __future__ import annotations

import openstack.exceptions as osexc
import pytest

from tests.functional.compute.conftest import wait_for


def test_rebuild_rescue_shelve_migrate_lock(compute_env):
    env = compute_env(**{"fake.hosts": 2})
    conn = env.conn
    server = env.boot(name="many-actions")
    other = conn.image.create_image(name="other", data=b"other-disk", disk_format="raw",
                                    container_format="bare", visibility="public")
    conn.compute.rebuild_server(server, image=other.id, name="rebuilt")
    server = env.wait_status(server, "ACTIVE")
    wait_for(lambda: conn.compute.get_server(server).task_state is None, "rebuilt")
    server = conn.compute.get_server(server)
    assert server.name == "rebuilt" and server.image.id == other.id

    conn.compute.rescue_server(server)
    env.wait_status(server, "RESCUE")
    conn.compute.unrescue_server(server)
    env.wait_status(server, "ACTIVE")

    conn.compute.shelve_server(server)
    server = env.wait_status(server, "SHELVED_OFFLOADED")
    assert server.compute_host is None
    conn.compute.unshelve_server(server)
    server = env.wait_status(server, "ACTIVE")
    assert server.compute_host in ("fake-1", "fake-2")
    assert next(conn.network.ports(device_id=server.id)).binding_host_id == server.compute_host

    source = server.compute_host
    conn.compute.migrate_server(server)
    server = env.wait_status(server, "VERIFY_RESIZE")
    assert server.compute_host != source
    conn.compute.confirm_server_resize(server)
    env.wait_status(server, "ACTIVE")

    tenant = env.cloud.make_user()
    tconn = env.cloud.connect(username=tenant["username"], password=tenant["password"],
                              project_name=tenant["project_name"])
    mine = env.boot(conn=tconn, name="locked")
    tconn.compute.lock_server(mine)
    with pytest.raises(osexc.ConflictException):
        tconn.compute.stop_server(mine)
    tconn.compute.unlock_server(mine)
    with pytest.raises(osexc.ForbiddenException):
        tconn.compute.reset_server_state(mine, "error")
    conn.compute.reset_server_state(mine, "error")
    assert conn.compute.get_server(mine).status == "ERROR"
    conn.compute.reset_server_state(mine, "active")

    diag = conn.compute.get(f"/servers/{server.id}/diagnostics", microversion="2.48").json()
    assert diag["state"] == "running" and diag["driver"] == "fake"
    actions = {a.action for a in conn.compute.server_actions(server)}
    assert {"create", "rebuild", "rescue", "unrescue", "shelve", "unshelve",
            "migrate"} <= actions


def test_migrations_are_recorded(compute_env):
    env = compute_env(**{"fake.hosts": 2})
    conn = env.conn
    server = env.boot(name="mover")
    conn.compute.resize_server(server, "2")
    env.wait_status(server, "VERIFY_RESIZE")
    conn.compute.confirm_server_resize(server)
    env.wait_status(server, "ACTIVE")
    source = conn.compute.get_server(server).compute_host
    conn.compute.live_migrate_server(server, host=None, block_migration="auto")
    wait_for(lambda: conn.compute.get_server(server).compute_host != source, "moved")
    env.wait_status(server, "ACTIVE")
    listed = env.cloud.cli("server", "migration", "list", "--server", server.id)
    kinds = {(m["Type"], m["Status"]) for m in listed}
    assert kinds == {("resize", "confirmed"), ("live-migration", "completed")}
