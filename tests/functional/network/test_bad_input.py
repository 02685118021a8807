"""Bad input gets the Neutron-shaped 4xx and writes nothing."""

from __future__ import annotations

import pytest

from .conftest import assert_error


@pytest.fixture
def net(admin):
    net = admin.create("network", name="bad-input")
    subnet = admin.create("subnet", network_id=net["id"], cidr="10.20.0.0/24", ip_version=4)
    return net, subnet


def counts(admin) -> tuple[int, ...]:
    return tuple(len(admin.get(f"/{c}").json()[c.replace("-", "_")])
                 for c in ("networks", "subnets", "ports", "routers", "floatingips"))


@pytest.mark.parametrize("body,status,kind", [
    ({"cidr": "10.30.0.0/33", "ip_version": 4}, 400, None),
    ({"cidr": "10.30.0.1/24", "ip_version": 4}, 400, "HTTPBadRequest"),
    ({"cidr": "2001:db8::/64", "ip_version": 4}, 400, "InvalidInput"),
    ({"cidr": "10.30.0.0/24", "ip_version": 4, "gateway_ip": "10.31.0.1"}, 400,
     "InvalidInput"),
    ({"cidr": "10.30.0.0/24", "ip_version": 4, "gateway_ip": "10.30.0.255"}, 400,
     "InvalidInput"),
    ({"cidr": "10.30.0.0/24", "ip_version": 4,
      "allocation_pools": [{"start": "10.30.0.1", "end": "10.30.0.20"}]}, 409,
     "GatewayConflictWithAllocationPools"),
    ({"cidr": "10.30.0.0/24", "ip_version": 4,
      "allocation_pools": [{"start": "10.30.0.10", "end": "10.31.0.20"}]}, 400,
     "OutOfBoundsAllocationPool"),
    ({"cidr": "10.30.0.0/24", "ip_version": 4,
      "allocation_pools": [{"start": "10.30.0.10", "end": "10.30.0.20"},
                           {"start": "10.30.0.15", "end": "10.30.0.30"}]}, 400,
     "OverlappingAllocationPools"),
    ({"cidr": "10.20.0.128/25", "ip_version": 4}, 400, "InvalidInput"),  # overlaps
    ({"cidr": "10.30.0.0/24", "ip_version": 4, "dns_nameservers": ["nope"]}, 400, None),
    ({"cidr": "10.30.0.0/24", "ip_version": 4, "bogus": 1}, 400, "HTTPBadRequest"),
    ({"cidr": "10.30.0.0/24", "ip_version": 4, "ipv6_address_mode": "slaac"}, 400, None),
])
def test_bad_subnets(admin, net, body, status, kind):
    before = counts(admin)
    r = admin.post("/subnets", json={"subnet": {"network_id": net[0]["id"], **body}})
    assert_error(r, status, kind)
    assert counts(admin) == before


def test_bad_ports(admin, net, make_tenant):
    network, subnet = net
    before = counts(admin)
    cases = [
        ({"fixed_ips": [{"ip_address": "10.99.0.5"}]}, 400),  # outside the subnet
        ({"fixed_ips": [{"subnet_id": subnet["id"], "ip_address": "10.20.0.255"}]}, 400),
        ({"fixed_ips": [{"subnet_id": subnet["id"], "ip_address": "10.20.0.1"}]}, 409),
        ({"fixed_ips": [{"ip_address": "10.20.0.7"}, {"ip_address": "10.20.0.7"}]}, 409),
        ({"fixed_ips": [{"subnet_id": "00000000-0000-0000-0000-000000000000"}]}, 404),
        ({"mac_address": "not-a-mac"}, 400),
        ({"security_groups": ["00000000-0000-0000-0000-000000000000"]}, 404),
        ({"admin_state_up": "maybe"}, 400),
        ({"port_security_enabled": False,
          "allowed_address_pairs": [{"ip_address": "10.20.0.9"}]}, 409),
    ]
    for body, status in cases:
        r = admin.post("/ports", json={"port": {"network_id": network["id"], **body}})
        assert_error(r, status)
    assert_error(admin.post("/ports", json={"port": {
        "network_id": "00000000-0000-0000-0000-000000000000"}}), 404, "NetworkNotFound")
    assert_error(admin.post("/ports", json={"port": {}}), 400)
    assert_error(admin.post("/ports", content=b"{nope", headers={
        "Content-Type": "application/json"}), 400)
    assert counts(admin) == before
    # a used MAC and a used IP
    port = admin.create("port", network_id=network["id"],
                        fixed_ips=[{"ip_address": "10.20.0.7"}])
    assert_error(admin.post("/ports", json={"port": {
        "network_id": network["id"], "mac_address": port["mac_address"]}}), 409,
        "MacAddressInUse")
    assert_error(admin.post("/ports", json={"port": {
        "network_id": network["id"], "fixed_ips": [{"ip_address": "10.20.0.7"}]}}), 409,
        "IpAddressAlreadyAllocated")
    # a non-admin cannot bind ports or set provider attributes
    tenant = make_tenant()
    tnet = tenant.http.create("network", name="t")
    assert_error(tenant.http.post("/ports", json={"port": {
        "network_id": tnet["id"], "binding:host_id": "h"}}), 403, "PolicyNotAuthorized")
    for attr, value in (("provider:network_type", "flat"),
                        ("provider:physical_network", "physnet1"),
                        ("provider:segmentation_id", 5), ("router:external", True)):
        assert_error(tenant.http.post("/networks", json={"network": {attr: value}}), 403,
                     "PolicyNotAuthorized")


def test_deletes_in_use(admin, net):
    network, subnet = net
    port = admin.create("port", network_id=network["id"])
    assert_error(admin.delete(f"/networks/{network['id']}"), 409, "NetworkInUse")
    assert_error(admin.delete(f"/subnets/{subnet['id']}"), 409, "SubnetInUse")
    assert admin.get(f"/networks/{network['id']}").status_code == 200
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    assert admin.delete(f"/networks/{network['id']}").status_code == 204
    assert admin.get(f"/subnets/{subnet['id']}").status_code == 404


def test_bad_networks_and_segments(admin):
    before = counts(admin)
    for body, status, kind in [
        ({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
          "provider:segmentation_id": 5000}, 400, None),
        ({"provider:network_type": "vlan", "provider:physical_network": "nope"}, 400, None),
        ({"provider:network_type": "flat"}, 400, None),
        ({"provider:network_type": "bogus"}, 400, None),
        ({"provider:network_type": "vxlan", "provider:physical_network": "physnet1"}, 400,
         None),
        ({"mtu": 9000}, 400, None),
        ({"name": 5}, 400, "HTTPBadRequest"),
    ]:
        assert_error(admin.post("/networks", json={"network": {"name": "x", **body}
                                                   if "name" not in body else body}),
                     status, kind)
    assert counts(admin) == before
    v = admin.create("network", **{"provider:network_type": "vlan",
                                  "provider:physical_network": "physnet1",
                                  "provider:segmentation_id": 1234})
    assert v["provider:segmentation_id"] == 1234 and v["mtu"] == 1500
    assert_error(admin.post("/networks", json={"network": {
        "provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": 1234}}), 409, "VlanIdInUse")
    x = admin.create("network", **{"provider:network_type": "vxlan",
                                  "provider:segmentation_id": 777})
    assert_error(admin.post("/networks", json={"network": {
        "provider:network_type": "vxlan", "provider:segmentation_id": 777}}), 409,
        "TunnelIdInUse")
    admin.delete(f"/networks/{x['id']}")
    assert admin.create("network", **{"provider:network_type": "vxlan",
                                      "provider:segmentation_id": 777})


def test_tenant_cannot_use_other_tenants_resources(make_tenant, admin):
    a, b = make_tenant(), make_tenant()
    net = a.http.create("network", name="mine")
    subnet = a.http.create("subnet", network_id=net["id"], cidr="10.40.0.0/24", ip_version=4)
    router = a.http.create("router", name="mine")
    sg = a.http.create("security_group", name="web")
    assert_error(b.http.post("/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.41.0.0/24", "ip_version": 4}}), 404)
    assert_error(b.http.put(f"/routers/{router['id']}/add_router_interface",
                            json={"subnet_id": subnet["id"]}), 404)
    bnet = b.http.create("network", name="b")
    assert_error(b.http.post("/ports", json={"port": {
        "network_id": bnet["id"], "security_groups": [sg["id"]]}}), 404,
        "SecurityGroupNotFound")
    assert_error(b.http.delete(f"/security-groups/{sg['id']}"), 404)
    assert_error(b.http.post("/networks", json={"network": {
        "name": "spoof", "project_id": a.project_id}}), 400)
    assert_error(a.http.put(f"/quotas/{a.project_id}", json={"quota": {"network": 100}}),
                 403)
