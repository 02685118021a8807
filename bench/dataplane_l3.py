"""Data-plane benchmark for routers, floating IPs, security groups and both L2 back ends.

    python3 bench/dataplane_l3.py [--seconds 3] [--ports 200] [--plug 100]

Needs root, iperf3, busybox, ethtool, Open vSwitch. Prints:

- TCP throughput (iperf3) and ping RTT instance -> outside through SNAT and
  outside -> instance through a floating IP, with each L2 back end, and the
  same between two bare namespaces on a veth pair (ratio to it);
- time for a security-group rule change to take effect with N ports on the
  host (one rule in the group all ports share; one rule in a group of one
  port), and the first convergence of those ports;
- time to plug 100 ports with each back end.

Everything runs in namespaces and links named ``pb<hex>...`` and is removed
at the end.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pocketstack import rootwrap  # noqa: E402
from pocketstack.network.firewall import FirewallPort, IptablesFirewall  # noqa: E402
from tests.e2e.network.conftest import DataPlane, Lab  # noqa: E402
from tests.e2e.network.nettools import sh  # noqa: E402

OUT_IP = "203.0.113.1"


def iperf(client_ns: str, server_ns: str, address: str, seconds: int) -> float:
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            probe = subprocess.run(["ip", "netns", "exec", server_ns, "ss", "-ltn"],
                                   capture_output=True, text=True).stdout
            if ":5201" in probe:
                break
            time.sleep(0.05)
        out = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", address, "-t",
                              str(seconds), "-J"], capture_output=True, text=True,
                             timeout=seconds + 30).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.kill()
        server.wait()


def rtt(ns: str, address: str, count: int = 50) -> float:
    out = subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c", str(count), "-i",
                          "0.02", "-q", address], capture_output=True, text=True).stdout
    line = [x for x in out.splitlines() if "min/avg/max" in x][0]
    return float(line.split("=")[1].split("/")[1])


def bare(lab: Lab, seconds: int) -> tuple[float, float]:
    a, b = lab.ns("bare-a"), lab.ns("bare-b")
    subprocess.run(["ip", "link", "add", "eth0", "netns", a, "type", "veth", "peer", "name",
                    "eth0", "netns", b], check=True)
    for ns, ip in ((a, "10.99.9.1/24"), (b, "10.99.9.2/24")):
        sh(ns, "ip", "addr", "add", ip, "dev", "eth0")
        sh(ns, "ip", "link", "set", "eth0", "up")
    return iperf(a, b, "10.99.9.2", seconds), rtt(a, "10.99.9.2")


def routed(helper, backend: str, seconds: int) -> dict:
    lab = Lab()
    lab.tag = "pb" + uuid.uuid4().hex[:6]
    dp = DataPlane(lab, pathlib.Path(tempfile.mkdtemp(prefix="pb-")), helper, backend)
    try:
        sh(dp.outside, "ethtool", "-K", "eth0", "tx", "off")
        topo = dp.topo
        ext = topo.network("flat", dp.physnet, external=True)
        ext_sub = topo.subnet(ext, "203.0.113.0/24", gateway=OUT_IP)
        sh(dp.outside, "ip", "addr", "add", f"{OUT_IP}/24", "dev", "eth0")
        router = topo.router(ext_sub, "203.0.113.10")
        net = topo.network("local")
        sub = topo.subnet(net, "10.70.0.0/24")
        topo.add_interface(router, sub)
        p1, p2 = topo.port(sub, "10.70.0.5"), topo.port(sub, "10.70.0.6")
        topo.floatingip(router, "203.0.113.20", p2)
        dp.converge()
        vm1, vm2 = dp.instance(p1, f"{backend[:2]}1"), dp.instance(p2, f"{backend[:2]}2")
        dp.converge()
        return {"snat_gbps": iperf(vm1["ns"], dp.outside, OUT_IP, seconds),
                "snat_rtt_ms": rtt(vm1["ns"], OUT_IP),
                "fip_gbps": iperf(dp.outside, vm2["ns"], "203.0.113.20", seconds),
                "fip_rtt_ms": rtt(dp.outside, "203.0.113.20")}
    finally:
        try:
            dp.teardown()
        finally:
            dp.close()
            lab.close()


def sg_change(lab: Lab, helper, n: int) -> dict:
    host = lab.ns("sghost")
    fw = IptablesFirewall(helper, namespace=host, prefix="pb")
    shared, single = str(uuid.uuid4()), str(uuid.uuid4())
    rules = {shared: [{"direction": "egress", "ethertype": "IPv4"},
                      {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": shared}],
             single: []}
    ports = [FirewallPort(str(uuid.uuid4()), f"tap{i:011d}", f"fa:16:3e:00:{i >> 8:02x}:"
                          f"{i & 0xFF:02x}", (f"10.{i >> 8}.{i & 0xFF}.5",),
                          (shared, single) if i == 0 else (shared,)) for i in range(n)]
    try:
        t = time.perf_counter()
        fw.converge(ports, rules)
        first = time.perf_counter() - t
        samples_shared, samples_single = [], []
        for k in range(5):
            rules[shared].append({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                                  "port_range_min": 1000 + k, "port_range_max": 1000 + k})
            t = time.perf_counter()
            fw.converge(ports, rules)
            samples_shared.append(time.perf_counter() - t)
            rules[single].append({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                                  "port_range_min": 2000 + k, "port_range_max": 2000 + k})
            t = time.perf_counter()
            stats = fw.converge(ports, rules)
            samples_single.append(time.perf_counter() - t)
            assert stats.chains_written == 1
        return {"ports": n, "first_converge_s": first,
                "rule_in_shared_group_s": statistics.median(samples_shared),
                "rule_in_one_ports_group_s": statistics.median(samples_single)}
    finally:
        fw.remove_all()


def plug(lab: Lab, helper, backend: str, n: int) -> float:
    from pocketstack.network.agents.ip_lib import IpLib
    from pocketstack.network.agents.l2 import LinuxBridgeBackend

    ip = IpLib(helper)
    net = {"id": str(uuid.uuid4()), "provider:network_type": "local", "mtu": 1500}
    ovs = None
    if backend == "linuxbridge":
        be = LinuxBridgeBackend(ip, {}, "127.0.0.1")
    else:
        from pocketstack.network.agents.ovs import OvsBackend, OvsDaemons

        ovs = OvsDaemons(helper, tempfile.mkdtemp(prefix="pb-ovs-"))
        ovs.start()
        be = OvsBackend(ovs, {}, "127.0.0.1", bridge_prefix=lab.tag[2:8])
    taps = [f"tp{lab.tag[2:6]}{i:04d}x" for i in range(n)]
    try:
        be.ensure_network(net, [])
        for tap in taps:
            subprocess.run(["ip", "link", "add", tap, "type", "veth", "peer", "name",
                            tap[:-1] + "y"], check=True)
        t = time.perf_counter()
        for tap in taps:
            be.plug(net, tap)
        took = time.perf_counter() - t
        return took
    finally:
        for tap in taps:
            subprocess.run(["ip", "link", "delete", tap], capture_output=True)
        be.remove_network(be.switch_for(net))
        if ovs is not None:
            ovs.stop()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--ports", type=int, default=200)
    p.add_argument("--plug", type=int, default=100)
    args = p.parse_args()
    helper = rootwrap.RootHelper()
    lock = open("/run/pocketstack-e2e-ovs.lock", "w")  # one user-space datapath at a time
    fcntl.flock(lock, fcntl.LOCK_EX)
    lab = Lab()
    lab.tag = "pb" + uuid.uuid4().hex[:6]
    try:
        base_gbps, base_rtt = bare(lab, args.seconds)
        print(f"bare veth pair: {base_gbps:.2f} Gbit/s, RTT {base_rtt:.3f} ms")
        for backend in ("linuxbridge", "openvswitch"):
            r = routed(helper, backend, args.seconds)
            print(f"{backend:12s} SNAT  instance->outside: {r['snat_gbps']:.2f} Gbit/s "
                  f"({r['snat_gbps'] / base_gbps:.2f} of bare), RTT {r['snat_rtt_ms']:.3f} ms "
                  f"({r['snat_rtt_ms'] / base_rtt:.1f}x)")
            print(f"{backend:12s} FIP   outside->instance: {r['fip_gbps']:.2f} Gbit/s "
                  f"({r['fip_gbps'] / base_gbps:.2f} of bare), RTT {r['fip_rtt_ms']:.3f} ms "
                  f"({r['fip_rtt_ms'] / base_rtt:.1f}x)")
        s = sg_change(lab, helper, args.ports)
        print(f"security groups, {s['ports']} ports: first convergence "
              f"{s['first_converge_s'] * 1000:.0f} ms; a rule added to the group all ports "
              f"share takes effect in {s['rule_in_shared_group_s'] * 1000:.0f} ms; to one "
              f"port's group in {s['rule_in_one_ports_group_s'] * 1000:.0f} ms (goal: < 1 s)")
        for backend in ("linuxbridge", "openvswitch"):
            took = plug(lab, helper, backend, args.plug)
            print(f"{backend:12s} plug {args.plug} ports: {took:.2f} s "
                  f"({took / args.plug * 1000:.1f} ms a port)")
    finally:
        lab.close()
        helper.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
