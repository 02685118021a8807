"""Routers, SNAT and floating IPs on the wire, with each L2 back end: the
agents driven over a hand-built topology; an "outside world" namespace sits
on the external flat network's physical interface."""

from __future__ import annotations

from tests.e2e.network.nettools import TcpServer, ping, sh, tcp

OUT_IP = "203.0.113.1"
PORT = 8022


def build(dp, private_cidrs=("10.10.0.0/24",)):
    topo = dp.topo
    ext = topo.network("flat", dp.physnet, external=True)
    ext_sub = topo.subnet(ext, "203.0.113.0/24", gateway=OUT_IP)
    sh(dp.outside, "ip", "addr", "add", f"{OUT_IP}/24", "dev", "eth0")
    router = topo.router(ext_sub, "203.0.113.10")
    subnets = []
    for cidr in private_cidrs:
        net = topo.network("local")
        sub = topo.subnet(net, cidr)
        topo.add_interface(router, sub)
        subnets.append(sub)
    return ext_sub, router, subnets


def test_snat_floating_ips_and_reassociation(dataplane):
    dp, topo = dataplane, dataplane.topo
    ext_sub, router, (sub,) = build(dp)
    p1 = topo.port(sub, "10.10.0.5")
    p2 = topo.port(sub, "10.10.0.6")
    dp.converge()
    vm1, vm2 = dp.instance(p1, "vm1"), dp.instance(p2, "vm2")
    dp.converge()
    outside = TcpServer(dp.outside, PORT, name="outside")
    s1, s2 = TcpServer(vm1["ns"], PORT, name="vm1"), TcpServer(vm2["ns"], PORT, name="vm2")
    dp.lab.cleanups += [outside.stop, s1.stop, s2.stop]
    # east-west through the router's interface, and the gateway address
    assert ping(vm1["ns"], "10.10.0.1")
    assert tcp(vm1["ns"], "10.10.0.6", PORT) == "ok 10.10.0.5 vm2 hello"
    # instance -> outside: SNAT to the router's gateway address
    assert tcp(vm1["ns"], OUT_IP, PORT) == "ok 203.0.113.10 outside hello"
    # the outside world has no way in but floating IPs
    assert tcp(dp.outside, "10.10.0.5", PORT, timeout=1) is None
    assert tcp(dp.outside, "203.0.113.10", PORT, timeout=1) is None
    # a floating IP: 1:1 both ways
    fip = topo.floatingip(router, "203.0.113.20", p1)
    dp.converge()
    assert tcp(dp.outside, "203.0.113.20", PORT) == f"ok {OUT_IP} vm1 hello"
    assert tcp(vm1["ns"], OUT_IP, PORT) == "ok 203.0.113.20 outside hello"
    assert tcp(vm2["ns"], OUT_IP, PORT) == "ok 203.0.113.10 outside hello"
    assert ping(dp.outside, "203.0.113.20")
    # from the other instance, through the floating IP (hairpin)
    assert tcp(vm2["ns"], "203.0.113.20", PORT) == "ok 203.0.113.20 vm1 hello"
    # re-associate: the traffic moves at once
    topo.associate(fip, router, p2)
    dp.converge()
    assert tcp(dp.outside, "203.0.113.20", PORT) == f"ok {OUT_IP} vm2 hello"
    assert tcp(vm2["ns"], OUT_IP, PORT) == "ok 203.0.113.20 outside hello"
    assert tcp(vm1["ns"], OUT_IP, PORT) == "ok 203.0.113.10 outside hello"
    # disassociate: gone, and no rule or address of it is left
    topo.associate(fip, None, None)
    dp.converge()
    assert tcp(dp.outside, "203.0.113.20", PORT, timeout=1) is None
    ns = f"qrouter-{router['id']}"
    assert "203.0.113.20" not in sh(ns, "iptables-save", "-t", "nat")
    assert "203.0.113.20" not in sh(ns, "ip", "addr")
    assert tcp(vm2["ns"], OUT_IP, PORT) == "ok 203.0.113.10 outside hello"


def test_snat_disabled_extra_routes_and_interfaces(dataplane):
    dp, topo = dataplane, dataplane.topo
    ext_sub, router, (sub_a, sub_b) = build(dp, ("10.11.0.0/24", "10.12.0.0/24"))
    pa, pb = topo.port(sub_a, "10.11.0.5"), topo.port(sub_b, "10.12.0.5")
    dp.converge()
    a, b = dp.instance(pa, "a"), dp.instance(pb, "b")
    dp.converge()
    srv_out = TcpServer(dp.outside, PORT, name="outside")
    srv_b = TcpServer(b["ns"], PORT, name="b")
    dp.lab.cleanups += [srv_out.stop, srv_b.stop]
    # routed between the router's subnets without NAT
    assert tcp(a["ns"], "10.12.0.5", PORT) == "ok 10.11.0.5 b hello"
    # enable_snat off: the outside sees the private address (and has no route back)
    router["external_gateway_info"]["enable_snat"] = False
    sh(dp.outside, "ip", "route", "add", "10.11.0.0/24", "via", "203.0.113.10")
    dp.converge()
    assert tcp(a["ns"], OUT_IP, PORT) == "ok 10.11.0.5 outside hello"
    router["external_gateway_info"]["enable_snat"] = True
    dp.converge()
    assert tcp(a["ns"], OUT_IP, PORT) == "ok 203.0.113.10 outside hello"
    # extra routes, added and removed
    router["routes"] = [{"destination": "198.51.100.0/24", "nexthop": OUT_IP}]
    dp.converge()
    ns = f"qrouter-{router['id']}"
    assert "198.51.100.0/24 via 203.0.113.1" in sh(ns, "ip", "route")
    router["routes"] = []
    dp.converge()
    assert "198.51.100.0/24" not in sh(ns, "ip", "route")
    # an interface removed: its subnet is no longer routed
    iface = next(p for p in topo.snap.ports.values()
                 if p["device_owner"] == "network:router_interface"
                 and p["network_id"] == sub_b["network_id"])
    topo.remove_port(iface)
    dp.converge()
    assert tcp(a["ns"], "10.12.0.5", PORT, timeout=1) is None
    assert not any(d.startswith("qr-" + iface["id"][:11])
                   for d in sh(ns, "ip", "-o", "link").split())


def test_per_tenant_routers_with_overlapping_cidrs(dataplane):
    dp, topo = dataplane, dataplane.topo
    ext = topo.network("flat", dp.physnet, external=True)
    ext_sub = topo.subnet(ext, "203.0.113.0/24", gateway=OUT_IP)
    sh(dp.outside, "ip", "addr", "add", f"{OUT_IP}/24", "dev", "eth0")
    vms = []
    for i, gw_ip in enumerate(("203.0.113.11", "203.0.113.12")):
        router = topo.router(ext_sub, gw_ip)
        net = topo.network("local")
        sub = topo.subnet(net, "10.20.0.0/24")  # the same CIDR for both tenants
        topo.add_interface(router, sub)
        port = topo.port(sub, "10.20.0.5")
        topo.floatingip(router, f"203.0.113.{30 + i}", port)
        vms.append(port)
    dp.converge()
    v0, v1 = dp.instance(vms[0], "t0"), dp.instance(vms[1], "t1")
    dp.converge()
    servers = [TcpServer(dp.outside, PORT, name="outside"),
               TcpServer(v0["ns"], PORT, name="t0"), TcpServer(v1["ns"], PORT, name="t1")]
    dp.lab.cleanups += [s.stop for s in servers]
    assert tcp(dp.outside, "203.0.113.30", PORT) == f"ok {OUT_IP} t0 hello"
    assert tcp(dp.outside, "203.0.113.31", PORT) == f"ok {OUT_IP} t1 hello"
    assert tcp(v0["ns"], OUT_IP, PORT) == "ok 203.0.113.30 outside hello"
    assert tcp(v1["ns"], OUT_IP, PORT) == "ok 203.0.113.31 outside hello"


def test_metadata_through_the_router(dataplane, tmp_path):
    """An instance behind a router (no DHCP namespace on its network) reads its
    metadata at 169.254.169.254: proxy in the router namespace -> metadata
    agent (instance found by source IP among the router's networks, id signed)
    -> compute's metadata service (a stand-in echoing what it was told)."""
    import http.server
    import json
    import threading

    from pocketstack.network.agents.l3 import RouterMetadataProxy
    from pocketstack.network.agents.metadata import MetadataAgent, sign
    from pocketstack.network.agents.state import DesiredState

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps({"path": self.path, "instance": self.headers["X-Instance-ID"],
                               "signature": self.headers["X-Instance-ID-Signature"]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    dp, topo = dataplane, dataplane.topo
    ext_sub, router, (sub,) = build(dp)
    vm_port = topo.port(sub, "10.10.0.7", device_id="6d1c8e0e-0000-4000-8000-00000000beef")
    state = DesiredState()
    agent = MetadataAgent(state, str(tmp_path / "md" / "metadata.sock"),
                          f"http://127.0.0.1:{service.server_port}", "s3cret")
    agent.start()
    proxy = RouterMetadataProxy(dp.l3.rw, str(tmp_path / "l3md"), agent.socket_path)
    dp.l3.metadata_proxy = proxy
    try:
        dp.converge()
        snap = topo.snap
        state.replace(list(snap.networks.values()), list(snap.subnets.values()),
                      list(snap.ports.values()))
        vm = dp.instance(vm_port, "md")
        dp.converge()
        fetch = ("import urllib.request;print(urllib.request.urlopen("
                 "'http://169.254.169.254/openstack/latest/meta_data.json', timeout=5)"
                 ".read().decode())")
        out = json.loads(sh(vm["ns"], "python3", "-c", fetch))
        assert out == {"path": "/openstack/latest/meta_data.json",
                       "instance": vm_port["device_id"],
                       "signature": sign("s3cret", vm_port["device_id"])}
        # the router goes: its proxy stops with it
        pid = proxy.pid(router["id"])
        assert pid is not None
        topo.routers.clear()
        dp.converge()
        assert proxy.pid(router["id"]) is None
    finally:
        dp.l3.converge(topo.snap, {}, {})
        agent.stop()
        service.shutdown()


def test_ipv6_forwarding(dataplane):
    """IPv6 subnets on both sides: routed (no NAT for IPv6), default route
    through the external IPv6 gateway."""
    dp, topo = dataplane, dataplane.topo
    ext_sub, router, (sub,) = build(dp)
    ext6 = topo.subnet(topo.snap.networks[ext_sub["network_id"]], "2001:db8:9::/64",
                       gateway="2001:db8:9::1")
    sub6 = topo.subnet(topo.snap.networks[sub["network_id"]], "fd00:9::/64")
    for port in topo.snap.ports.values():
        if port["device_owner"] == "network:router_gateway":
            port["fixed_ips"].append({"subnet_id": ext6["id"], "ip_address": "2001:db8:9::10"})
        elif port["device_owner"] == "network:router_interface":
            port["fixed_ips"].append({"subnet_id": sub6["id"], "ip_address": "fd00:9::1"})
    vm_port = topo.port(sub, "10.10.0.8")
    vm_port["fixed_ips"].append({"subnet_id": sub6["id"], "ip_address": "fd00:9::8"})
    sh(dp.outside, "ip", "addr", "add", "2001:db8:9::1/64", "dev", "eth0", "nodad")
    sh(dp.outside, "ip", "route", "add", "fd00:9::/64", "via", "2001:db8:9::10")
    dp.converge()
    vm = dp.instance(vm_port, "v6")
    sh(vm["ns"], "ip", "-6", "route", "add", "default", "via", "fd00:9::1")
    dp.converge()
    server = TcpServer(dp.outside, PORT, bind="::", name="outside")
    dp.lab.cleanups.append(server.stop)
    ns = f"qrouter-{router['id']}"
    assert sh(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding").strip() == "1"
    assert "default via 2001:db8:9::1" in sh(ns, "ip", "-6", "route")
    # (neighbour discovery on first contact: a longer connect timeout)
    assert tcp(vm["ns"], "2001:db8:9::1", PORT, timeout=8) == "ok fd00:9::8 outside hello"
    # IPv4 still goes out SNAT'ed
    assert tcp(vm["ns"], OUT_IP, PORT) == "ok 203.0.113.10 outside hello"
