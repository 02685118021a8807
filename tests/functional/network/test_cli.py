"""The commands issue 5 names, run with the real `openstack` CLI."""

from __future__ import annotations


def test_cli_walkthrough(cloud, make_tenant):
    public = cloud.cli("network", "create", "--provider-network-type", "flat",
                       "--provider-physical-network", "physnet1", "--external", "--share",
                       "public")
    assert public["provider:network_type"] == "flat"
    assert public["provider:physical_network"] == "physnet1"
    assert public["router:external"] is True and public["shared"] is True
    ext_subnet = cloud.cli("subnet", "create", "--network", "public", "--subnet-range",
                           "203.0.113.0/24", "--no-dhcp", "--allocation-pool",
                           "start=203.0.113.100,end=203.0.113.200", "public-subnet")
    assert ext_subnet["cidr"] == "203.0.113.0/24"
    assert ext_subnet["allocation_pools"] == [{"start": "203.0.113.100",
                                               "end": "203.0.113.200"}]

    tenant = make_tenant()
    private = tenant.cli("network", "create", "private")
    assert private.get("provider:network_type") is None  # hidden from tenants
    subnet = tenant.cli("subnet", "create", "--network", "private", "--subnet-range",
                        "10.0.0.0/24", "--dns-nameserver", "8.8.8.8", "private-subnet")
    assert subnet["gateway_ip"] == "10.0.0.1"
    port = tenant.cli("port", "create", "--network", "private", "--fixed-ip",
                      "subnet=private-subnet,ip-address=10.0.0.10", "vm-port")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.0.0.10"}]

    router = tenant.cli("router", "create", "r1")
    assert router["external_gateway_info"] is None
    proc = tenant.cli("router", "set", "--external-gateway", "public", "r1", parse=False)
    assert proc.returncode == 0, proc.stderr
    proc = tenant.cli("router", "add", "subnet", "r1", "private-subnet", parse=False)
    assert proc.returncode == 0, proc.stderr
    shown = tenant.cli("router", "show", "r1")
    assert shown["external_gateway_info"]["network_id"] == public["id"]
    assert shown["external_gateway_info"]["external_fixed_ips"][0]["subnet_id"] == \
        ext_subnet["id"]

    fip = tenant.cli("floating", "ip", "create", "public")
    assert fip["floating_ip_address"].startswith("203.0.113.")
    proc = tenant.cli("floating", "ip", "set", "--port", "vm-port", fip["id"], parse=False)
    assert proc.returncode == 0, proc.stderr
    fip = tenant.cli("floating", "ip", "show", fip["id"])
    assert fip["port_id"] == port["id"] and fip["fixed_ip_address"] == "10.0.0.10"
    assert fip["router_id"] == router["id"]

    rule = tenant.cli("security", "group", "rule", "create", "--dst-port", "22", "--protocol",
                      "tcp", "default")
    assert rule["port_range_min"] == 22 and rule["port_range_max"] == 22
    assert rule["protocol"] == "tcp" and rule["direction"] == "ingress"
    dup = tenant.cli("security", "group", "rule", "create", "--dst-port", "22", "--protocol",
                     "tcp", "default", check=False)
    assert dup.returncode != 0

    proc = cloud.cli("quota", "set", "--networks", "1", tenant.creds["project_name"],
                     parse=False)
    assert proc.returncode == 0, proc.stderr
    over = tenant.cli("network", "create", "second", check=False)
    assert over.returncode != 0 and "Quota exceeded" in over.stderr
    nets = tenant.cli("network", "list")
    assert {n["Name"] for n in nets} == {"public", "private"}
