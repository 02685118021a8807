"""Fixtures for the network data-plane e2e tests: every namespace, link and
process a test makes carries a unique prefix and is removed afterwards."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import require_binaries, require_root
from tests.e2e.network.nettools import netns_list, sh, unique  # noqa: F401


class Lab:
    """Namespaces and veths of one test."""

    def __init__(self):
        self.tag = unique()
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.cleanups: list = []

    def ns(self, name: str) -> str:
        ns = f"{self.tag}-{name}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        self.namespaces.append(ns)
        sh(ns, "ip", "link", "set", "lo", "up")
        return ns

    def bridge(self, ns: str | None, name: str) -> str:
        sh(ns, "ip", "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh(ns, "ip", "link", "set", name, "up")
        if ns is None:
            self.links.append(name)
        return name

    def instance(self, host_ns: str | None, bridge: str | None, name: str, mac: str,
                 cidrs: list[str], tap: str | None = None, gateway: str | None = None) -> dict:
        """A namespace standing for an instance: eth0 with ``mac`` and the
        addresses, its peer ``tap`` in ``host_ns`` on ``bridge``."""
        ns = self.ns(name)
        tap = tap or f"tap{self.tag}{name}"[:15]
        args = ["ip", "link", "add", tap]
        if host_ns:
            args += ["netns", host_ns]
        subprocess.run(args + ["type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        if host_ns is None:
            self.links.append(tap)
        sh(ns, "ip", "link", "set", "eth0", "address", mac)
        for cidr in cidrs:
            sh(ns, "ip", "addr", "add", cidr, "dev", "eth0", "nodad")
        sh(ns, "ip", "link", "set", "eth0", "up")
        if gateway:
            sh(ns, "ip", "route", "add", "default", "via", gateway)
        if bridge:
            sh(host_ns, "ip", "link", "set", tap, "master", bridge)
        sh(host_ns, "ip", "link", "set", tap, "up")
        return {"ns": ns, "tap": tap, "mac": mac, "ips": [c.split("/")[0] for c in cidrs]}

    def close(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001
                pass
        for link in self.links:
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    def leftovers(self) -> list[str]:
        found = [f"netns {n}" for n in netns_list() if n.startswith(self.tag)]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        found += [f"link {line}" for line in links.splitlines() if self.tag in line]
        return found


@pytest.fixture
def lab():
    require_root()
    require_binaries("ip", "iptables", "ip6tables", "ipset", "conntrack", "busybox")
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()
    assert lab.leftovers() == []


@pytest.fixture
def rootwrap_helper():
    from pocketstack import rootwrap

    helper = rootwrap.RootHelper()
    yield helper
    helper.close()


class DataPlane:
    """The agents of one host over a hand-built topology, with an "outside
    world" namespace on the external flat network's physical interface."""

    def __init__(self, lab: Lab, tmp_path, rootwrap_helper, backend_name: str):
        from pocketstack.network.agents.ip_lib import IpLib
        from pocketstack.network.agents.l2 import L2Agent
        from pocketstack.network.agents.l3 import L3Agent
        from tests.e2e.network.topology import HOST, Topology

        self.lab = lab
        self.topo = Topology()
        self.ip = IpLib(rootwrap_helper)
        self.physnet = "p9ext"
        self.phy = f"{lab.tag}-phy"
        self.outside = lab.ns("out")
        subprocess.run(["ip", "link", "add", self.phy, "type", "veth", "peer", "name", "eth0",
                        "netns", self.outside], check=True)
        lab.links.append(self.phy)
        sh(None, "ip", "link", "set", self.phy, "up")
        sh(self.outside, "ip", "link", "set", "eth0", "up")
        self.backend_name = backend_name
        self.ovs = None
        if backend_name == "linuxbridge":
            from pocketstack.network.agents.l2 import LinuxBridgeBackend

            self.backend = LinuxBridgeBackend(self.ip, {self.physnet: self.phy}, "127.0.0.1")
        else:
            from pocketstack.network.agents.ovs import OvsBackend, OvsDaemons

            self.ovs = OvsDaemons(rootwrap_helper, str(tmp_path / "ovs"))
            self.ovs.start()
            self.backend = OvsBackend(self.ovs, {self.physnet: self.phy}, "127.0.0.1",
                                      bridge_prefix=lab.tag[2:8])
        self.l2 = L2Agent(HOST, self.backend, str(tmp_path / "l2-owned.json"))
        self.l3 = L3Agent(HOST, str(tmp_path), self.ip, self.backend,
                          update_port=self.topo.update_port)
        self.instances: dict[str, dict] = {}
        self.ports_seen: list[dict] = []
        if self.ovs is not None:
            # a physical NIC hands over complete checksums; so must its stand-in
            sh(self.outside, "ethtool", "-K", "eth0", "tx", "off")

    def converge(self):
        snap = self.topo.snap
        self.ports_seen += [p for p in snap.ports.values() if p not in self.ports_seen]
        self.l2.converge(snap)
        self.l3.converge(snap, self.topo.routers, self.topo.floatingips)
        self.l2.converge(snap)

    def instance(self, port: dict, name: str, gateway: str | None = None) -> dict:
        """A namespace with the port's veth (host end ``tap<port>``), as the
        container driver makes it."""
        from pocketstack.network.agents.l2 import tap_name

        subnets = self.topo.snap.subnets
        subnet = subnets[port["fixed_ips"][0]["subnet_id"]]
        vm = self.lab.instance(None, None, name, port["mac_address"],
                               [f"{f['ip_address']}/{subnets[f['subnet_id']]['cidr'].split('/')[1]}"
                                for f in port["fixed_ips"]],
                               tap=tap_name(port["id"]),
                               gateway=gateway if gateway else subnet["gateway_ip"])
        self.instances[name] = vm
        return vm

    def host_objects(self) -> list[str]:
        """Host objects of this topology still present."""
        from pocketstack.network.agents.l2 import tap_name

        found = []
        links = set(self.ip.links())
        for net in self.topo.snap.networks.values():
            name = self.backend.switch_for(net)
            if name in links and not name.startswith("br-"):
                found.append(f"switch {name}")
        for port in self.ports_seen:
            tap = tap_name(port["id"])
            for name in (tap, "qbr" + tap[3:], "qvb" + tap[3:], "qvo" + tap[3:]):
                if name in links:
                    found.append(f"link {name}")
        for rid in self.topo.routers:
            if f"qrouter-{rid}" in netns_list():
                found.append(f"netns qrouter-{rid}")
        if self.ovs is not None:
            found += self.ovs.leftovers()
        return found

    def teardown(self):
        snap = self.topo.snap
        for vm in self.instances.values():  # as the compute driver deletes an instance
            subprocess.run(["ip", "link", "delete", vm["tap"]], capture_output=True)
            subprocess.run(["ip", "netns", "delete", vm["ns"]], capture_output=True)
        snap.ports.clear()
        snap.subnets.clear()
        snap.networks.clear()
        self.topo.routers.clear()
        self.topo.floatingips.clear()
        self.l3.converge(snap, {}, {})
        self.l2.converge(snap)

    def close(self):
        if self.ovs is not None:
            self.ovs.stop()


@pytest.fixture
def ovs_lock():
    """One user-space datapath per network namespace (its ``ovs-netdev`` tap):
    OVS tests on this host take turns."""
    import fcntl

    require_binaries("ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ovs-ofctl", "ethtool")
    with open("/run/pocketstack-e2e-ovs.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
        fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(params=["linuxbridge", "openvswitch"])
def dataplane(request, lab, tmp_path, rootwrap_helper):
    if request.param == "openvswitch":
        request.getfixturevalue("ovs_lock")
    dp = DataPlane(lab, tmp_path, rootwrap_helper, request.param)
    try:
        yield dp
        names_before_teardown = dp.host_objects
        dp.teardown()
        assert names_before_teardown() == []
    finally:
        try:
            dp.teardown()
        finally:
            dp.close()
