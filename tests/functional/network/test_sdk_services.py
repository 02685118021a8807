"""Security groups, quotas, subnet pools, routers, floating IPs and the
auto-allocated topology through openstacksdk's ``conn.network``."""

from __future__ import annotations

import openstack.exceptions
import pytest

from pocketstack.common.context import RequestContext

from .conftest import assert_error


def test_security_groups(make_tenant):
    tenant = make_tenant()
    conn = tenant.conn
    groups = list(conn.network.security_groups())
    assert [g.name for g in groups] == ["default"]
    default = groups[0]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"])
             for r in default.security_group_rules}
    assert rules == {("ingress", "IPv4", default.id), ("ingress", "IPv6", default.id),
                     ("egress", "IPv4", None), ("egress", "IPv6", None)}
    web = conn.network.create_security_group(name="web", description="web servers")
    assert {(r["direction"], r["ethertype"]) for r in web.security_group_rules} == {
        ("egress", "IPv4"), ("egress", "IPv6")}
    rule = conn.network.create_security_group_rule(
        security_group_id=web.id, direction="ingress", protocol="tcp", port_range_min=80,
        port_range_max=443, remote_ip_prefix="0.0.0.0/0", ethertype="IPv4")
    assert rule.port_range_min == 80 and rule.protocol == "tcp"
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.create_security_group_rule(
            security_group_id=web.id, direction="ingress", protocol="6", port_range_min=80,
            port_range_max=443, ethertype="IPv4")
    icmp = conn.network.create_security_group_rule(
        security_group_id=web.id, direction="ingress", protocol="icmp", port_range_min=8,
        port_range_max=0)
    by_group = conn.network.create_security_group_rule(
        security_group_id=web.id, direction="ingress", protocol="udp",
        remote_group_id=default.id, port_range_min=53)
    assert by_group.port_range_max == 53
    for bad in ({"protocol": "tcp", "port_range_min": 100, "port_range_max": 10},
                {"port_range_min": 22},
                {"protocol": "bogus"},
                {"protocol": "icmp", "port_range_min": 300},
                {"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/8", "ethertype": "IPv6"},
                {"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/8",
                 "remote_group_id": default.id}):
        with pytest.raises(openstack.exceptions.BadRequestException):
            conn.network.create_security_group_rule(security_group_id=web.id,
                                                    direction="ingress", **bad)
    net = conn.network.create_network(name="n")
    conn.network.create_subnet(network_id=net.id, cidr="10.0.0.0/24", ip_version=4)
    port = conn.network.create_port(network_id=net.id, security_group_ids=[web.id])
    assert port.security_group_ids == [web.id]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_security_group(web)
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_security_group(default)
    # port security off needs the groups gone first
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.update_port(port, port_security_enabled=False)
    port = conn.network.update_port(port, port_security_enabled=False, security_group_ids=[])
    assert port.security_group_ids == [] and port.is_port_security_enabled is False
    conn.network.delete_security_group_rule(icmp)
    conn.network.delete_security_group(web)
    assert [g.name for g in conn.network.security_groups()] == ["default"]
    tenant.http.get("/security-groups")  # idempotent: still one default group
    assert len(tenant.http.get("/security-groups", params={"name": "default"}).json()[
        "security_groups"]) == 1


def test_quotas(conn, make_tenant, admin):
    tenant = make_tenant()
    quota = conn.network.get_quota(tenant.project_id)
    assert quota.networks == 100 and quota.ports == 500
    conn.network.update_quota(tenant.project_id, networks=2, ports=3)
    details = admin.get(f"/quotas/{tenant.project_id}/details").json()["quota"]
    assert details["network"] == {"limit": 2, "used": 0, "reserved": 0}
    n1 = tenant.http.create("network", name="q1")
    tenant.http.create("network", name="q2")
    assert_error(tenant.http.post("/networks", json={"network": {"name": "q3"}}), 409,
                 "OverQuota")
    tenant.http.create("subnet", network_id=n1["id"], cidr="10.0.0.0/24", ip_version=4)
    for _ in range(3):
        tenant.http.create("port", network_id=n1["id"])
    r = tenant.http.post("/ports", json={"port": {"network_id": n1["id"]}})
    assert_error(r, 409, "OverQuota")
    assert r.json()["NeutronError"]["message"] == "Quota exceeded for resources: ['port']."
    assert tenant.http.get(f"/quotas/{tenant.project_id}").json()["quota"]["port"] == 3
    assert_error(tenant.http.put(f"/quotas/{tenant.project_id}",
                                 json={"quota": {"port": 50}}), 403)
    defaults = admin.get(f"/quotas/{tenant.project_id}/default").json()["quota"]
    assert defaults["port"] == 500
    assert tenant.project_id in {q["project_id"] for q in admin.get("/quotas").json()["quotas"]}
    conn.network.delete_quota(tenant.project_id)
    assert conn.network.get_quota(tenant.project_id).networks == 100


def test_subnet_pools(conn, make_tenant):
    pool = conn.network.create_subnet_pool(name="pool", prefixes=["10.128.0.0/16"],
                                           default_prefix_length=24, is_shared=True,
                                           is_default=True)
    assert pool.ip_version == 4 and pool.default_prefix_length == 24
    tenant = make_tenant()
    net = tenant.conn.network.create_network(name="pooled")
    s1 = tenant.conn.network.create_subnet(network_id=net.id, subnetpool_id=pool.id,
                                           ip_version=4)
    s2 = tenant.conn.network.create_subnet(network_id=net.id, subnetpool_id=pool.id,
                                           ip_version=4, prefixlen=26)
    s3 = tenant.conn.network.create_subnet(network_id=net.id, use_default_subnetpool=True,
                                           ip_version=4)
    assert s1.cidr == "10.128.0.0/24" and s2.cidr == "10.128.1.0/26"
    assert s3.cidr == "10.128.2.0/24"
    assert s1.subnet_pool_id == pool.id
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_subnet_pool(pool)
    tenant.conn.network.delete_subnet(s2)
    s4 = tenant.conn.network.create_subnet(network_id=net.id, subnetpool_id=pool.id,
                                           ip_version=4, prefixlen=25)
    assert s4.cidr == "10.128.1.0/25"


def test_routers_and_floating_ips_sdk(conn):
    ext = conn.network.create_network(name="public", is_router_external=True)
    ext_subnet = conn.network.create_subnet(network_id=ext.id, cidr="172.24.4.0/24",
                                            ip_version=4)
    net = conn.network.create_network(name="private")
    subnet = conn.network.create_subnet(network_id=net.id, cidr="10.0.0.0/24", ip_version=4)
    router = conn.network.create_router(name="r", external_gateway_info={
        "network_id": ext.id, "external_fixed_ips": [{"ip_address": "172.24.4.10"}]})
    assert router.external_gateway_info["external_fixed_ips"] == [
        {"subnet_id": ext_subnet.id, "ip_address": "172.24.4.10"}]
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    router = conn.network.update_router(router, routes=[{"destination": "192.168.0.0/16",
                                                         "nexthop": "10.0.0.200"}])
    assert router.routes == [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.200"}]
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.network.update_router(router, routes=[{"destination": "192.168.0.0/16",
                                                    "nexthop": "10.99.0.1"}])
    router = conn.network.add_extra_routes_to_router(router, body={"router": {"routes": [
        {"destination": "192.169.0.0/16", "nexthop": "10.0.0.201"}]}})
    assert len(router.routes) == 2
    router = conn.network.remove_extra_routes_from_router(router, body={"router": {
        "routes": [{"destination": "192.169.0.0/16", "nexthop": "10.0.0.201"}]}})
    assert router.routes == [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.200"}]
    port = conn.network.create_port(network_id=net.id)
    fip = conn.network.create_ip(floating_network_id=ext.id, floating_ip_address="172.24.4.99")
    assert fip.floating_ip_address == "172.24.4.99" and fip.status == "DOWN"
    fip = conn.network.update_ip(fip, port_id=port.id)
    assert fip.router_id == router.id and fip.fixed_ip_address == port.fixed_ips[0][
        "ip_address"]
    assert fip.port_details["mac_address"] == port.mac_address
    assert [f.id for f in conn.network.ips(port_id=port.id)] == [fip.id]
    # deleting the port disassociates its floating IP
    conn.network.delete_port(port)
    fip = conn.network.get_ip(fip.id)
    assert fip.port_id is None and fip.router_id is None
    conn.network.delete_ip(fip)
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_router(router)
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    conn.network.delete_router(router)
    assert conn.network.find_router("r") is None
    assert [p.device_owner for p in conn.network.ports(network_id=ext.id)] == []


def test_auto_allocated_topology_and_manager_calls(cloud, make_tenant, admin, manager):
    ext = admin.create("network", name="public", is_default=True,
                       **{"router:external": True})
    admin.create("subnet", network_id=ext["id"], cidr="172.24.5.0/24", ip_version=4)
    tenant = make_tenant()
    r = tenant.http.get(f"/auto-allocated-topology/{tenant.project_id}")
    assert r.status_code == 200, r.text
    topo = r.json()["auto_allocated_topology"]
    again = tenant.http.get(f"/auto-allocated-topology/{tenant.project_id}").json()
    assert again["auto_allocated_topology"]["id"] == topo["id"]
    net = tenant.http.get(f"/networks/{topo['id']}").json()["network"]
    assert net["project_id"] == tenant.project_id and len(net["subnets"]) == 1
    (router,) = tenant.http.get("/routers").json()["routers"]
    assert router["external_gateway_info"]["network_id"] == ext["id"]

    # in-process, as compute calls it
    service = RequestContext(project_id=tenant.project_id, roles=["admin", "member"],
                             internal=True)
    user = RequestContext(project_id=tenant.project_id, user_id="u", roles=["member"])
    sg = manager.find_security_group(user, "default")
    port = manager.create_port(service, {"network_id": topo["id"],
                                         "project_id": tenant.project_id,
                                         "device_id": "server-1",
                                         "device_owner": "compute:nova",
                                         "binding:host_id": "host-a",
                                         "security_groups": [sg["id"]]})
    assert port["binding:vif_type"] == "other" and port["status"] == "ACTIVE"
    assert port["project_id"] == tenant.project_id
    mine = manager.list_ports(user, {"device_id": "server-1"})
    assert [p["id"] for p in mine] == [port["id"]]
    assert "binding:host_id" not in mine[0]  # admin-only attribute
    assert manager.get_network(user, topo["id"])["id"] == topo["id"]
    assert manager.find_network(user, "auto_allocated_network")["id"] == topo["id"]
    port = manager.update_port(service, port["id"], {"binding:host_id": "host-b"})
    assert port["binding:host_id"] == "host-b"
    assert manager.delete_ports_of_device(service, "server-1") == 1
    assert manager.list_ports(user, {"device_id": "server-1"}) == []
    assert tenant.http.delete(f"/auto-allocated-topology/{tenant.project_id}"
                              ).status_code == 204
    assert tenant.http.get("/routers").json()["routers"] == []


def test_network_ip_availability(conn, cloud, make_tenant, admin):
    net = conn.network.create_network(name="avail")
    subnet = conn.network.create_subnet(network_id=net.id, cidr="10.8.0.0/28", ip_version=4)
    for _ in range(3):
        conn.network.create_port(network_id=net.id)
    found = conn.network.get_network_ip_availability(net.id)
    assert found.total_ips == 13 and found.used_ips == 3
    assert found.subnet_ip_availability == [{
        "subnet_id": subnet.id, "subnet_name": "", "cidr": "10.8.0.0/28", "ip_version": 4,
        "total_ips": 13, "used_ips": 3}]
    rows = cloud.cli("ip", "availability", "list")
    assert any(r["Network ID"] == net.id and r["Total IPs"] == 13 for r in rows)
    tenant = make_tenant()
    assert_error(tenant.http.get("/network-ip-availabilities"), 403)
