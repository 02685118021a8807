"""Servers and the networking service: networks auto, ports, floating IPs, groups."""

from __future__ import annotations

import openstack.exceptions as osexc
import pytest

from tests.functional.compute.conftest import wait_for


def test_networks_auto_port_and_floating_ip(compute_env):
    env = compute_env()
    conn = env.conn
    tenant = env.cloud.make_user()
    tconn = env.cloud.connect(username=tenant["username"], password=tenant["password"],
                              project_name=tenant["project_name"])
    body = {"server": {"name": "auto", "imageRef": env.image.id, "flavorRef": "1",
                       "networks": "auto"}}
    sid = tconn.compute.post("/servers", json=body, microversion="2.37").json()["server"]["id"]
    server = env.wait_status(tconn.compute.get_server(sid), "ACTIVE", conn=tconn)
    assert server.addresses, "networks: auto gave the server a network"
    own_nets = {n.id for n in tconn.network.networks(project_id=tenant["project_id"])}
    port = next(tconn.network.ports(device_id=sid))
    assert port.network_id in own_nets

    # a port made beforehand is taken, and kept (unbound) when the server goes
    pre = conn.network.create_port(network_id=env.network.id)
    with_port = env.boot(name="with-port", networks=[{"port": pre.id}])
    assert conn.network.get_port(pre.id).device_id == with_port.id
    with pytest.raises(osexc.ConflictException):
        env.boot(name="steal", networks=[{"port": pre.id}], wait=False)
    # security groups by name; an unknown one is a 400
    with pytest.raises(osexc.BadRequestException):
        env.boot(name="nosg", security_groups=[{"name": "missing"}], wait=False)

    # floating IP: shown in addresses once associated
    ext = conn.network.create_network(name="public", is_router_external=True)
    conn.network.create_subnet(network_id=ext.id, cidr="172.24.4.0/24", ip_version=4)
    router = conn.network.create_router(name="r", external_gateway_info={
        "network_id": ext.id})
    conn.network.add_interface_to_router(router, subnet_id=env.subnet.id)
    fip = conn.network.create_ip(floating_network_id=ext.id)
    port = next(conn.network.ports(device_id=with_port.id))
    conn.network.update_ip(fip, port_id=port.id)
    shown = conn.compute.get_server(with_port)
    kinds = {a["OS-EXT-IPS:type"]: a["addr"] for a in shown.addresses["private"]}
    assert kinds["floating"] == fip.floating_ip_address

    conn.compute.delete_server(with_port)
    conn.compute.wait_for_delete(with_port, interval=0.02, wait=60)
    kept = conn.network.get_port(pre.id)
    assert kept.device_id == "" and kept.binding_host_id in ("", None)

    # interface attach / detach
    extra_net = conn.network.create_network(name="second")
    conn.network.create_subnet(network_id=extra_net.id, cidr="10.1.0.0/24", ip_version=4)
    server = env.boot(name="nics")
    iface = conn.compute.create_server_interface(server, net_id=extra_net.id)
    assert "second" in conn.compute.get_server(server).addresses
    conn.compute.delete_server_interface(iface, server=server)
    wait_for(lambda: "second" not in conn.compute.get_server(server).addresses, "detached")
    assert list(conn.network.ports(network_id=extra_net.id, device_owner="compute:nova")) == []


def test_no_networks_before_2_37(compute_env):
    env = compute_env()
    conn = env.conn
    body = {"server": {"name": "old", "imageRef": env.image.id, "flavorRef": "1"}}
    # one usable network (the shared "private"): the server gets a port on it
    sid = conn.compute.post("/servers", json=body, microversion="2.1").json()["server"]["id"]
    server = env.wait_status(conn.compute.get_server(sid), "ACTIVE")
    assert "private" in server.addresses
    # two usable networks: ambiguous, 409 and nothing created
    conn.network.create_network(name="another")
    r = conn.compute.post("/servers", json=body, microversion="2.1")
    assert r.status_code == 409 and "Multiple possible networks" in r.text
    assert len(list(conn.compute.servers())) == 1
    # from 2.37 networks are required
    assert conn.compute.post("/servers", json=body,
                             microversion="2.37").status_code == 400
