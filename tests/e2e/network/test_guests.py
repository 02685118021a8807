"""Real guests (the container driver and the guest image) behind a router,
with each L2 back end: DHCP and metadata, SNAT to the outside, a floating IP
reached from the outside only once a security-group rule allows SSH."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid

import pytest

from tests.e2e.conftest import PYTHON, make_conf, require_binaries
from tests.e2e.network.nettools import TcpServer, sh
from tests.e2e.test_network_dataplane import Env, keypair  # noqa: F401 - the fixture

OUT_IP = "203.0.113.1"
DRIVERS = {
    "linuxbridge": "pocketstack.network.drivers.openvswitch:LinuxBridgeRoutingDriver",
    "openvswitch": "openvswitch",
}

SSH = textwrap.dedent("""
    import json, sys, paramiko
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        c.connect(sys.argv[1], username="root", key_filename=sys.argv[2], timeout=5,
                  allow_agent=False, look_for_keys=False, banner_timeout=5)
    except Exception as e:
        print(json.dumps({"rc": -1, "out": "", "err": repr(e)}))
        sys.exit(0)
    _i, o, e = c.exec_command(sys.argv[3], timeout=20)
    rc = o.channel.recv_exit_status()
    print(json.dumps({"rc": rc, "out": o.read().decode(), "err": e.read().decode()}))
""")


def ssh_from(ns, ip, key, command):
    proc = subprocess.run(["ip", "netns", "exec", ns, PYTHON, "-c", SSH, ip, key, command],
                          capture_output=True, text=True, timeout=60)
    return json.loads(proc.stdout)


@pytest.fixture(params=["linuxbridge", "openvswitch"])
def guests(request, lab, pocketstack_cloud_factory, metadata_service, keypair,  # noqa: F811
           tmp_path, guest_image):
    require_binaries("dnsmasq", "losetup")
    if request.param == "openvswitch":
        request.getfixturevalue("ovs_lock")
    from pocketstack.compute.virt.container import ContainerDriver

    tag = lab.tag[2:]
    phy = f"{lab.tag}-phy"
    outside = lab.ns("out")
    subprocess.run(["ip", "link", "add", phy, "type", "veth", "peer", "name", "eth0",
                    "netns", outside], check=True)
    lab.links.append(phy)
    sh(None, "ip", "link", "set", phy, "up")
    sh(outside, "ip", "link", "set", "eth0", "up")
    sh(outside, "ethtool", "-K", "eth0", "tx", "off")
    sh(outside, "ip", "addr", "add", f"{OUT_IP}/24", "dev", "eth0")
    cloud = pocketstack_cloud_factory(**{
        "enabled_services": ["identity", "network"], "network.l2_driver": DRIVERS[request.param],
        "host": f"e2e-{tag}", "linux_bridge.physical_interface_mappings": [f"extnet:{phy}"],
        "ovs.run_dir": str(tmp_path / "ovs"), "ovs.bridge_prefix": tag,
        "securitygroup.chain_prefix": f"g{tag}", "vxlan.local_ip": "127.0.0.1",
        "dataplane_agent.metadata_url": metadata_service.url,
        "dataplane_agent.metadata_proxy_shared_secret": metadata_service.secret})
    compute = ContainerDriver(make_conf(str(tmp_path / "compute")), f"e2e-{tag}")
    compute.init_host()
    e = Env(cloud, compute, metadata_service, keypair, tag)
    e.image = guest_image
    e.outside = outside
    e.backend = request.param
    e.lab = lab
    try:
        yield e
    finally:
        for inst in e.instances:
            compute.destroy(inst, inst["network_info"])
        conn = e.conn
        for fip in conn.network.ips():
            conn.network.delete_ip(fip)
        for port in conn.network.ports():
            if port.device_owner.startswith("compute:"):
                conn.network.delete_port(port)
        for router in conn.network.routers():
            for port in conn.network.ports(device_id=router.id,
                                           device_owner="network:router_interface"):
                conn.network.remove_interface_from_router(router, port_id=port.id)
            conn.network.delete_router(router)
        for net in conn.network.networks():
            conn.network.delete_network(net)
        driver = e.network_driver
        driver._touch()  # noqa: SLF001
        driver.wait_converged(60)
        prefix = driver.firewall.prefix
        left = [line for line in sh(None, "iptables-save", "-t", "filter").splitlines()
                if f"{prefix}-" in line]
        left += [n for n in sh(None, "ip", "netns").split() if n.startswith("qrouter-")
                 and n[8:] in e.router_ids]
        if request.param == "openvswitch":
            left += [p for b in driver.ovs.bridges() for p in
                     driver.ovs.vsctl("list-ports", b).split() if p.startswith("qvo")]
        driver.teardown_host()
        if request.param == "openvswitch":
            driver.ovs.stop()
        assert left == []


def test_guest_behind_router_with_floating_ip_and_ssh_rule(guests):
    e = guests
    conn = e.conn
    ext = conn.network.create_network(name="public", provider_network_type="flat",
                                      provider_physical_network="extnet",
                                      is_router_external=True)
    conn.network.create_subnet(network_id=ext.id, ip_version=4, cidr="203.0.113.0/24",
                               gateway_ip=OUT_IP, is_dhcp_enabled=False)
    net, subnet = e.network(conn, "10.80.0.0/24", "private")
    router = conn.network.create_router(name="r", external_gateway_info={"network_id": ext.id})
    e.router_ids = [router.id]
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    gw_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
    outside = TcpServer(e.outside, 8022, name="outside")
    e.lab.cleanups.append(outside.stop)
    guest = e.boot(conn, net, f"g-{uuid.uuid4().hex[:4]}")
    console = e.booted(guest)
    assert f"eth0 bound {guest['ip']}/24" in console, console
    fip = conn.network.create_ip(floating_network_id=ext.id, port_id=guest["port"].id)
    e.network_driver._touch()  # noqa: SLF001
    assert e.network_driver.wait_converged(60)
    address = fip.floating_ip_address
    # SSH from the outside is blocked until a rule allows port 22
    denied = ssh_from(e.outside, address, e.keypair["private"], "true")
    assert denied["rc"] == -1, denied
    conn.network.create_security_group_rule(
        security_group_id=guest["port"].security_group_ids[0], direction="ingress",
        ethertype="IPv4", protocol="tcp", port_range_min=22, port_range_max=22)
    assert e.network_driver.wait_converged(60)
    out = ssh_from(e.outside, address, e.keypair["private"],
                   f"hostname; echo hi | nc {OUT_IP} 8022; cat /root/.ssh/authorized_keys")
    assert out["rc"] == 0, out
    assert guest["hostname"] in out["out"]  # metadata reached the guest
    assert e.keypair["public"] in out["out"]
    # the guest's own connections leave with its floating IP as source
    assert f"ok {address} outside hi" in out["out"]
    # the floating IP moves away: the guest is out of reach again
    conn.network.update_ip(fip, port_id=None)
    e.network_driver._touch()  # noqa: SLF001
    assert e.network_driver.wait_converged(60)
    assert ssh_from(e.outside, address, e.keypair["private"], "true")["rc"] == -1
    assert gw_ip != address
