"""The bus: RabbitMQ boot path, an agent process without a database, rolling upgrades."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import uuid

import pytest

from pocketstack.common import rpc
from tests.conftest import missing
from tests.functional.compute.conftest import wait_for

RABBIT = "rabbit://guest:guest@127.0.0.1:5672/"


def rabbit_or_missing():
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        missing("RabbitMQ at 127.0.0.1:5672")
    try:
        import kombu  # noqa: F401
    except ImportError:
        missing("kombu")


def test_boot_over_rabbitmq(compute_env):
    rabbit_or_missing()
    env = compute_env(**{"transport_url": RABBIT, "fake.hosts": 1,
                         "control_exchange": f"pst-{uuid.uuid4().hex[:12]}"})
    server = env.boot(name="over-rabbit")
    assert server.status == "ACTIVE" and server.compute_host == "fake-1"
    env.conn.compute.stop_server(server)
    env.wait_status(server, "SHUTOFF")
    env.conn.compute.delete_server(server)
    env.conn.compute.wait_for_delete(server, interval=0.02, wait=60)


def test_agent_process_without_database_boots_servers(compute_env, tmp_path):
    rabbit_or_missing()
    exchange = f"pst-{uuid.uuid4().hex[:12]}"
    env = compute_env(**{"transport_url": RABBIT, "fake.hosts": 0,
                         "control_exchange": exchange, "report_interval": 1})
    agent_state = tmp_path / "agent-state"
    agent_state.mkdir()
    conf_file = tmp_path / "agent.conf"
    # No [database] section at all: the agent has no way to reach the database.
    conf_file.write_text(f"[DEFAULT]\ntransport_url = {RABBIT}\ncontrol_exchange = {exchange}\n"
                         f"state_path = {agent_state}\nreport_interval = 1\n\n"
                         "[fake]\nhosts = 2\nhost_prefix = remote-\n")
    log = open(tmp_path / "agent.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pocketstack", "compute-agent",
                             "--config-file", str(conf_file)], stdout=log,
                            stderr=subprocess.STDOUT, cwd=str(tmp_path),
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        conn = env.conn
        wait_for(lambda: {h.name for h in conn.compute.hypervisors()} ==
                 {"remote-1", "remote-2"} or proc.poll() is not None, "remote agents", 60)
        assert proc.poll() is None, (tmp_path / "agent.log").read_text()
        servers = [env.boot(name=f"remote-{i}", wait=False) for i in range(4)]
        servers = [env.wait_status(s, "ACTIVE") for s in servers]
        assert {s.compute_host for s in servers} <= {"remote-1", "remote-2"}
        conn.compute.reboot_server(servers[0], "HARD")
        env.wait_status(servers[0], "ACTIVE")
        for s in servers:
            conn.compute.delete_server(s)
        for s in servers:
            conn.compute.wait_for_delete(s, interval=0.02, wait=60)
        assert list(conn.network.ports(device_owner="compute:nova")) == []
        # the agent wrote no database anywhere
        assert glob.glob(str(agent_state / "**" / "*.sqlite*"), recursive=True) == []
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_conductor_handles_messages_of_the_previous_version(compute_env):
    env = compute_env(**{"fake.hosts": 1})
    server = env.boot(name="upgrade")
    transport = env.cloud.cloud.services["compute"].transport
    # An agent of interface 1.0 sends ``values`` (renamed ``updates`` in 1.1).
    old = rpc.RPCClient(transport, "conductor", version="1.0")
    reply = old.call({}, "instance_update", instance_uuid=server.id,
                     values={"power_state": 4})
    assert reply["updated"] is True
    assert env.conn.compute.get_server(server.id).power_state == 4
    # 1.1 is understood too; a future major version is refused, not misread.
    mid = rpc.RPCClient(transport, "conductor", version="1.1")
    mid.call({}, "instance_update", instance_uuid=server.id, updates={"power_state": 1},
             expected_task_state=None)
    assert env.conn.compute.get_server(server.id).power_state == 1
    future = rpc.RPCClient(transport, "conductor", version="2.0")
    with pytest.raises(rpc.UnsupportedVersion):
        future.call({}, "instance_update", instance_uuid=server.id, updates={})
    # an agent may not change what is not its own
    with pytest.raises(rpc.RPCError):
        mid.call({}, "instance_update", instance_uuid=server.id,
                 updates={"project_id": "someone-else"})
