"""Security groups on the host: a namespace plays the host (bridge + iptables +
ipset + conntrack in it), namespaces on its bridge play instances."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from pocketstack.network.firewall import FirewallPort, IptablesFirewall
from tests.e2e.network.nettools import Session, TcpServer, ping, sh, tcp

SSH = 22


def rule(direction="ingress", ethertype="IPv4", protocol=None, lo=None, hi=None, prefix=None,
         group=None):
    return {"id": str(uuid.uuid4()), "direction": direction, "ethertype": ethertype,
            "protocol": protocol, "port_range_min": lo, "port_range_max": hi,
            "remote_ip_prefix": prefix, "remote_group_id": group}


def default_rules(group):
    """What a project's ``default`` group holds."""
    return [rule("egress"), rule("egress", "IPv6"), rule("ingress", group=group),
            rule("ingress", "IPv6", group=group)]


@pytest.fixture
def host(lab, rootwrap_helper):
    hns = lab.ns("host")
    br = lab.bridge(hns, "br0")
    fw = IptablesFirewall(rootwrap_helper, namespace=hns, prefix="t9")
    lab.cleanups.append(fw.remove_all)
    vms = {}
    for i, name in enumerate(("a", "b", "c")):
        vms[name] = lab.instance(hns, br, name, f"fa:16:3e:00:09:0{i + 1}",
                                 [f"10.9.0.{i + 3}/24", f"fd09::{i + 3}/64"], tap=f"tap{name}")
    servers = []
    for vm in vms.values():
        servers.append(TcpServer(vm["ns"], SSH, "::"))
    lab.cleanups.append(lambda: [s.stop() for s in servers])
    return {"ns": hns, "fw": fw, "vms": vms}


def fport(vm, groups, pairs=(), port_security=True, id_=None):
    return FirewallPort(id_ or vm["ns"], vm["tap"], vm["mac"], tuple(vm["ips"]), tuple(groups),
                        tuple(pairs), port_security)


def ruleset(host):
    return sh(host["ns"], "iptables-save", "-t", "filter") + sh(host["ns"], "ip6tables-save",
                                                                  "-t", "filter")


def test_ingress_denied_until_a_rule_allows(host):
    fw, vms = host["fw"], host["vms"]
    a, b = vms["a"], vms["b"]
    web, other = str(uuid.uuid4()), str(uuid.uuid4())
    rules = {web: [rule("egress"), rule("egress", "IPv6")], other: [rule("egress")]}
    # a and b in different groups: nothing comes in
    ports = [fport(a, [other]), fport(b, [web])]
    fw.converge(ports, rules)
    assert tcp(a["ns"], "10.9.0.4", SSH) is None
    assert not ping(a["ns"], "10.9.0.4")
    # egress is allowed by the rules, and replies come back (stateful)
    rules[other] = [rule("egress"), rule("egress", "IPv6"),
                    rule("ingress", protocol="tcp", lo=SSH, hi=SSH)]
    fw.converge(ports, rules)
    assert tcp(b["ns"], "10.9.0.3", SSH).startswith("ok 10.9.0.4")
    # SSH to b opens with a rule for port 22 only
    rules[web].append(rule(protocol="tcp", lo=SSH, hi=SSH, prefix="10.9.0.0/24"))
    fw.converge(ports, rules)
    assert tcp(a["ns"], "10.9.0.4", SSH).startswith("ok 10.9.0.3")
    assert tcp(a["ns"], "fd09::4", SSH) is None  # the rule is IPv4 only
    assert not ping(a["ns"], "10.9.0.4")
    # ICMP by rule (echo request only)
    rules[web].append(rule(protocol="icmp", lo=8))
    fw.converge(ports, rules)
    assert ping(a["ns"], "10.9.0.4")
    # IPv6 rule
    rules[web].append(rule(ethertype="IPv6", protocol="tcp", lo=SSH))
    fw.converge(ports, rules)
    assert tcp(a["ns"], "fd09::4", SSH).startswith("ok fd09::3")
    # converging again changes nothing
    stats = fw.converge(ports, rules)
    assert (stats.chains_written, stats.restores) == (0, 0)


def test_remote_group(host):
    fw, vms = host["fw"], host["vms"]
    a, b, c = vms["a"], vms["b"], vms["c"]
    default, lone = str(uuid.uuid4()), str(uuid.uuid4())
    rules = {default: default_rules(default), lone: [rule("egress")]}
    ports = [fport(a, [default]), fport(b, [default]), fport(c, [lone])]
    fw.converge(ports, rules)
    # same group in: a <-> b, over both families
    assert tcp(a["ns"], "10.9.0.4", SSH).startswith("ok")
    assert tcp(b["ns"], "fd09::3", SSH).startswith("ok")
    # c is not a member
    assert tcp(c["ns"], "10.9.0.4", SSH) is None
    # c joins the group: its addresses enter the set, nothing else changes
    ports[2] = fport(c, [default, lone])
    stats = fw.converge(ports, rules)
    assert stats.sets_changed == 2
    assert tcp(c["ns"], "10.9.0.4", SSH).startswith("ok")
    # and leaves it again
    ports[2] = fport(c, [lone])
    fw.converge(ports, rules)
    assert tcp(c["ns"], "10.9.0.4", SSH) is None


def test_anti_spoofing_and_allowed_address_pairs(host):
    fw, vms = host["fw"], host["vms"]
    a, b = vms["a"], vms["b"]
    sg = str(uuid.uuid4())
    rules = {sg: [rule("egress"), rule(protocol="tcp", lo=SSH), rule(protocol="icmp")]}
    sh(a["ns"], "ip", "addr", "add", "10.9.0.50/24", "dev", "eth0")
    ports = [fport(a, [sg]), fport(b, [sg])]
    fw.converge(ports, rules)
    assert tcp(a["ns"], "10.9.0.4", SSH).startswith("ok 10.9.0.3")
    # a source address that is not the port's is dropped
    assert tcp(a["ns"], "10.9.0.4", SSH, src="10.9.0.50") is None
    assert not ping(a["ns"], "10.9.0.4", src="10.9.0.50")
    # ... unless it is an allowed address pair
    ports[0] = fport(a, [sg], pairs=[("10.9.0.50/32", a["mac"])])
    fw.converge(ports, rules)
    assert tcp(a["ns"], "10.9.0.4", SSH, src="10.9.0.50").startswith("ok 10.9.0.50")
    # ARP: the port may announce its own addresses (and its pairs), no others
    arp = ["arping", "-c", "1", "-w", "2", "-i", "eth0"]
    assert subprocess.run(["ip", "netns", "exec", a["ns"], *arp, "-S", "10.9.0.3",
                           "10.9.0.4"], capture_output=True).returncode == 0
    assert subprocess.run(["ip", "netns", "exec", a["ns"], *arp, "-S", "10.9.0.51",
                           "10.9.0.4"], capture_output=True).returncode != 0
    assert "t9-a" in sh(host["ns"], "ebtables-save")
    # a MAC that is not the port's is dropped, even with the port's IP
    sh(a["ns"], "ip", "link", "set", "eth0", "address", "fa:16:3e:00:09:99")
    sh(b["ns"], "ip", "neigh", "flush", "all")
    assert tcp(a["ns"], "10.9.0.4", SSH) is None


def test_port_security_disabled(host):
    fw, vms = host["fw"], host["vms"]
    a, b = vms["a"], vms["b"]
    sg = str(uuid.uuid4())
    rules = {sg: []}
    sh(a["ns"], "ip", "addr", "add", "10.9.0.60/24", "dev", "eth0")
    ports = [fport(a, [sg]), fport(b, [sg])]
    fw.converge(ports, rules)
    assert tcp(a["ns"], "10.9.0.4", SSH) is None
    ports = [fport(a, [], port_security=False), fport(b, [], port_security=False)]
    fw.converge(ports, rules)
    assert tcp(a["ns"], "10.9.0.4", SSH, src="10.9.0.60").startswith("ok 10.9.0.60")
    assert ping(a["ns"], "10.9.0.4")
    assert ":t9-i" not in ruleset(host)


def test_rule_changes_keep_allowed_connections_and_cut_the_others(host):
    fw, vms = host["fw"], host["vms"]
    a, b = vms["a"], vms["b"]
    sg = str(uuid.uuid4())
    ssh_rule = rule(protocol="tcp", lo=SSH)
    rules = {sg: [rule("egress"), ssh_rule]}
    ports = [fport(a, [sg]), fport(b, [sg])]
    fw.converge(ports, rules)
    session = Session(a["ns"], "10.9.0.4", SSH)
    try:
        assert session.exchange("one").startswith("ok")
        # unrelated changes rewrite b's chains; the connection carries on
        rules[sg].append(rule(protocol="icmp"))
        stats = fw.converge(ports, rules)
        assert stats.chains_written >= 2
        assert session.exchange("two").startswith("ok")
        rules[sg].append(rule(protocol="tcp", lo=SSH, prefix="10.9.0.3/32"))
        rules[sg].remove(ssh_rule)  # still allowed by the narrower rule
        fw.converge(ports, rules)
        assert session.exchange("three").startswith("ok")
        # no rule allows it any more: the connection is cut at once
        rules[sg] = [rule("egress")]
        stats = fw.converge(ports, rules)
        assert stats.conntrack_deleted >= 1
        assert not session.exchange("four").startswith("ok")
        assert tcp(a["ns"], "10.9.0.4", SSH) is None
    finally:
        session.close()


def test_stale_chains_and_sets_are_removed(host):
    fw, vms = host["fw"], host["vms"]
    default = str(uuid.uuid4())
    rules = {default: default_rules(default)}
    ports = [fport(vm, [default]) for vm in vms.values()]
    fw.converge(ports, rules)
    saved = ruleset(host)
    assert saved.count(":t9-i") == 6  # three ports, two families
    assert "t94-" in sh(host["ns"], "ipset", "list", "-n")
    fw.converge(ports[:1], rules)
    saved = ruleset(host)
    assert saved.count(":t9-i") == 2
    fw.remove_all()
    saved = ruleset(host)
    assert "t9-" not in saved
    assert "t9-" not in sh(host["ns"], "ebtables-save")
    assert sh(host["ns"], "ipset", "list", "-n").strip() == ""
