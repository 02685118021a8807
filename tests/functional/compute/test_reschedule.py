"""A failed spawn is retried on another host ([scheduler] max_attempts) before the
server goes to ERROR with the last failure as its fault."""

from __future__ import annotations


def _used(conn):
    return {h.name: conn.compute.get(f"/os-hypervisors/{h.id}", microversion="2.87").json()
            ["hypervisor"]["memory_mb_used"] for h in conn.compute.hypervisors(details=True)}


def test_failed_spawn_is_rescheduled_to_another_host(compute_env):
    env = compute_env(**{"fake.hosts": 2, "fake.fail_hosts": ["fake-1"]})
    conn = env.conn
    servers = [env.boot(name=f"retried-{i}", wait=False) for i in range(4)]
    for server in servers:
        server = env.wait_status(server, "ACTIVE")
        assert server.compute_host == "fake-2"
        assert server.fault is None or not server.fault
        ports = list(conn.network.ports(device_id=server.id))
        assert [p.binding_host_id for p in ports] == ["fake-2"]
    assert _used(conn)["fake-1"] == 0
    # fake-1 was tried (it had the most free RAM once fake-2 had servers) and failed
    events = [e for s in servers
              for a in conn.compute.get(f"/servers/{s.id}/os-instance-actions",
                                        microversion="2.62").json()["instanceActions"]
              for e in conn.compute.get(f"/servers/{s.id}/os-instance-actions/"
                                        f"{a['request_id']}", microversion="2.62"
                                        ).json()["instanceAction"]["events"]]
    assert any(e["result"] == "Error" and e["host"] == "fake-1" for e in events), events

def test_exhausted_attempts_end_in_error_with_the_fault(compute_env):
    env = compute_env(**{"fake.hosts": 3, "fake.fail_hosts": ["fake-1", "fake-2", "fake-3"],
                         "scheduler.max_attempts": 2})
    conn = env.conn
    server = env.wait_status(env.boot(name="doomed", wait=False), "ERROR")
    message = server.fault["message"]
    assert "Exceeded max scheduling attempts 2" in message and "Simulated failure" in message
    assert list(conn.network.ports(device_id=server.id)) == []
    assert set(_used(conn).values()) == {0}
