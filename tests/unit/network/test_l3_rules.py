"""The router namespace's NAT table, from a router and its floating IPs."""

from __future__ import annotations

from pocketstack.network.agents.l3 import L3Agent, gateway_device, internal_device, ns_name


class _Ip:
    rw = None


def agent(metadata=False):
    return L3Agent("h", "/nonexistent", _Ip(), backend=None,
                   metadata_proxy=(lambda *a: None) if metadata else None)


ROUTER = {"id": "r1", "external_gateway_info": {"enable_snat": True}}
GATEWAY = {"id": "g1", "fixed_ips": [{"ip_address": "203.0.113.10"},
                                     {"ip_address": "2001:db8::10"}]}
FIP = {"floating_ip_address": "203.0.113.20", "fixed_ip_address": "10.0.0.5"}


def test_names():
    assert ns_name("r1") == "qrouter-r1"
    assert internal_device("0123456789abcdef") == "qr-0123456789a"
    assert gateway_device("0123456789abcdef") == "qg-0123456789a"


def test_snat_and_floating_ips():
    rules = agent().nat_rules(ROUTER, GATEWAY, "qg-g1", [FIP], ["10.0.0.0/24"])
    assert rules[0] == "*nat" and rules[-1] == "COMMIT"
    body = rules[5:-1]
    assert body == [
        "-A PREROUTING -d 203.0.113.20/32 -j DNAT --to-destination 10.0.0.5",
        "-A OUTPUT -d 203.0.113.20/32 -j DNAT --to-destination 10.0.0.5",
        "-A POSTROUTING -s 10.0.0.5/32 -o qg-g1 -j SNAT --to-source 203.0.113.20",
        "-A POSTROUTING -s 10.0.0.0/24 -d 10.0.0.5/32 -m conntrack --ctstate DNAT "
        "-j SNAT --to-source 203.0.113.20",
        "-A POSTROUTING -o qg-g1 -m conntrack ! --ctstate DNAT -j SNAT "
        "--to-source 203.0.113.10",
    ]


def test_snat_disabled_no_gateway_and_metadata():
    router = {"id": "r1", "external_gateway_info": {"enable_snat": False}}
    body = agent().nat_rules(router, GATEWAY, "qg-g1", [], [])[5:-1]
    assert body == []
    body = agent(metadata=True).nat_rules({"id": "r1"}, None, None, [FIP], [])[5:-1]
    assert body == ["-A PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 "
                    "-j REDIRECT --to-ports 9697"]
