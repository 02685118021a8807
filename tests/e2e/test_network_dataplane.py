"""Linux bridge data plane with real guests: DHCP leases from ports, metadata
through the per-network proxy, SSH with the keypair, isolation of two
projects using the same CIDR, convergence after restarts, clean teardown."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
import uuid

import pytest

from tests.e2e.conftest import (
    PYTHON,
    host_leftovers,
    make_conf,
    require_binaries,
    require_root,
)

USER_DATA = "#!/bin/sh\necho user-data-ran > /root/user-data-marker\n"


def _wait(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def keypair(tmp_path):
    import paramiko

    key = paramiko.RSAKey.generate(2048)
    path = tmp_path / "id_rsa"
    key.write_private_key_file(str(path))
    return {"private": str(path), "public": f"ssh-rsa {key.get_base64()} e2e@test"}


class Env:
    def __init__(self, cloud, compute, metadata, keypair, tag):
        self.cloud = cloud
        self.conn = cloud.connect()
        self.network_driver = cloud.cloud.services["network"].driver
        self.compute = compute
        self.metadata = metadata
        self.keypair = keypair
        self.tag = tag
        self.instances: list[dict] = []

    def network(self, conn, cidr, name):
        net = conn.network.create_network(name=name)
        subnet = conn.network.create_subnet(network_id=net.id, cidr=cidr, ip_version=4,
                                            name=f"{name}-subnet")
        return net, subnet

    def boot(self, conn, net, hostname, ip=None, project_id=None):
        """What compute does for a server: a bound port, then the guest."""
        inst_id = str(uuid.uuid4())
        fixed = [{"ip_address": ip}] if ip else None
        port = self.conn.network.create_port(
            network_id=net.id, device_owner="compute:nova", device_id=inst_id,
            binding_host_id=self.network_driver.host, project_id=project_id or net.project_id,
            **({"fixed_ips": fixed} if fixed else {}))
        self.metadata.instances[inst_id] = {"hostname": hostname, "key": self.keypair["public"],
                                            "user_data": USER_DATA,
                                            "project_id": port.project_id}
        vif = {"id": port.id, "address": port.mac_address,
               "network": {"id": net.id, "mtu": net.mtu},
               "details": port.binding_vif_details or {}}
        inst = {"uuid": inst_id, "hostname": hostname,
                "flavor": {"vcpus": 1, "ram": 128, "disk": 1},
                "ip": port.fixed_ips[0]["ip_address"], "port": port, "network_info": [vif]}
        self.compute.spawn(inst, {"id": "guest", "local_path": self.image}, [vif])
        self.instances.append(inst)
        return inst

    def booted(self, inst, timeout=90):
        _wait(lambda: "pocketstack-guest: boot finished" in
              self.compute.get_console_output(inst), timeout,
              f"boot of {inst['hostname']}")
        return self.compute.get_console_output(inst)

    def ssh(self, net_id, ip, command):
        """Run ``command`` in the guest over SSH with the keypair, from the
        network's DHCP namespace (the only place on the host on that network)."""
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
        proc = subprocess.run(["ip", "netns", "exec", f"qdhcp-{net_id}", PYTHON, "-c", script,
                               ip, self.keypair["private"], command],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def env(pocketstack_cloud_factory, metadata_service, keypair, tmp_path, guest_image):
    require_root()
    require_binaries("ip", "bridge", "dnsmasq", "losetup")
    from pocketstack.compute.virt.container import ContainerDriver

    tag = uuid.uuid4().hex[:6]
    cloud = pocketstack_cloud_factory(**{
        "enabled_services": ["identity", "network"],
        # L2, DHCP and metadata alone (security groups are issue 9's e2e tests)
        "network.l2_driver": "pocketstack.network.drivers.linuxbridge:LinuxBridgeDriver",
        "host": f"e2e-{tag}",
        "dataplane_agent.metadata_url": metadata_service.url,
        "dataplane_agent.metadata_proxy_shared_secret": metadata_service.secret})
    compute = ContainerDriver(make_conf(str(tmp_path / "compute")), f"e2e-{tag}")
    compute.init_host()
    e = Env(cloud, compute, metadata_service, keypair, tag)
    e.image = guest_image
    yield e
    for inst in e.instances:
        compute.destroy(inst, inst["network_info"])
    driver = e.network_driver
    for net in e.conn.network.networks():
        for port in e.conn.network.ports(network_id=net.id):
            if port.device_owner.startswith("compute:"):
                e.conn.network.delete_port(port)
        e.conn.network.delete_network(net)
    driver.wait_converged(60)


def test_two_guests_dhcp_metadata_ssh_ping(env):
    net, subnet = env.network(env.conn, "10.77.0.0/24", "e2e-net")
    a = env.boot(env.conn, net, "guest-a")
    b = env.boot(env.conn, net, "guest-b")
    console = env.booted(a)
    env.booted(b)
    # DHCP gave each guest its port's address
    assert f"eth0 bound {a['ip']}/24" in console, console
    out = env.ssh(net.id, a["ip"], "ip -4 -o addr show eth0; hostname; "
                  "cat /root/.ssh/authorized_keys; cat /root/user-data-marker; "
                  f"ping -c 2 -W 2 {b['ip']}; ip route")
    assert out["rc"] == 0, out
    assert f"inet {a['ip']}/24" in out["out"]
    assert "guest-a" in out["out"]  # hostname from metadata
    assert env.keypair["public"] in out["out"]  # the keypair's key, from metadata
    assert "user-data-ran" in out["out"]  # user_data script ran
    assert "2 packets received" in out["out"] or " 0% packet loss" in out["out"]
    assert "169.254.169.254 via" in out["out"]  # metadata route pushed by DHCP
    out_b = env.ssh(net.id, b["ip"], f"hostname; ping -c 1 -W 2 {a['ip']}")
    assert out_b["rc"] == 0 and "guest-b" in out_b["out"]
    # the metadata service saw signed requests for exactly these instances
    seen = {r["instance"] for r in env.metadata.requests}
    assert {a["uuid"], b["uuid"]} <= seen
    # the MAC inside is the port's, the port id is an altname of eth0
    pid = env.compute._record(a["uuid"])["pid"]
    link = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-j", "link", "show", "eth0"],
                          capture_output=True, text=True, check=True).stdout
    assert a["port"].mac_address in link and a["port"].id in link


def test_same_cidr_in_two_projects_is_isolated_with_own_metadata(env):
    other = env.cloud.make_user()
    conn_b = env.cloud.connect(username=other["username"], password=other["password"],
                               project_name=other["project_name"])
    net_a, _ = env.network(env.conn, "10.88.0.0/24", "net-a")
    net_b, _ = env.network(conn_b, "10.88.0.0/24", "net-b")
    a = env.boot(env.conn, net_a, "same-a", ip="10.88.0.50")
    b = env.boot(conn_b, net_b, "same-b", ip="10.88.0.50", project_id=other["project_id"])
    b2 = env.boot(conn_b, net_b, "same-b2", ip="10.88.0.60", project_id=other["project_id"])
    for inst in (a, b, b2):
        env.booted(inst)
    out_a = env.ssh(net_a.id, "10.88.0.50", "hostname; ping -c 2 -W 1 10.88.0.60; true")
    out_b = env.ssh(net_b.id, "10.88.0.50", "hostname; ping -c 2 -W 1 10.88.0.60; true")
    assert out_a["out"].split()[0] == "same-a"
    assert out_b["out"].split()[0] == "same-b"  # same IP, its own metadata
    assert "0 packets received" in out_a["out"] or "100% packet loss" in out_a["out"]
    assert " 0% packet loss" in out_b["out"]
    tenants = {(r["instance"], r["tenant"]) for r in env.metadata.requests}
    assert (b["uuid"], other["project_id"]) in tenants


def test_live_dhcp_update_restart_convergence_and_clean_teardown(env):
    driver = env.network_driver
    net, subnet = env.network(env.conn, "10.99.0.0/24", "conv-net")
    a = env.boot(env.conn, net, "conv-a")
    env.booted(a)
    ddir = os.path.join(driver.dhcp.dir, net.id)
    pid_before = int(open(os.path.join(ddir, "pid")).read())
    # a new port: the hosts file gains it, dnsmasq is reloaded, not restarted
    b = env.boot(env.conn, net, "conv-b")
    driver.wait_converged()
    assert b["port"].mac_address in open(os.path.join(ddir, "hosts", "hosts")).read()
    assert int(open(os.path.join(ddir, "pid")).read()) == pid_before
    env.booted(b)
    # kill dnsmasq and the metadata proxy behind the agent's back; take a
    # bridge port off; the next pass (a restart of the agent) converges
    subprocess.run(["kill", "-9", str(pid_before)], check=False)  # may have died already
    proxy_pid = int(open(os.path.join(ddir, "metadata-proxy.pid")).read())
    subprocess.run(["kill", "-9", str(proxy_pid)], check=False)
    tap = "tap" + a["port"].id[:11]
    subprocess.run(["ip", "link", "set", tap, "nomaster"], check=True)
    driver.stop()
    driver.start(driver.manager)  # agent restart: full resync
    driver.wait_converged()
    new_pid = int(open(os.path.join(ddir, "pid")).read())
    assert new_pid != pid_before and os.path.exists(f"/proc/{new_pid}")
    assert os.path.basename(os.readlink(f"/sys/class/net/{tap}/master")).startswith("brq")
    # the guests still reach each other and their metadata
    out = env.ssh(net.id, a["ip"], f"ping -c 1 -W 2 {b['ip']} && wget -q -O - "
                  "http://169.254.169.254/openstack/latest/meta_data.json")
    assert out["rc"] == 0 and a["uuid"] in out["out"]
    # compute agent restart: a fresh driver finds the guests and re-makes state
    from pocketstack.compute.virt.container import ContainerDriver

    compute2 = ContainerDriver(env.compute.conf, env.compute.host)
    compute2.init_host()
    assert {a["uuid"], b["uuid"]} <= set(compute2.list_instances())
    assert compute2.get_info(a).state == 1
    # a deleted port's address goes to a new port: the new guest gets it by DHCP
    env.compute.destroy(b, b["network_info"])
    env.conn.network.delete_port(b["port"])
    env.instances.remove(b)
    driver.wait_converged()
    b = env.boot(env.conn, net, "conv-c", ip=b["ip"])
    assert f"eth0 bound {b['ip']}/24" in env.booted(b)
    # delete everything: nothing of it stays on the host
    for inst in (a, b):
        env.compute.destroy(inst, inst["network_info"])
        env.conn.network.delete_port(inst["port"])
        env.instances.remove(inst)
    env.conn.network.delete_network(net)
    driver.wait_converged()
    assert host_leftovers(net.id[:11]) == []
    assert host_leftovers(net.id) == []
    for inst in (a, b):
        assert host_leftovers(inst["uuid"]) == []
        assert host_leftovers(inst["port"].id[:11]) == []
    assert not os.path.exists(ddir)
