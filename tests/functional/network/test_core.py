"""Networks, subnets and ports through openstacksdk and raw HTTP: shapes,
filters, fields, sorting, pagination, tags, discovery."""

from __future__ import annotations

import ipaddress

import httpx

from .conftest import assert_error, unique

# Field names of real Neutron responses (captured in the shared reference
# shapes: network_create.json, subnet_create.json, port_create.json).
NETWORK_FIELDS = {
    "admin_state_up", "availability_zone_hints", "availability_zones", "created_at",
    "description", "id", "ipv4_address_scope", "ipv6_address_scope", "is_default", "mtu",
    "name", "port_security_enabled", "project_id", "provider:network_type",
    "provider:physical_network", "provider:segmentation_id", "qinq", "revision_number",
    "router:external", "shared", "status", "subnets", "tags", "tenant_id", "updated_at",
    "vlan_transparent"}
SUBNET_FIELDS = {
    "allocation_pools", "cidr", "created_at", "description", "dns_nameservers", "enable_dhcp",
    "gateway_ip", "host_routes", "id", "ip_version", "ipv6_address_mode", "ipv6_ra_mode",
    "name", "network_id", "project_id", "revision_number", "router:external", "service_types",
    "subnetpool_id", "tags", "tenant_id", "updated_at"}
PORT_FIELDS = {
    "admin_state_up", "allowed_address_pairs", "binding:host_id", "binding:profile",
    "binding:vif_details", "binding:vif_type", "binding:vnic_type", "created_at",
    "description", "device_id", "device_owner", "extra_dhcp_opts", "fixed_ips", "id",
    "mac_address", "name", "network_id", "port_security_enabled", "project_id",
    "revision_number", "security_groups", "status", "tags", "tenant_id", "updated_at"}
TYPES = {"admin_state_up": bool, "mtu": int, "subnets": list, "shared": bool, "tags": list,
         "revision_number": int, "router:external": bool, "ip_version": int,
         "allocation_pools": list, "fixed_ips": list, "binding:profile": dict,
         "binding:vif_details": dict, "security_groups": list, "created_at": str,
         "enable_dhcp": bool, "port_security_enabled": bool, "qinq": bool,
         "availability_zones": list, "provider:segmentation_id": int}


def same_types(ours: dict) -> None:
    for key, kind in TYPES.items():
        if key in ours and ours[key] is not None:
            assert isinstance(ours[key], kind), (key, ours[key])
    for key in ("created_at", "updated_at"):
        if key in ours:
            assert ours[key].endswith("Z") and "T" in ours[key], ours[key]


def test_discovery(cloud):
    r = httpx.get(f"{cloud.url}/networking/")
    assert r.status_code == 200
    (version,) = r.json()["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    r = httpx.get(f"{cloud.url}/networking/v2.0/")
    assert {x["collection"] for x in r.json()["resources"]} >= {"networks", "subnets", "ports"}


def test_extensions_list_what_is_implemented(admin):
    r = admin.get("/extensions")
    aliases = {e["alias"] for e in r.json()["extensions"]}
    for alias in ("security-group", "router", "external-net", "provider", "quotas",
                  "standard-attr-tag", "allowed-address-pairs", "extra_dhcp_opt", "binding",
                  "port-security", "subnet_allocation", "auto-allocated-topology",
                  "standard-attr-timestamp", "standard-attr-revisions", "extraroute",
                  "ext-gw-mode", "pagination", "sorting"):
        assert alias in aliases, alias
    for absent in ("dvr", "l3-ha", "qos", "trunk", "segment", "agent", "dhcp_agent_scheduler"):
        assert absent not in aliases
    assert admin.get("/extensions/router").json()["extension"]["alias"] == "router"
    assert_error(admin.get("/extensions/nope"), 404)


def test_network_subnet_port_shapes(admin):
    net = admin.create("network", name="shape-net")
    assert set(net) == NETWORK_FIELDS
    same_types(net)
    assert net["provider:network_type"] == "vxlan" and net["mtu"] == 1450
    assert net["revision_number"] == 1 and net["status"] == "ACTIVE"

    subnet = admin.create("subnet", network_id=net["id"], cidr="192.168.77.0/29", ip_version=4,
                          name="shape-v4")
    assert set(subnet) == SUBNET_FIELDS
    same_types(subnet)
    assert subnet["allocation_pools"] == [{"start": "192.168.77.2", "end": "192.168.77.6"}]
    assert subnet["gateway_ip"] == "192.168.77.1"

    port = admin.create("port", network_id=net["id"], name="shape-port")
    assert set(port) == PORT_FIELDS
    same_types(port)
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "192.168.77.2"}]
    assert port["mac_address"].startswith("fa:16:3e:")
    assert port["binding:vif_type"] == "unbound" and port["status"] == "DOWN"
    assert len(port["security_groups"]) == 1

    shown = admin.get(f"/networks/{net['id']}").json()["network"]
    assert shown["subnets"] == [subnet["id"]]
    assert admin.get(f"/ports/{port['id']}").json()["port"] == port

    err = assert_error(admin.get("/networks/00000000-0000-0000-0000-000000000000"), 404,
                       "NetworkNotFound")
    assert err["message"] == "Network 00000000-0000-0000-0000-000000000000 could not be found."
    assert_error(admin.get("/ports/00000000-0000-0000-0000-000000000000"), 404, "PortNotFound")

    # exhaustion of the /29 (5 addresses, one already used)
    for _ in range(4):
        admin.create("port", network_id=net["id"])
    err = assert_error(admin.post("/ports", json={"port": {"network_id": net["id"]}}), 409,
                       "IpAddressGenerationFailure")
    assert err["message"] == f"No more IP addresses available on network {net['id']}."
    err = assert_error(admin.post("/ports", json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.77.3"}]}}), 409,
        "IpAddressAlreadyAllocated")
    assert err["message"] == (f"IP address 192.168.77.3 already allocated in subnet "
                              f"{subnet['id']}")
    err = assert_error(admin.post("/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "not-a-cidr", "ip_version": 4}}), 400, "InvalidInput")
    assert err["message"] == "Invalid input for operation: not-a-cidr is not in a CIDR format."


def test_sdk_crud_and_binding(conn, cloud):
    net = conn.network.create_network(name=unique("net"))
    assert conn.network.find_network(net.name).id == net.id
    subnet = conn.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4,
                                        dns_nameservers=["8.8.8.8"],
                                        host_routes=[{"destination": "10.9.0.0/16",
                                                      "nexthop": "10.1.0.254"}])
    assert subnet.dns_nameservers == ["8.8.8.8"]
    port = conn.network.create_port(network_id=net.id, fixed_ips=[{"ip_address": "10.1.0.50"}],
                                    allowed_address_pairs=[{"ip_address": "10.1.0.200"}],
                                    extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}])
    assert port.fixed_ips == [{"subnet_id": subnet.id, "ip_address": "10.1.0.50"}]
    assert port.allowed_address_pairs == [{"ip_address": "10.1.0.200",
                                           "mac_address": port.mac_address}]
    assert port.extra_dhcp_opts == [{"opt_name": "mtu", "opt_value": "1400", "ip_version": 4}]
    port = conn.network.update_port(port, name="renamed", device_id="server-1",
                                    device_owner="compute:nova", binding_host_id="host-1")
    assert port.name == "renamed" and port.binding_host_id == "host-1"
    assert port.binding_vif_type == "other" and port.status == "ACTIVE"
    assert port.revision_number == 2
    assert [p.id for p in conn.network.ports(device_id="server-1")] == [port.id]
    assert [p.id for p in conn.network.ports(fixed_ips="ip_address=10.1.0.50")] == [port.id]
    port = conn.network.update_port(port, fixed_ips=[{"subnet_id": subnet.id}])
    assert port.fixed_ips[0]["ip_address"] != "10.1.0.50"
    # the released address can be taken again
    again = conn.network.create_port(network_id=net.id,
                                     fixed_ips=[{"ip_address": "10.1.0.50"}])
    conn.network.delete_port(again)
    conn.network.delete_port(port)
    assert conn.network.find_port(port.id) is None
    subnet = conn.network.update_subnet(subnet, name="renamed",
                                        allocation_pools=[{"start": "10.1.0.10",
                                                           "end": "10.1.0.20"}])
    assert subnet.allocation_pools == [{"start": "10.1.0.10", "end": "10.1.0.20"}]
    p = conn.network.create_port(network_id=net.id)
    assert p.fixed_ips[0]["ip_address"] == "10.1.0.10"
    conn.network.delete_port(p)
    conn.network.delete_subnet(subnet)
    net = conn.network.update_network(net, name="renamed-net", mtu=1400)
    assert net.mtu == 1400 and net.revision_number == 2
    conn.network.delete_network(net)
    assert conn.network.find_network(net.id) is None


def test_ipv6_subnets(admin):
    net = admin.create("network", name="v6")
    slaac = admin.create("subnet", network_id=net["id"], cidr="2001:db8:1::/64", ip_version=6,
                         ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert slaac["gateway_ip"] == "2001:db8:1::1"
    stateful = admin.create("subnet", network_id=net["id"], cidr="2001:db8:2::/64",
                            ip_version=6, ipv6_address_mode="dhcpv6-stateful")
    v4 = admin.create("subnet", network_id=net["id"], cidr="10.6.0.0/24", ip_version=4)
    port = admin.create("port", network_id=net["id"])
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    assert by_subnet[v4["id"]] == "10.6.0.2"
    assert by_subnet[stateful["id"]] == "2001:db8:2::2"
    mac = [int(x, 16) for x in port["mac_address"].split(":")]
    iid = bytes([mac[0] ^ 2, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])
    expected = ipaddress.ip_address(int(ipaddress.ip_address("2001:db8:1::")) |
                                    int.from_bytes(iid, "big"))
    assert by_subnet[slaac["id"]] == str(expected)
    assert_error(admin.post("/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "2001:db8:3::/64", "ip_version": 6,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}}), 400)


def test_fields_filters_sorting_pagination_tags(admin):
    net = admin.create("network", name="paged")
    admin.create("subnet", network_id=net["id"], cidr="10.2.0.0/24", ip_version=4)
    ids = sorted(admin.create("port", network_id=net["id"], name=f"p{i}")["id"]
                 for i in range(7))
    r = admin.get("/ports", params={"network_id": net["id"], "fields": ["id", "name"]})
    assert all(set(p) == {"id", "name"} for p in r.json()["ports"])
    r = admin.get("/ports", params={"network_id": net["id"], "sort_key": "name",
                                    "sort_dir": "desc"})
    assert [p["name"] for p in r.json()["ports"]] == [f"p{i}" for i in range(6, -1, -1)]
    seen, url, params = [], "/ports", {"network_id": net["id"], "limit": 3}
    while True:
        body = admin.get(url, params=params).json()
        seen += [p["id"] for p in body["ports"]]
        nxt = [link["href"] for link in body.get("ports_links", []) if link["rel"] == "next"]
        if not nxt:
            break
        url, params = nxt[0].split("/v2.0", 1)[1], None
    assert seen == ids
    # tags
    r = admin.put(f"/networks/{net['id']}/tags", json={"tags": ["red", "blue"]})
    assert r.status_code == 200 and sorted(r.json()["tags"]) == ["blue", "red"]
    assert admin.put(f"/networks/{net['id']}/tags/green").status_code == 201
    assert admin.get(f"/networks/{net['id']}/tags/green").status_code == 204
    assert_error(admin.get(f"/networks/{net['id']}/tags/nope"), 404)
    other = admin.create("network", name="untagged", tags=["blue"])
    got = {n["id"] for n in admin.get("/networks", params={"tags": "red,blue"}).json()[
        "networks"]}
    assert got == {net["id"]}
    got = {n["id"] for n in admin.get("/networks", params={"tags-any": "blue"}).json()[
        "networks"]}
    assert got == {net["id"], other["id"]}
    got = {n["id"] for n in admin.get("/networks", params={"not-tags": "red"}).json()[
        "networks"]}
    assert net["id"] not in got and other["id"] in got
    assert admin.delete(f"/networks/{net['id']}/tags/green").status_code == 204
    assert sorted(admin.get(f"/networks/{net['id']}").json()["network"]["tags"]) == [
        "blue", "red"]


def test_bulk_create(admin):
    net = admin.create("network", name="bulk")
    admin.create("subnet", network_id=net["id"], cidr="10.3.0.0/29", ip_version=4)
    r = admin.post("/ports", json={"ports": [{"network_id": net["id"]} for _ in range(3)]})
    assert r.status_code == 201 and len(r.json()["ports"]) == 3
    # a bulk request that cannot be satisfied leaves nothing behind
    before = len(admin.get("/ports", params={"network_id": net["id"]}).json()["ports"])
    r = admin.post("/ports", json={"ports": [{"network_id": net["id"]} for _ in range(5)]})
    assert_error(r, 409, "IpAddressGenerationFailure")
    after = len(admin.get("/ports", params={"network_id": net["id"]}).json()["ports"])
    assert before == after


def test_subnet_service_types(admin):
    net = admin.create("network", name="svc")
    reserved = admin.create("subnet", network_id=net["id"], cidr="10.4.0.0/24", ip_version=4,
                            service_types=["network:floatingip"])
    general = admin.create("subnet", network_id=net["id"], cidr="10.5.0.0/24", ip_version=4)
    plain = admin.create("port", network_id=net["id"])
    assert plain["fixed_ips"][0]["subnet_id"] == general["id"]
    special = admin.create("port", network_id=net["id"], device_owner="network:floatingip")
    assert special["fixed_ips"][0]["subnet_id"] == reserved["id"]


def test_reverse_pages_and_show_fields(admin):
    net = admin.create("network", name="reverse")
    ids = sorted(admin.create("port", network_id=net["id"])["id"] for _ in range(5))
    body = admin.get("/ports", params={"network_id": net["id"], "limit": 2,
                                       "marker": ids[1]}).json()
    assert [p["id"] for p in body["ports"]] == ids[2:4]
    links = {link["rel"]: link["href"] for link in body["ports_links"]}
    assert set(links) == {"next", "previous"}
    back = admin.get(links["previous"].split("/v2.0", 1)[1]).json()
    assert [p["id"] for p in back["ports"]] == ids[0:2]
    body = admin.get("/ports", params={"network_id": net["id"], "limit": 2, "marker": ids[3],
                                       "page_reverse": "True"}).json()
    assert [p["id"] for p in body["ports"]] == ids[1:3]
    port = admin.put(f"/ports/{ids[0]}", json={"port": {
        "allowed_address_pairs": [{"ip_address": "10.0.0.9"}], "binding:host_id": "h1",
        "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400"}]}}).json()["port"]
    listed = admin.get("/ports", params={"id": ids[0]}).json()["ports"]
    assert listed == [port] == [admin.get(f"/ports/{ids[0]}").json()["port"]]
    shown = admin.get(f"/ports/{ids[0]}", params={"fields": ["id", "mac_address"]}).json()
    assert set(shown["port"]) == {"id", "mac_address"}
    assert_error(admin.get("/ports", params={"sort_key": "bogus"}), 400)
    assert_error(admin.get("/ports", params={"limit": "x"}), 400)
