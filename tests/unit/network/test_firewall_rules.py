"""Security-group rules to iptables arguments, and the state → ports mapping."""

from __future__ import annotations

from pocketstack.network.firewall.iptables import (
    FirewallPort,
    IptablesFirewall,
    _link_local,
    _parse_conntrack,
    ports_from_state,
)

SG = "5e1b2c3d-0000-4000-8000-000000000001"


def fw():
    return IptablesFirewall(rootwrap=None, prefix="u9")


def args(rule, version=4, direction="ingress", members=None):
    base = {"ethertype": "IPv4", "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None}
    base.update(rule)
    return fw()._rule_args(base, version, direction, members or {})


def test_rule_translation():
    assert args({}) == []
    assert args({}, version=6) is None
    assert args({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}) == [
        "-p", "tcp", "-m", "multiport", "--dports", "22"]
    assert args({"protocol": "17", "port_range_min": 1000, "port_range_max": 2000,
                 "remote_ip_prefix": "10.0.0.0/8"}) == [
        "-s", "10.0.0.0/8", "-p", "udp", "-m", "multiport", "--dports", "1000:2000"]
    assert args({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0},
                direction="egress") == ["-p", "icmp", "-m", "icmp", "--icmp-type", "8/0"]
    assert args({"ethertype": "IPv6", "protocol": "icmp"}, version=6) == ["-p", "ipv6-icmp"]
    assert args({"protocol": "gre"}) == ["-p", "47"]
    # remote group: the group's set, or nothing at all when the group is empty
    assert args({"remote_group_id": SG}) is None
    assert args({"remote_group_id": SG}, members={SG: ["10.0.0.5"]}) == [
        "-m", "set", "--match-set", "u94-5e1b2c3d000040008000", "src"]
    assert args({"remote_group_id": SG}, direction="egress", members={SG: ["10.0.0.5"]})[-1] \
        == "dst"


def test_port_chains_and_spoofing():
    port = FirewallPort("p1", "tap1", "fa:16:3e:aa:bb:cc", ("10.0.0.5", "fd00::5"), (SG,),
                        (("10.0.0.0/28", "fa:16:3e:aa:bb:cc"),))
    rules = {SG: [{"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                   "port_range_min": 22, "port_range_max": 22}]}
    v4 = fw().desired([port], rules, {}, 4)
    assert v4["u9-sp1"] == [
        ["-s", "10.0.0.5/32", "-m", "mac", "--mac-source", "fa:16:3e:aa:bb:cc", "-j", "RETURN"],
        ["-s", "10.0.0.0/28", "-m", "mac", "--mac-source", "fa:16:3e:aa:bb:cc", "-j", "RETURN"],
        ["-j", "DROP"]]
    assert v4["u9-ip1"][-2] == ["-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "RETURN"]
    assert v4["u9-ip1"][-1] == ["-j", "DROP"]
    v6 = fw().desired([port], rules, {}, 6)
    assert ["-s", "fe80::f816:3eff:feaa:bbcc/128", "-m", "mac", "--mac-source",
            "fa:16:3e:aa:bb:cc", "-j", "RETURN"] in v6["u9-sp1"]
    off = FirewallPort("p2", "tap2", "fa:16:3e:aa:bb:cd", port_security_enabled=False)
    chains = fw().desired([off], rules, {}, 4)
    assert set(chains) == {"u9-FWD", "u9-INP"}
    assert all(r[-1] == "ACCEPT" for r in chains["u9-FWD"])


def test_ports_from_state():
    ports = [
        {"id": "a", "mac_address": "FA:16:3E:00:00:01", "binding:host_id": "h1",
         "device_owner": "compute:nova", "fixed_ips": [{"ip_address": "10.0.0.3"}],
         "security_groups": [SG], "allowed_address_pairs": [{"ip_address": "10.0.0.99"}]},
        {"id": "b", "mac_address": "fa:16:3e:00:00:02", "binding:host_id": "h2",
         "device_owner": "compute:nova", "fixed_ips": [{"ip_address": "10.0.0.4"}],
         "security_groups": [SG]},
        {"id": "r", "mac_address": "fa:16:3e:00:00:03", "binding:host_id": "h1",
         "device_owner": "network:router_interface", "fixed_ips": [{"ip_address": "10.0.0.1"}],
         "security_groups": []},
    ]
    here, rules, members = ports_from_state(ports, [{"id": SG, "security_group_rules": []}],
                                            "h1", lambda pid: "tap" + pid)
    assert [p.id for p in here] == ["a"]
    assert here[0].allowed_address_pairs == (("10.0.0.99", "fa:16:3e:00:00:01"),)
    assert members == {SG: ["10.0.0.3", "10.0.0.4", "10.0.0.99"]}
    assert rules == {SG: []}


def test_helpers():
    assert _link_local("fa:16:3e:aa:bb:cc") == "fe80::f816:3eff:feaa:bbcc"
    entry = _parse_conntrack("tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=4000 "
                             "dport=22 src=10.0.0.2 dst=10.0.0.1 sport=22 dport=4000 [ASSURED]")
    assert entry == {"protonum": 6, "src": "10.0.0.1", "dst": "10.0.0.2", "sport": 4000,
                     "dport": 22}
