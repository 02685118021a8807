"""`openstack server create` boots a real guest: the container driver, the
guest image the cloud registers, Linux-bridge networking with DHCP and
metadata. Driven with the openstack CLI, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
import uuid

import pytest

from tests.e2e.conftest import PYTHON, host_leftovers, require_binaries, require_root

USER_DATA = "#!/bin/sh\necho \"user-data ran on $(hostname)\" > /root/user-data-marker\n"


def _wait(predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.2)


@pytest.fixture
def cloud(pocketstack_cloud_factory, tmp_path):
    require_root()
    require_binaries("ip", "bridge", "dnsmasq", "losetup", "apt-get", "mkfs.ext4")
    tag = uuid.uuid4().hex[:6]
    running = pocketstack_cloud_factory(**{
        "enabled_services": ["identity", "image", "network", "compute"],
        "network.l2_driver": "linuxbridge", "compute_driver": "container",
        "fake.hosts": 0, "host": f"e2e-{tag}",
        "neutron.metadata_proxy_shared_secret": "e2e-metadata-secret"})
    from pocketstack.guest import integration

    running.image_id = integration.register_guest_image(running.cloud)
    yield running
    conn = running.connect()
    for server in conn.compute.servers(all_projects=True):
        conn.compute.delete_server(server)
    for server in list(conn.compute.servers(all_projects=True)):
        conn.compute.wait_for_delete(server, wait=60)
    for net in conn.network.networks():
        for port in conn.network.ports(network_id=net.id):
            if port.device_owner.startswith("compute:"):
                conn.network.delete_port(port)
        conn.network.delete_network(net)
    running.cloud.services["network"].driver.wait_converged(60)


def _ssh(net_id: str, ip: str, key: str, command: str) -> dict:
    script = textwrap.dedent("""
        import json, sys, paramiko
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        c.connect(sys.argv[1], username="root", key_filename=sys.argv[2], timeout=10,
                  allow_agent=False, look_for_keys=False, banner_timeout=10)
        _i, o, e = c.exec_command(sys.argv[3], timeout=20)
        rc = o.channel.recv_exit_status()
        print(json.dumps({"rc": rc, "out": o.read().decode(), "err": e.read().decode()}))
    """)
    proc = subprocess.run(["ip", "netns", "exec", f"qdhcp-{net_id}", PYTHON, "-c", script, ip,
                           key, command], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _agent_driver_pid(driver, server_id):
    return driver._record(server_id).get("pid")


def _agent_driver(cloud):
    compute = cloud.cloud.services["compute"]
    return next(a.driver for a in compute.agents if a.host == cloud.cloud.conf.host)


def test_server_create_boots_a_real_guest(cloud, tmp_path):
    import paramiko

    key = paramiko.RSAKey.generate(2048)
    key.write_private_key_file(str(tmp_path / "id_rsa"))
    (tmp_path / "id_rsa.pub").write_text(f"ssh-rsa {key.get_base64()} e2e\n")
    (tmp_path / "user-data.sh").write_text(USER_DATA)
    cloud.cli("keypair", "create", "--public-key", str(tmp_path / "id_rsa.pub"), "k1")
    net = cloud.cli("network", "create", "n1")
    cloud.cli("subnet", "create", "--network", "n1", "--subnet-range", "10.55.0.0/24", "s1")
    # security groups are enforced: SSH needs a rule, as on any OpenStack cloud
    cloud.cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
              "default")
    images = cloud.cli("image", "list")
    assert any(i["Name"] == "pocketstack-guest" for i in images)
    servers = {}
    for name in ("vm1", "vm2"):
        servers[name] = cloud.cli("server", "create", "--image", "pocketstack-guest",
                                  "--flavor", "m1.nano", "--network", "n1", "--key-name", "k1",
                                  "--user-data", str(tmp_path / "user-data.sh"), "--wait", name,
                                  timeout=180)
        assert servers[name]["status"] == "ACTIVE"
    ips = {}
    for name in servers:
        _wait(lambda n=name: "boot finished" in cloud.cli(
            "console", "log", "show", n, parse=False).stdout, what=f"{name} boot")
        addresses = cloud.cli("server", "show", name)["addresses"]
        ips[name] = addresses["n1"][0] if isinstance(addresses, dict) else \
            addresses.split("=")[1].split(",")[0].strip()
    out = _ssh(net["id"], ips["vm1"], str(tmp_path / "id_rsa"),
               f"hostname; ip -4 -o addr show eth0; cat /root/user-data-marker; "
               f"ping -c 2 -W 2 {ips['vm2']}")
    assert out["rc"] == 0, out
    assert out["out"].splitlines()[0] == "vm1"
    assert f"inet {ips['vm1']}/24" in out["out"]
    assert "user-data ran on vm1" in out["out"]

    # power actions: the host's processes follow, power_state is read from them
    driver = _agent_driver(cloud)
    server_id = servers["vm1"]["id"]
    inst = {"uuid": server_id}

    def power(expect_state, expect_power):
        _wait(lambda: cloud.cli("server", "show", "vm1")["status"] == expect_state,
              what=f"vm1 {expect_state}")
        shown = cloud.cli("server", "show", "vm1")
        assert shown["OS-EXT-STS:power_state"] in (expect_power, {
            1: "Running", 3: "Paused", 4: "Shutdown"}[expect_power])
        return driver.get_info(inst).state

    pid = driver._record(server_id)["pid"]
    cloud.cli("server", "pause", "vm1", parse=False)
    assert power("PAUSED", 3) == 3
    state = open(os.path.join(driver._record(server_id)["cgroups"]["freezer"],
                              "freezer.state")).read().strip()
    assert state == "FROZEN"
    cloud.cli("server", "unpause", "vm1", parse=False)
    assert power("ACTIVE", 1) == 1
    cloud.cli("server", "stop", "vm1", parse=False)
    assert power("SHUTOFF", 4) == 4
    assert not os.path.exists(f"/proc/{pid}")
    cloud.cli("server", "start", "vm1", parse=False)
    assert power("ACTIVE", 1) == 1
    pid2 = driver._record(server_id)["pid"]
    assert pid2 != pid and os.path.exists(f"/proc/{pid2}")
    cloud.cli("server", "reboot", "--hard", "vm1", parse=False)
    _wait(lambda: driver._record(server_id).get("pid") not in (None, pid2), what="reboot")
    assert power("ACTIVE", 1) == 1

    # kill the compute agent and the DHCP service mid-way, then restart both:
    # the guests keep running, the agent finds them, DHCP/metadata come back
    from pocketstack.compute.manager import ComputeManager
    from pocketstack.compute.virt.container import ContainerDriver

    compute = cloud.cloud.services["compute"]
    old_agent = next(a for a in compute.agents if a.host == cloud.cloud.conf.host)
    old_agent.stop()
    compute.agents.remove(old_agent)
    network_driver = cloud.cloud.services["network"].driver
    network_driver.stop()
    ddir = os.path.join(network_driver.dhcp.dir, net["id"])
    for name in ("pid", "metadata-proxy.pid"):
        subprocess.run(["kill", "-9", open(os.path.join(ddir, name)).read().strip()])
    guest_pids = {n: _agent_driver_pid(driver, s["id"]) for n, s in servers.items()}
    agent = ComputeManager(cloud.cloud.conf, cloud.cloud.conf.host, compute.transport,
                           driver=ContainerDriver(cloud.cloud.conf, cloud.cloud.conf.host))
    agent.start()
    compute.agents.append(agent)
    network_driver.start(network_driver.manager)
    network_driver.wait_converged()
    for name, server in servers.items():
        assert _agent_driver_pid(agent.driver, server["id"]) == guest_pids[name]
        assert cloud.cli("server", "show", name)["status"] == "ACTIVE"
    out = _ssh(net["id"], ips["vm2"], str(tmp_path / "id_rsa"),
               "wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json")
    assert out["rc"] == 0 and servers["vm2"]["id"] in out["out"]

    # delete everything: nothing of it stays on the host
    ports = [p["ID"] for p in cloud.cli("port", "list", "--network", "n1")]
    for name in servers:
        cloud.cli("server", "delete", "--wait", name, parse=False)
    cloud.cli("network", "delete", "n1", parse=False)
    cloud.cloud.services["network"].driver.wait_converged()
    for server in servers.values():
        assert host_leftovers(server["id"]) == []
    for port_id in ports:
        assert host_leftovers(port_id[:11]) == []
    assert host_leftovers(net["id"]) == []
    assert host_leftovers(net["id"][:11]) == []
