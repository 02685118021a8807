"""The seed's topologies built through the Networking API (openstacksdk) and
checked on the wire, with each L2 back end. The networking service runs its
data-plane driver (L2, L3, security groups) on this host; namespaces with a
veth whose host end is ``tap<port>`` stand for instances, as the container
driver makes them; an "outside world" namespace sits on the external flat
network's physical interface."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.network.nettools import TcpServer, ping, sh, tcp

OUT_IP = "203.0.113.1"
SSH = 22

DRIVERS = {
    "linuxbridge": "pocketstack.network.drivers.openvswitch:LinuxBridgeRoutingDriver",
    "openvswitch": "openvswitch",
}


class Env:
    def __init__(self, lab, cloud, backend):
        self.lab = lab
        self.cloud = cloud
        self.backend = backend
        self.conn = cloud.connect()
        self.driver = cloud.cloud.services["network"].driver
        self.host = cloud.cloud.conf.host
        self.vms: list[dict] = []

    def sync(self):
        """One full convergence pass after the current state (tap devices appear
        without an API call, so force one)."""
        self.driver._touch()  # noqa: SLF001
        assert self.driver.wait_converged(60)

    def external(self, physnet="extnet", cidr="203.0.113.0/24", gateway=OUT_IP,
                 outside=None, external=True, shared=False):
        net = self.conn.network.create_network(
            name=f"ext-{physnet}", provider_network_type="flat",
            provider_physical_network=physnet, is_router_external=external, is_shared=shared)
        sub = self.conn.network.create_subnet(
            network_id=net.id, ip_version=4, cidr=cidr, gateway_ip=gateway,
            is_dhcp_enabled=False,
            allocation_pools=[{"start": cidr.rsplit(".", 1)[0] + ".10",
                               "end": cidr.rsplit(".", 1)[0] + ".100"}])
        sh(outside or self.outside, "ip", "addr", "add", f"{gateway}/24", "dev", "eth0")
        return net, sub

    def private(self, conn, cidr, name="private"):
        net = conn.network.create_network(name=name)
        sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr=cidr,
                                         is_dhcp_enabled=False)
        return net, sub

    def instance(self, conn, net, sub, name, ip=None):
        """A port bound to this host (as compute would) and its namespace."""
        fixed = {"subnet_id": sub.id}
        if ip:
            fixed["ip_address"] = ip
        port = conn.network.create_port(network_id=net.id, fixed_ips=[fixed],
                                        device_owner="compute:nova", name=name)
        port = self.conn.network.update_port(port, binding_host_id=self.host)
        from pocketstack.network.agents.l2 import tap_name

        ip = port.fixed_ips[0]["ip_address"]
        vm = self.lab.instance(None, None, name, port.mac_address,
                               [f"{ip}/{sub.cidr.split('/')[1]}"], tap=tap_name(port.id),
                               gateway=sub.gateway_ip)
        vm.update(port=port, ip=ip, server=TcpServer(vm["ns"], SSH, name=name))
        self.lab.cleanups.append(vm["server"].stop)
        self.vms.append(vm)
        return vm

    def allow(self, conn, port, protocol, lo=None, prefix="0.0.0.0/0"):
        group = port.security_group_ids[0]
        return conn.network.create_security_group_rule(
            security_group_id=group, direction="ingress", ethertype="IPv4",
            protocol=protocol, port_range_min=lo, port_range_max=lo, remote_ip_prefix=prefix)

    def diag(self) -> str:
        """The host as the driver left it (printed; shown when a test fails)."""
        out = [sh(None, "ip", "-o", "link"), sh(None, "iptables-save", "-t", "filter")]
        if self.backend == "openvswitch":
            ovs = self.driver.ovs
            out.append(ovs.vsctl("show"))
            out += [ovs.ofctl(b, "dump-flows") for b in ovs.bridges()]
        return "\n".join(out)

    def teardown(self):
        conn = self.conn
        for fip in conn.network.ips():
            conn.network.delete_ip(fip)
        for vm in self.vms:
            subprocess.run(["ip", "link", "delete", vm["tap"]], capture_output=True)
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
        self.sync()

    def leftovers(self) -> list[str]:
        found = []
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        for line in links.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith(("brq", "qbr", "qvb", "qvo", "tap")) and any(
                    vm["port"].id[:11] in name for vm in self.vms):
                found.append(f"link {name}")
        from tests.e2e.network.nettools import netns_list

        found += [f"netns {n}" for n in netns_list() if n.startswith("qrouter-")
                  and n[8:] in self.router_ids]
        prefix = self.driver.firewall.prefix
        for tool in ("iptables-save", "ip6tables-save"):
            out = sh(None, tool, "-t", "filter")
            found += [f"rule {line}" for line in out.splitlines() if f"{prefix}-" in line]
        found += [f"ipset {s}" for s in sh(None, "ipset", "list", "-n").split()
                  if s.startswith(prefix)]
        if self.backend == "openvswitch":
            ovs = self.driver.ovs
            for bridge in ovs.bridges():
                found += [f"ovs port {p}" for p in ovs.vsctl("list-ports", bridge).split()
                          if p.startswith("qvo")]
                flows = ovs.ofctl(bridge, "dump-flows")
                found += [f"flow {f}" for f in flows.splitlines() if "cookie=0x0," not in f
                          and "cookie=" in f]
        return found


@pytest.fixture(params=["linuxbridge", "openvswitch"])
def env(request, lab, pocketstack_cloud_factory, tmp_path):
    if request.param == "openvswitch":
        request.getfixturevalue("ovs_lock")
    tag = lab.tag[2:]
    outsides = {}
    for physnet, suffix in (("extnet", "phy"), ("flat2", "ph2")):
        phy = f"{lab.tag}-{suffix}"
        outside = lab.ns(f"out-{physnet}")
        subprocess.run(["ip", "link", "add", phy, "type", "veth", "peer", "name", "eth0",
                        "netns", outside], check=True)
        lab.links.append(phy)
        sh(None, "ip", "link", "set", phy, "up")
        sh(outside, "ip", "link", "set", "eth0", "up")
        sh(outside, "ethtool", "-K", "eth0", "tx", "off")
        outsides[physnet] = (phy, outside)
    cloud = pocketstack_cloud_factory(**{
        "enabled_services": ["identity", "network"], "network.l2_driver": DRIVERS[request.param],
        "host": f"e2e-{tag}", "linux_bridge.physical_interface_mappings":
        [f"{physnet}:{phy}" for physnet, (phy, _) in outsides.items()],
        "ovs.run_dir": str(tmp_path / "ovs"), "ovs.bridge_prefix": tag,
        "securitygroup.chain_prefix": f"s{tag}", "dataplane_agent.enable_isolated_metadata":
        False, "vxlan.local_ip": "127.0.0.1"})
    e = Env(lab, cloud, request.param)
    e.outside = outsides["extnet"][1]
    e.outsides = {k: v[1] for k, v in outsides.items()}
    e.router_ids = []
    try:
        yield e
        e.teardown()
        assert e.leftovers() == []
    finally:
        try:
            e.driver.teardown_host()
        finally:
            if request.param == "openvswitch":
                e.driver.ovs.stop()


def test_provider_router_floating_ip_and_security_groups(env):
    conn = env.conn
    ext, ext_sub = env.external()
    net, sub = env.private(conn, "10.30.0.0/24")
    router = conn.network.create_router(name="r", external_gateway_info={"network_id": ext.id})
    env.router_ids.append(router.id)
    conn.network.add_interface_to_router(router, subnet_id=sub.id)
    gw_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
    vm1 = env.instance(conn, net, sub, "vm1")
    vm2 = env.instance(conn, net, sub, "vm2")
    outside = TcpServer(env.outside, SSH, name="outside")
    env.lab.cleanups.append(outside.stop)
    env.sync()
    # instance -> outside: SNAT'ed to the router's gateway address
    assert tcp(vm1["ns"], OUT_IP, SSH) == f"ok {gw_ip} outside hello"
    if env.backend == "openvswitch":
        # what an operator sees with the usual tools: the ports on br-int with
        # the network's local VLAN, the flows translating it for the flat network
        ovs, backend = env.driver.ovs, env.driver.backend
        shown = ovs.vsctl("show")
        vlan = backend.vlans()[net.id]
        for vm in (vm1, vm2):
            assert f'Port qvo{vm["port"].id[:11]}\n            tag: {vlan}' in shown, shown
        ext_vlan = backend.vlans()[ext.id]
        flows = ovs.ofctl(backend.br_int, "dump-flows")
        assert f"actions=mod_vlan_vid:{ext_vlan},NORMAL" in flows, flows
        assert "datapath_type: netdev" in shown
    # the default group: members reach each other
    assert tcp(vm1["ns"], vm2["ip"], SSH) == f"ok {vm1['ip']} vm2 hello"
    # a floating IP; SSH from the outside is blocked until a rule allows port 22
    fip = conn.network.create_ip(floating_network_id=ext.id, port_id=vm1["port"].id)
    env.sync()
    address = fip.floating_ip_address
    assert tcp(vm1["ns"], OUT_IP, SSH) == f"ok {address} outside hello"
    assert tcp(env.outside, address, SSH, timeout=1) is None
    assert not ping(env.outside, address)
    env.allow(conn, vm1["port"], "tcp", SSH)
    env.sync()
    assert tcp(env.outside, address, SSH) == f"ok {OUT_IP} vm1 hello"
    assert not ping(env.outside, address)
    env.allow(conn, vm1["port"], "icmp")
    env.sync()
    assert ping(env.outside, address)
    # the private address is not reachable from the outside
    assert tcp(env.outside, vm1["ip"], SSH, timeout=1) is None
    # re-associate: the traffic moves to vm2 (same group, so port 22 is open)
    conn.network.update_ip(fip, port_id=vm2["port"].id)
    env.sync()
    assert tcp(env.outside, address, SSH) == f"ok {OUT_IP} vm2 hello"
    assert tcp(vm2["ns"], OUT_IP, SSH) == f"ok {address} outside hello"
    assert tcp(vm1["ns"], OUT_IP, SSH) == f"ok {gw_ip} outside hello"
    # disassociate: unreachable again
    conn.network.update_ip(fip, port_id=None)
    env.sync()
    assert tcp(env.outside, address, SSH, timeout=1) is None


def test_spoofing_and_port_security(env):
    conn = env.conn
    net, sub = env.private(conn, "10.31.0.0/24")
    vm1 = env.instance(conn, net, sub, "vm1")
    vm2 = env.instance(conn, net, sub, "vm2")
    env.sync()
    sh(vm1["ns"], "ip", "addr", "add", "10.31.0.200/24", "dev", "eth0")
    print(env.diag())
    assert tcp(vm1["ns"], vm2["ip"], SSH).startswith("ok")
    assert tcp(vm1["ns"], vm2["ip"], SSH, src="10.31.0.200", timeout=1) is None
    conn.network.update_port(vm1["port"], allowed_address_pairs=[{"ip_address": "10.31.0.200"}])
    env.sync()
    assert tcp(vm1["ns"], vm2["ip"], SSH, src="10.31.0.200") == "ok 10.31.0.200 vm2 hello"
    # a port in a group of its own: nothing comes in; without port security: all does
    lone = conn.network.create_security_group(name="lone")
    conn.network.update_port(vm2["port"], security_groups=[lone.id])
    env.sync()
    assert tcp(vm1["ns"], vm2["ip"], SSH, timeout=1) is None
    conn.network.update_port(vm2["port"], security_groups=[], port_security_enabled=False)
    env.sync()
    assert tcp(vm1["ns"], vm2["ip"], SSH) == f"ok {vm1['ip']} vm2 hello"


def test_per_tenant_routers_with_overlapping_cidrs(env):
    ext, _ = env.external()
    fips = []
    for i in range(2):
        user = env.cloud.make_user()
        conn = env.cloud.connect(username=user["username"], password=user["password"],
                                 project_name=user["project_name"])
        net, sub = env.private(conn, "10.40.0.0/24", name=f"t{i}")
        router = conn.network.create_router(name=f"r{i}",
                                            external_gateway_info={"network_id": ext.id})
        env.router_ids.append(router.id)
        conn.network.add_interface_to_router(router, subnet_id=sub.id)
        vm = env.instance(conn, net, sub, f"t{i}", ip="10.40.0.5")
        env.allow(conn, vm["port"], "tcp", SSH)
        fips.append(conn.network.create_ip(floating_network_id=ext.id,
                                           port_id=vm["port"].id).floating_ip_address)
    outside = TcpServer(env.outside, SSH, name="outside")
    env.lab.cleanups.append(outside.stop)
    env.sync()
    for i, address in enumerate(fips):
        assert tcp(env.outside, address, SSH) == f"ok {OUT_IP} t{i} hello"
        assert tcp(env.vms[i]["ns"], OUT_IP, SSH) == f"ok {address} outside hello"


def test_flat_networks_single_multiple_and_mixed_with_private(env):
    """Instances straight on shared flat provider networks (each on its own
    physical network, reached from that network's outside), and a tenant's
    private network routed to one of them."""
    flat1, sub1 = env.external("extnet", "198.51.100.0/24", "198.51.100.1", external=False,
                               shared=True)
    flat2, sub2 = env.external("flat2", "192.0.2.0/24", "192.0.2.1",
                               outside=env.outsides["flat2"], external=True, shared=True)
    user = env.cloud.make_user()
    tenant = env.cloud.connect(username=user["username"], password=user["password"],
                               project_name=user["project_name"])
    # a tenant chooses a shared flat network for each instance
    a = env.instance(tenant, flat1, sub1, "a")
    b = env.instance(tenant, flat2, sub2, "b")
    env.allow(tenant, a["port"], "tcp", SSH)
    # mixed: a private network of the tenant, routed to the flat2 network
    net, sub = env.private(tenant, "10.60.0.0/24")
    router = tenant.network.create_router(name="r", external_gateway_info={"network_id":
                                                                            flat2.id})
    env.router_ids.append(router.id)
    tenant.network.add_interface_to_router(router, subnet_id=sub.id)
    gw_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
    c = env.instance(tenant, net, sub, "c")
    servers = [TcpServer(env.outsides["extnet"], SSH, name="out1"),
               TcpServer(env.outsides["flat2"], SSH, name="out2")]
    env.lab.cleanups += [s.stop for s in servers]
    env.sync()
    # on the flat networks: the outside of each reaches its instance directly
    assert tcp(env.outsides["extnet"], a["ip"], SSH) == "ok 198.51.100.1 a hello"
    assert tcp(a["ns"], "198.51.100.1", SSH) == f"ok {a['ip']} out1 hello"
    assert tcp(b["ns"], "192.0.2.1", SSH) == f"ok {b['ip']} out2 hello"
    # the two flat networks are separate
    assert tcp(a["ns"], "192.0.2.1", SSH, timeout=1) is None
    # the group allows SSH from anywhere (the rule added for a), nothing else
    assert tcp(env.outsides["flat2"], b["ip"], SSH) == "ok 192.0.2.1 b hello"
    assert not ping(env.outsides["flat2"], b["ip"])
    # the private instance goes out through the router, SNAT'ed
    assert tcp(c["ns"], "192.0.2.1", SSH) == f"ok {gw_ip} out2 hello"
    # and reaches the flat instance b (same default group: allowed) through it
    assert tcp(c["ns"], b["ip"], SSH) == f"ok {gw_ip} b hello"
