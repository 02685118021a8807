"""What the DHCP agent tells dnsmasq: fixed leases and per-subnet options."""

from __future__ import annotations

from pocketstack.network.agents.dhcp import DhcpAgent
from pocketstack.network.agents.state import DesiredState, Snapshot

NET = {"id": "net-1", "mtu": 1450, "admin_state_up": True, "project_id": "p1"}
SUBNET = {"id": "sub-1", "network_id": "net-1", "cidr": "10.0.0.0/24", "ip_version": 4,
          "enable_dhcp": True, "gateway_ip": "10.0.0.1", "dns_nameservers": [],
          "host_routes": []}
DHCP_PORT = {"id": "dhcp-port", "network_id": "net-1", "device_owner": "network:dhcp",
             "mac_address": "fa:16:3e:00:00:02", "binding:host_id": "h",
             "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.2"}]}
VM_PORT = {"id": "vm-port", "network_id": "net-1", "device_owner": "compute:nova",
           "device_id": "inst-1", "mac_address": "fa:16:3e:00:00:05",
           "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.5"}],
           "extra_dhcp_opts": [{"opt_name": "ntp-server", "opt_value": "10.0.0.9",
                                "ip_version": 4}]}


class _NoIp:
    rw = None


def _agent(tmp_path, metadata=True):
    return DhcpAgent("h", str(tmp_path), _NoIp(), None,
                     metadata_socket="/x.sock" if metadata else None)


def _snap(*ports, subnet=None):
    sub = subnet or SUBNET
    return Snapshot({NET["id"]: NET}, {sub["id"]: sub}, {p["id"]: p for p in ports})


def test_host_lines_are_fixed_leases_of_the_ports(tmp_path):
    lines = _agent(tmp_path).host_lines(_snap(DHCP_PORT, VM_PORT), NET)
    assert lines == ["fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal,10.0.0.5,set:port-vm-port"]


def test_options_without_router_push_the_metadata_route(tmp_path):
    lines = _agent(tmp_path).opt_lines(_snap(DHCP_PORT, VM_PORT), NET, DHCP_PORT)
    assert "tag:subnet-sub-1,option:router,10.0.0.1" in lines
    assert ("tag:subnet-sub-1,option:classless-static-route,169.254.169.254/32,10.0.0.2,"
            "0.0.0.0/0,10.0.0.1") in lines
    assert "tag:subnet-sub-1,option:mtu,1450" in lines
    assert "tag:port-vm-port,ntp-server,10.0.0.9" in lines
    assert not any("dns-server" in line for line in lines)


def test_options_with_a_router_and_host_routes_and_dns(tmp_path):
    router = {"id": "r-port", "network_id": "net-1",
              "device_owner": "network:router_interface", "mac_address": "fa:16:3e:00:00:01",
              "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.1"}]}
    subnet = {**SUBNET, "dns_nameservers": ["192.0.2.53"],
              "host_routes": [{"destination": "172.16.0.0/12", "nexthop": "10.0.0.254"}]}
    lines = _agent(tmp_path).opt_lines(_snap(DHCP_PORT, VM_PORT, router, subnet=subnet), NET,
                                       DHCP_PORT)
    routes = [line for line in lines if "classless-static-route" in line]
    assert routes == ["tag:subnet-sub-1,option:classless-static-route,"
                      "172.16.0.0/12,10.0.0.254,0.0.0.0/0,10.0.0.1"]  # no metadata route
    assert "tag:subnet-sub-1,option:dns-server,192.0.2.53" in lines


def test_subnet_without_gateway_gets_no_router(tmp_path):
    subnet = {**SUBNET, "gateway_ip": None}
    lines = _agent(tmp_path, metadata=False).opt_lines(_snap(DHCP_PORT, subnet=subnet), NET,
                                                       DHCP_PORT)
    assert "tag:subnet-sub-1,option:router" in lines
    assert not any("classless" in line for line in lines)


def test_leases_of_deleted_ports_are_forgotten(tmp_path):
    (tmp_path / "leases").write_text(
        "1 fa:16:3e:00:00:05 10.0.0.5 host-10-0-0-5 *\n"
        "1 fa:16:3e:00:00:99 10.0.0.6 gone *\n")
    DhcpAgent._prune_leases(str(tmp_path), [
        "fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal,10.0.0.5,set:port-a",
        "fa:16:3e:00:00:07,host-10-0-0-6.openstacklocal,10.0.0.6,set:port-b"])
    assert (tmp_path / "leases").read_text() == "1 fa:16:3e:00:00:05 10.0.0.5 host-10-0-0-5 *\n"


def test_desired_state_drops_a_deleted_networks_ports():
    state = DesiredState()
    state.replace([NET], [SUBNET], [DHCP_PORT, VM_PORT])
    generation = state.generation
    state.remove("networks", "net-1")
    snap = state.snapshot()
    assert snap.ports == {} and snap.subnets == {} and state.generation > generation
    assert snap.port_by_ip("net-1", "10.0.0.5") is None
