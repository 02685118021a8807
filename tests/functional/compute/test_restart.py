"""After a restart nothing stays in BUILD or in a task state."""

from __future__ import annotations

from pocketstack.testing import start_cloud
from tests.functional.compute.conftest import Env, wait_for


def test_restart_in_the_middle_of_builds_and_actions(tmp_path):
    state = str(tmp_path / "cloud")
    base = {"enabled_services": ["identity", "image", "network", "compute"],
            "fake.hosts": 2}
    cloud = start_cloud(state, {**base, "fake.boot_delay": 30.0})
    try:
        env = Env(cloud, cloud.connect())
        servers = [env.boot(name=f"slow-{i}", wait=False) for i in range(3)]
        wait_for(lambda: all(env.conn.compute.get_server(s).task_state == "spawning"
                             for s in servers), "builds reached the hosts")
    finally:
        cloud.stop()
    cloud = start_cloud(state, base)
    try:
        conn = cloud.connect()

        def settled():
            found = list(conn.compute.servers())
            return found if all(s.status == "ACTIVE" and s.task_state is None
                                for s in found) else None
        found = wait_for(settled, "servers recovered", timeout=60)
        assert {s.id for s in found} == {s.id for s in servers}
        for s in found:
            assert s.power_state == 1
        # the recovered servers are real: actions work and deletes end
        conn.compute.stop_server(found[0])
        conn.compute.wait_for_server(found[0], status="SHUTOFF", interval=0.02, wait=60)
        for s in found:
            conn.compute.delete_server(s)
        for s in found:
            conn.compute.wait_for_delete(s, interval=0.02, wait=60)
        hyps = conn.compute.get("/os-hypervisors/detail",
                                microversion="2.53").json()["hypervisors"]
        assert all(h["vcpus_used"] == 0 and h["running_vms"] == 0 for h in hyps)
    finally:
        cloud.stop()


def test_restart_recovers_unscheduled_builds_and_stopped_servers(tmp_path):
    state = str(tmp_path / "cloud")
    base = {"enabled_services": ["identity", "image", "network", "compute"],
            "fake.hosts": 1}
    cloud = start_cloud(state, base)
    try:
        env = Env(cloud, cloud.connect())
        stopped = env.boot(name="stopped")
        env.conn.compute.stop_server(stopped)
        env.wait_status(stopped, "SHUTOFF")
        # a build the conductor accepted but never scheduled (its message was lost)
        compute = cloud.cloud.services["compute"]
        compute.rpc_server.stop()
        pending = env.boot(name="pending", wait=False)
    finally:
        cloud.stop()
    cloud = start_cloud(state, base)
    try:
        conn = cloud.connect()
        pending = conn.compute.wait_for_server(conn.compute.get_server(pending.id),
                                               interval=0.02, wait=60)
        assert pending.status == "ACTIVE"
        again = conn.compute.get_server(stopped.id)
        assert again.status == "SHUTOFF" and again.task_state is None
        conn.compute.start_server(again)
        conn.compute.wait_for_server(again, status="ACTIVE", interval=0.02, wait=60)
    finally:
        cloud.stop()
