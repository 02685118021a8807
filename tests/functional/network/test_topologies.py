"""The seed's five topologies, built through the API, with what admin and
each tenant can see."""

from __future__ import annotations

from .conftest import assert_error


def names(client, coll: str, **params) -> set[str]:
    body = client.get(f"/{coll}", params=params).json()
    return {item.get("name") or item["id"] for item in body[coll.replace("-", "_")]}


def ids(client, coll: str, **params) -> set[str]:
    return {item["id"] for item in client.get(f"/{coll}", params=params).json()[coll]}


def flat(admin, name: str, physnet: str, cidr: str, **extra) -> tuple[dict, dict]:
    net = admin.create("network", name=name, shared=True,
                       **{"provider:network_type": "flat",
                          "provider:physical_network": physnet}, **extra)
    subnet = admin.create("subnet", network_id=net["id"], cidr=cidr, ip_version=4,
                          name=f"{name}-subnet")
    return net, subnet


def test_single_flat_network(admin, make_tenant):
    net, subnet = flat(admin, "flat", "physnet1", "192.168.0.0/24")
    a, b = make_tenant(), make_tenant()
    pa = a.http.create("port", network_id=net["id"], name="a-port")
    pb = b.http.create("port", network_id=net["id"], name="b-port")
    assert pa["project_id"] == a.project_id and pa["fixed_ips"][0]["subnet_id"] == subnet["id"]
    for tenant in (a, b):
        assert names(tenant.http, "networks") == {"flat"}
        assert names(tenant.http, "subnets") == {"flat-subnet"}
        shown = tenant.http.get(f"/networks/{net['id']}").json()["network"]
        assert "provider:network_type" not in shown
    assert ids(a.http, "ports") == {pa["id"]}
    assert ids(b.http, "ports") == {pb["id"]}
    assert_error(b.http.get(f"/ports/{pa['id']}"), 404, "PortNotFound")
    assert {pa["id"], pb["id"]} <= ids(admin, "ports")
    # tenants cannot change or delete the shared network, nor its subnet
    assert_error(a.http.put(f"/networks/{net['id']}", json={"network": {"name": "x"}}), 403)
    assert_error(a.http.delete(f"/networks/{net['id']}"), 403)
    assert_error(a.http.post("/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "192.168.9.0/24", "ip_version": 4}}), 403)
    # a tenant may not pick an address on a network it does not own
    assert_error(a.http.post("/ports", json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.0.77"}]}}), 403)
    # in use: the network cannot go
    assert_error(admin.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")


def test_multiple_flat_networks_each_tenant_chooses(admin, make_tenant):
    n1, _ = flat(admin, "flat1", "physnet1", "192.168.1.0/24")
    n2, _ = flat(admin, "flat2", "physnet2", "192.168.2.0/24")
    # one flat network per physical network
    assert_error(admin.post("/networks", json={"network": {
        "name": "again", "provider:network_type": "flat",
        "provider:physical_network": "physnet1"}}), 409, "FlatNetworkInUse")
    a, b = make_tenant(), make_tenant()
    pa = a.http.create("port", network_id=n1["id"])
    pb = b.http.create("port", network_id=n2["id"])
    assert pa["fixed_ips"][0]["ip_address"].startswith("192.168.1.")
    assert pb["fixed_ips"][0]["ip_address"].startswith("192.168.2.")
    for tenant in (a, b):
        assert names(tenant.http, "networks") == {"flat1", "flat2"}
        assert names(tenant.http, "networks", shared="true") == {"flat1", "flat2"}
    assert ids(a.http, "ports") == {pa["id"]} and ids(b.http, "ports") == {pb["id"]}


def test_mixed_flat_and_private_networks(admin, make_tenant):
    shared, _ = flat(admin, "flat", "physnet1", "192.168.0.0/24")
    a, b = make_tenant(), make_tenant()
    priv = a.http.create("network", name="a-private")
    a.http.create("subnet", network_id=priv["id"], cidr="10.0.0.0/24", ip_version=4,
                  name="a-subnet")
    # non-admins cannot choose provider attributes
    assert_error(a.http.post("/networks", json={"network": {
        "name": "x", "provider:network_type": "vlan"}}), 403, "PolicyNotAuthorized")
    assert_error(a.http.post("/networks", json={"network": {"name": "x", "shared": True}}),
                 403)
    assert names(a.http, "networks") == {"flat", "a-private"}
    assert names(b.http, "networks") == {"flat"}
    assert names(b.http, "subnets") == {"flat-subnet"}
    assert_error(b.http.get(f"/networks/{priv['id']}"), 404, "NetworkNotFound")
    # b cannot attach to a's private network
    assert_error(b.http.post("/ports", json={"port": {"network_id": priv["id"]}}), 404,
                 "NetworkNotFound")
    a_port = a.http.create("port", network_id=priv["id"])
    a.http.create("port", network_id=shared["id"])
    assert a_port["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    assert names(admin, "networks") >= {"flat", "a-private"}


def test_provider_router_with_private_networks(admin, make_tenant):
    ext = admin.create("network", name="public", **{"router:external": True,
                                                   "provider:network_type": "flat",
                                                   "provider:physical_network": "physnet1"})
    admin.create("subnet", network_id=ext["id"], cidr="203.0.113.0/24", ip_version=4,
                 enable_dhcp=False)
    router = admin.create("router", name="provider-router",
                          external_gateway_info={"network_id": ext["id"]})
    assert router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"] == \
        "203.0.113.2"
    a, b = make_tenant(), make_tenant()
    nets = {}
    for tenant, cidr in ((a, "10.1.0.0/24"), (b, "10.2.0.0/24")):
        net = admin.create("network", name=f"net-{cidr}", project_id=tenant.project_id)
        subnet = admin.create("subnet", network_id=net["id"], cidr=cidr, ip_version=4,
                              project_id=tenant.project_id)
        r = admin.put(f"/routers/{router['id']}/add_router_interface",
                      json={"subnet_id": subnet["id"]})
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["subnet_id"] == subnet["id"] and info["id"] == router["id"]
        nets[tenant.project_id] = (net, subnet)
    for tenant in (a, b):
        net, subnet = nets[tenant.project_id]
        # the external network is visible; its subnet and the router are not
        assert names(tenant.http, "networks") == {net["name"], "public"}
        assert ids(tenant.http, "routers") == set()
        assert_error(tenant.http.get(f"/routers/{router['id']}"), 404, "RouterNotFound")
        port = tenant.http.create("port", network_id=net["id"])
        fip = tenant.http.create("floatingip", floating_network_id=ext["id"],
                                 port_id=port["id"])
        assert fip["router_id"] == router["id"] and fip["status"] == "ACTIVE"
        # the router interface port is on the tenant's network and visible to its owner
        owners = {p["device_owner"] for p in tenant.http.get("/ports").json()["ports"]}
        assert "network:router_interface" in owners
    # tenants cannot attach to the provider router themselves
    assert_error(a.http.put(f"/routers/{router['id']}/add_router_interface",
                            json={"subnet_id": nets[a.project_id][1]["id"]}), 404)
    assert router["id"] in ids(admin, "routers")
    # the router with interfaces cannot be deleted
    assert_error(admin.delete(f"/routers/{router['id']}"), 409, "RouterInUse")


def test_per_tenant_routers_with_overlapping_cidrs(admin, make_tenant):
    ext = admin.create("network", name="public", **{"router:external": True})
    admin.create("subnet", network_id=ext["id"], cidr="198.51.100.0/24", ip_version=4)
    a, b = make_tenant(), make_tenant()
    made = {}
    for tenant in (a, b):
        net = tenant.http.create("network", name="private")
        subnet = tenant.http.create("subnet", network_id=net["id"], cidr="10.0.0.0/24",
                                    ip_version=4, name="private-subnet")
        router = tenant.http.create("router", name="router",
                                    external_gateway_info={"network_id": ext["id"]})
        r = tenant.http.put(f"/routers/{router['id']}/add_router_interface",
                            json={"subnet_id": subnet["id"]})
        assert r.status_code == 200, r.text
        port = tenant.http.create("port", network_id=net["id"])
        assert port["fixed_ips"][0]["ip_address"] == "10.0.0.2"  # same address in each
        fip = tenant.http.create("floatingip", floating_network_id=ext["id"],
                                 port_id=port["id"])
        assert fip["router_id"] == router["id"]
        made[tenant.project_id] = (net, subnet, router, port, fip)
    (na, sa_, ra, pa, fa), (_nb, sb, rb, _pb, fb) = made[a.project_id], made[b.project_id]
    assert fa["floating_ip_address"] != fb["floating_ip_address"]
    assert ids(a.http, "routers") == {ra["id"]} and ids(b.http, "routers") == {rb["id"]}
    assert ids(a.http, "floatingips") == {fa["id"]}
    assert ids(admin, "routers") >= {ra["id"], rb["id"]}
    # b cannot touch a's router or plug a's subnet into its own router
    assert_error(b.http.put(f"/routers/{ra['id']}/add_router_interface",
                            json={"subnet_id": sb["id"]}), 404, "RouterNotFound")
    assert_error(b.http.put(f"/routers/{rb['id']}/add_router_interface",
                            json={"subnet_id": sa_["id"]}), 404, "SubnetNotFound")
    assert_error(b.http.put(f"/floatingips/{fb['id']}", json={"floatingip": {
        "port_id": pa["id"]}}), 404, "PortNotFound")
    # a second interface with an overlapping CIDR on one router is refused
    other = a.http.create("network", name="other")
    osub = a.http.create("subnet", network_id=other["id"], cidr="10.0.0.0/25", ip_version=4)
    assert_error(a.http.put(f"/routers/{ra['id']}/add_router_interface",
                            json={"subnet_id": osub["id"]}), 400)
    # the interface cannot be removed while a floating IP needs it
    assert_error(a.http.put(f"/routers/{ra['id']}/remove_router_interface",
                            json={"subnet_id": sa_["id"]}), 409,
                 "RouterInterfaceInUseByFloatingIP")
    # disassociate, then take it all down
    r = a.http.put(f"/floatingips/{fa['id']}", json={"floatingip": {"port_id": None}})
    assert r.json()["floatingip"]["port_id"] is None
    assert a.http.delete(f"/floatingips/{fa['id']}").status_code == 204
    r = a.http.put(f"/routers/{ra['id']}/remove_router_interface",
                   json={"subnet_id": sa_["id"]})
    assert r.status_code == 200, r.text
    assert a.http.put(f"/routers/{ra['id']}", json={"router": {
        "external_gateway_info": {}}}).json()["router"]["external_gateway_info"] is None
    assert a.http.delete(f"/routers/{ra['id']}").status_code == 204
    assert a.http.delete(f"/ports/{pa['id']}").status_code == 204
    assert a.http.delete(f"/networks/{na['id']}").status_code == 204
