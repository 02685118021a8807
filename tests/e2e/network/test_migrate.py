"""Moving a running host between the L2 back ends: instances keep their
namespaces (and an open TCP connection), only the host side is re-plugged."""

from __future__ import annotations

import os

from pocketstack.network.agents.l2 import L2Agent, LinuxBridgeBackend
from pocketstack.network.drivers.migrate import migrate_host
from tests.e2e.network.conftest import DataPlane
from tests.e2e.network.nettools import Session, TcpServer, sh, tcp
from tests.e2e.network.topology import HOST

OUT_IP = "203.0.113.1"
PORT = 8022


def test_linuxbridge_to_openvswitch_and_back(lab, tmp_path, rootwrap_helper, ovs_lock):
    from pocketstack.network.agents.ovs import OvsBackend, OvsDaemons

    dp = DataPlane(lab, tmp_path, rootwrap_helper, "linuxbridge")
    sh(dp.outside, "ethtool", "-K", "eth0", "tx", "off")
    ovs = OvsDaemons(rootwrap_helper, str(tmp_path / "ovs"))
    ovs.start()
    lb_backend, lb_l2 = dp.backend, dp.l2
    ovs_backend = OvsBackend(ovs, {dp.physnet: dp.phy}, "127.0.0.1",
                             bridge_prefix=lab.tag[2:8])
    ovs_l2 = L2Agent(HOST, ovs_backend, str(tmp_path / "ovs-owned.json"))

    def use(backend, l2):
        dp.backend, dp.l2, dp.l3.backend = backend, l2, backend
        dp.ovs = ovs if backend is ovs_backend else None

    try:
        topo = dp.topo
        ext = topo.network("flat", dp.physnet, external=True)
        ext_sub = topo.subnet(ext, "203.0.113.0/24", gateway=OUT_IP)
        sh(dp.outside, "ip", "addr", "add", f"{OUT_IP}/24", "dev", "eth0")
        router = topo.router(ext_sub, "203.0.113.10")
        net = topo.network("local")
        sub = topo.subnet(net, "10.50.0.0/24")
        topo.add_interface(router, sub)
        p1, p2 = topo.port(sub, "10.50.0.5"), topo.port(sub, "10.50.0.6")
        topo.floatingip(router, "203.0.113.20", p1)
        dp.converge()
        vm1, vm2 = dp.instance(p1, "vm1"), dp.instance(p2, "vm2")
        dp.converge()
        servers = [TcpServer(dp.outside, PORT, name="outside"),
                   TcpServer(vm1["ns"], PORT, name="vm1"), TcpServer(vm2["ns"], PORT, name="vm2")]
        lab.cleanups += [s.stop for s in servers]

        def check():
            assert tcp(dp.outside, "203.0.113.20", PORT) == f"ok {OUT_IP} vm1 hello"
            assert tcp(vm2["ns"], OUT_IP, PORT) == "ok 203.0.113.10 outside hello"
            assert tcp(vm1["ns"], "10.50.0.6", PORT) == "ok 10.50.0.5 vm2 hello"

        check()
        session = Session(dp.outside, "203.0.113.20", PORT)
        lab.cleanups.append(session.close)
        assert session.exchange("before").startswith("ok")
        # Linux bridge -> Open vSwitch
        moved = migrate_host(topo.snap, lb_l2, ovs_l2)
        assert moved == {"networks": 2, "devices": 4}  # two instances, two router ports
        use(ovs_backend, ovs_l2)
        dp.converge()
        assert not [d for d in os.listdir("/sys/class/net")
                    if d == lb_backend.switch_for(net) or d == lb_backend.switch_for(ext)]
        ports = ovs.vsctl("list-ports", ovs_backend.br_int).split()
        assert sum(p.startswith("qvo") for p in ports) == 4
        check()
        assert session.exchange("after").startswith("ok")  # the open connection carried on
        # and back
        moved = migrate_host(topo.snap, ovs_l2, lb_l2)
        use(lb_backend, lb_l2)
        dp.converge()
        assert ovs.bridges() == []  # nothing of Open vSwitch is left
        assert not [d for d in os.listdir("/sys/class/net") if d.startswith("qbr")
                    and any(d[3:] in p for p in topo.snap.ports)]
        check()
        assert session.exchange("back").startswith("ok")
        dp.teardown()
        assert dp.host_objects() == []
        assert ovs.bridges() == []
    finally:
        try:
            dp.teardown()
        finally:
            ovs.stop()


def test_linuxbridge_backend_is_unchanged_by_an_empty_migration(lab, tmp_path,
                                                                  rootwrap_helper):
    """Nothing bound here: nothing moves, ownership records are reset."""
    from pocketstack.network.agents.ip_lib import IpLib
    from pocketstack.network.agents.state import Snapshot

    ip = IpLib(rootwrap_helper)
    a = L2Agent(HOST, LinuxBridgeBackend(ip, {}, "127.0.0.1"), str(tmp_path / "a.json"))
    b = L2Agent(HOST, LinuxBridgeBackend(ip, {}, "127.0.0.1"), str(tmp_path / "b.json"))
    assert migrate_host(Snapshot(), a, b) == {"networks": 0, "devices": 0}
    assert a._owned() == set() and b._owned() == set()  # noqa: SLF001
