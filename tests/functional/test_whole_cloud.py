"""The whole cloud, driven as a user of OpenStack drives it.

A Terraform/Ansible provider author replacing devstack in CI: every service in
one cloud, the `openstack` CLI and openstacksdk (proxy and cloud layers), a
non-admin tenant for the workload and the admin for the external network.
"""

from __future__ import annotations

import time

import httpx

from pocketstack.testing import start_cloud_process

ALL = {"identity", "compute", "network", "image", "volumev3", "object-store"}


def wait_for(fn, what: str, timeout: float = 60.0, interval: float = 0.05):
    """Poll until fn() is truthy (a safety deadline only; never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(interval)


def _catalog_types(cloud, **user) -> set[str]:
    rows = cloud.cli("catalog", "list", **user)
    return {row["Type"] for row in rows}


def _types_ok(types: set[str]) -> bool:
    # Cinder's type is "volumev3" (or "block-storage"); accept either.
    normal = {"volumev3" if t in ("block-storage", "volumev3", "volume") else t for t in types}
    return ALL <= normal


def _user_kwargs(user: dict) -> dict:
    return {"username": user["username"], "password": user["password"],
            "project_name": user["project_name"]}


def test_whole_cloud_cli(pocketstack_cloud, tmp_path):
    cloud = pocketstack_cloud
    user = cloud.make_user()
    u = _user_kwargs(user)

    # -- discovery ------------------------------------------------------------
    types = _catalog_types(cloud, **u)
    assert _types_ok(types), types
    versions = cloud.cli("versions", "show", **u)
    assert {v["Service Type"] for v in versions} >= {"identity", "compute", "network"}, versions
    quota_before = cloud.cli("quota", "show", user["project_name"])

    # -- admin: the external network -----------------------------------------
    ext = cloud.cli("network", "create", "public", "--external", "--share")
    cloud.cli("subnet", "create", "public-subnet", "--network", "public",
              "--subnet-range", "172.24.4.0/24", "--no-dhcp")

    # -- tenant: image, network, router, security group, keypair -------------
    disk = tmp_path / "cirros.img"
    disk.write_bytes(b"\x00fake-disk" * 4096)
    image = cloud.cli("image", "create", "cirros", "--file", str(disk),
                      "--disk-format", "raw", "--container-format", "bare", **u)
    assert image["status"] == "active", image
    net = cloud.cli("network", "create", "private", **u)
    subnet = cloud.cli("subnet", "create", "private-subnet", "--network", "private",
                       "--subnet-range", "10.0.0.0/24", **u)
    router = cloud.cli("router", "create", "router1", **u)
    cloud.cli("router", "set", "router1", "--external-gateway", "public", parse=False, **u)
    cloud.cli("router", "add", "subnet", "router1", "private-subnet", parse=False, **u)
    shown = cloud.cli("router", "show", "router1", **u)
    assert shown["external_gateway_info"]["network_id"] == ext["id"], shown
    sg = cloud.cli("security", "group", "create", "web", **u)
    rule = cloud.cli("security", "group", "rule", "create", "web", "--protocol", "tcp",
                     "--dst-port", "22", "--remote-ip", "0.0.0.0/0", **u)
    assert rule["port_range_min"] == 22
    # without --public-key the CLI prints the new private key, not a table
    key = cloud.cli("keypair", "create", "mykey", parse=False, **u)
    assert "PRIVATE KEY" in key.stdout, key.stdout
    assert cloud.cli("keypair", "show", "mykey", **u)["name"] == "mykey"

    # -- boot ----------------------------------------------------------------
    server = cloud.cli("server", "create", "vm1", "--flavor", "m1.tiny", "--image", "cirros",
                       "--network", "private", "--key-name", "mykey",
                       "--security-group", "web", "--wait", **u)
    assert server["status"] == "ACTIVE", server
    listed = cloud.cli("server", "list", "--long", **u)
    assert [s["Name"] for s in listed] == ["vm1"], listed
    assert listed[0]["Status"] == "ACTIVE"
    assert "10.0.0." in str(listed[0]["Networks"]), listed
    ports = cloud.cli("port", "list", "--server", server["id"], **u)
    assert len(ports) == 1, ports

    # -- floating IP ---------------------------------------------------------
    fip = cloud.cli("floating", "ip", "create", "public", **u)
    address = fip["floating_ip_address"]
    cloud.cli("server", "add", "floating", "ip", "vm1", address, parse=False, **u)
    fip = cloud.cli("floating", "ip", "show", address, **u)
    assert fip["port_id"] == ports[0]["ID"], fip
    wait_for(lambda: address in str(cloud.cli("server", "show", "vm1", **u)["addresses"]),
             "the floating IP in the server's addresses")

    # -- volume --------------------------------------------------------------
    vol = cloud.cli("volume", "create", "--size", "1", "data", **u)
    wait_for(lambda: cloud.cli("volume", "show", "data", **u)["status"] == "available",
             "volume available")
    cloud.cli("server", "add", "volume", "vm1", "data", parse=False, **u)
    shown = wait_for(lambda: (v := cloud.cli("volume", "show", "data", **u))["status"] == "in-use"
                     and v, "volume in-use")
    assert shown["attachments"][0]["server_id"] == server["id"], shown
    srv = cloud.cli("server", "show", "vm1", **u)
    assert vol["id"] in str(srv["volumes_attached"]), srv

    # -- snapshot image ------------------------------------------------------
    cloud.cli("server", "image", "create", "vm1", "--name", "vm1-snap", "--wait", **u)
    snap = cloud.cli("image", "show", "vm1-snap", **u)
    assert snap["status"] == "active", snap
    images = {i["Name"] for i in cloud.cli("image", "list", **u)}
    assert {"cirros", "vm1-snap"} <= images, images

    # -- object storage ------------------------------------------------------
    cloud.cli("container", "create", "backups", **u)
    payload = tmp_path / "hello.txt"
    payload.write_text("hello world\n")
    cloud.cli("object", "create", "backups", str(payload), "--name", "hello.txt", **u)
    objs = cloud.cli("object", "list", "backups", **u)
    assert [o["Name"] for o in objs] == ["hello.txt"], objs

    # -- tear down -----------------------------------------------------------
    cloud.cli("server", "remove", "volume", "vm1", "data", parse=False, **u)
    wait_for(lambda: cloud.cli("volume", "show", "data", **u)["status"] == "available",
             "volume available after detach")
    cloud.cli("server", "remove", "floating", "ip", "vm1", address, parse=False, **u)
    cloud.cli("server", "delete", "vm1", "--wait", parse=False, **u)
    assert cloud.cli("server", "list", **u) == []
    conn = cloud.connect(username=user["username"], password=user["password"],
                         project_name=user["project_name"])
    assert list(conn.network.ports(device_id=server["id"])) == []
    cloud.cli("floating", "ip", "delete", address, parse=False, **u)
    cloud.cli("volume", "delete", "data", parse=False, **u)
    wait_for(lambda: cloud.cli("volume", "list", **u) == [], "volume deleted")
    cloud.cli("image", "delete", "vm1-snap", "cirros", parse=False, **u)
    cloud.cli("object", "delete", "backups", "hello.txt", parse=False, **u)
    cloud.cli("container", "delete", "backups", parse=False, **u)
    cloud.cli("keypair", "delete", "mykey", parse=False, **u)
    cloud.cli("router", "remove", "subnet", "router1", "private-subnet", parse=False, **u)
    cloud.cli("router", "unset", "--external-gateway", "router1", parse=False, **u)
    cloud.cli("router", "delete", router["id"], parse=False, **u)
    cloud.cli("security", "group", "delete", sg["id"], parse=False, **u)
    cloud.cli("subnet", "delete", subnet["id"], parse=False, **u)
    cloud.cli("network", "delete", net["id"], parse=False, **u)

    assert cloud.cli("image", "list", "--private", **u) == []
    assert cloud.cli("container", "list", **u) == []
    assert cloud.cli("keypair", "list", **u) == []
    assert cloud.cli("router", "list", **u) == []
    assert cloud.cli("floating", "ip", "list", **u) == []
    assert cloud.cli("network", "list", "--internal", **u) == []
    ports_left = cloud.cli("port", "list", "--project", user["project_id"])
    assert ports_left == [], ports_left
    quota_after = cloud.cli("quota", "show", user["project_name"])
    assert quota_after == quota_before


def test_whole_cloud_sdk_cloud_layer(pocketstack_cloud):
    """openstacksdk's cloud layer, which Ansible's openstack.cloud modules call."""
    cloud = pocketstack_cloud
    admin = cloud.connect()
    user = cloud.make_user()
    conn = cloud.connect(username=user["username"], password=user["password"],
                         project_name=user["project_name"])

    image = conn.create_image("cirros", data=b"fake-disk" * 512, disk_format="raw",
                              container_format="bare", wait=True)
    assert conn.get_image(image.id).status == "active"
    assert conn.get_image("cirros").id == image.id
    net = conn.create_network("private")
    conn.create_subnet(net.id, cidr="10.1.0.0/24", ip_version=4, subnet_name="s1")
    sg = conn.create_security_group("web", "web servers")
    conn.create_security_group_rule(sg.id, port_range_min=22, port_range_max=22,
                                    protocol="tcp", remote_ip_prefix="0.0.0.0/0")
    conn.create_keypair("k1")

    server = conn.create_server("vm1", image="cirros", flavor="m1.tiny", network="private",
                                key_name="k1", security_groups=["web"], wait=True,
                                auto_ip=False, timeout=120)
    assert server.status == "ACTIVE"
    assert server.private_v4.startswith("10.1.0."), server
    assert [s.name for s in conn.list_servers()] == ["vm1"]
    assert conn.get_server("vm1").id == server.id
    assert conn.get_flavor("m1.tiny").ram == 512

    vol = conn.create_volume(size=1, name="data", wait=True, timeout=60)
    assert vol.status == "available"
    conn.attach_volume(server, vol, wait=True, timeout=60)
    assert conn.get_volume(vol.id).status == "in-use"
    attached = conn.get_volumes(conn.get_server(server.id))
    assert [v.id for v in attached] == [vol.id]
    conn.detach_volume(server, vol, wait=True, timeout=60)
    assert conn.get_volume(vol.id).status == "available"

    assert conn.delete_server("vm1", wait=True, timeout=60)
    assert conn.list_servers() == []
    assert conn.delete_volume(vol.id, wait=True, timeout=60)
    assert conn.list_volumes() == []
    ports = [p for p in admin.network.ports(project_id=user["project_id"])
             if p.device_owner.startswith("compute:")]
    assert ports == []
    assert conn.delete_image(image.id, wait=True, timeout=60)
    assert conn.get_image("cirros") is None


def test_up_subprocess_and_restart(pocketstack_cloud_process, tmp_path):
    """`pocketstack up` as a subprocess; a restart on the same state keeps everything."""
    cloud = pocketstack_cloud_process
    assert _types_ok(_catalog_types(cloud))
    user = cloud.make_user()
    u = _user_kwargs(user)
    conn = cloud.connect(username=user["username"], password=user["password"],
                         project_name=user["project_name"])
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"disk-bytes" * 100)
    image = cloud.cli("image", "create", "cirros", "--file", str(disk), "--disk-format", "raw",
                      "--container-format", "bare", **u)
    net = conn.network.create_network(name="private")
    conn.network.create_subnet(network_id=net.id, cidr="10.2.0.0/24", ip_version=4)
    server = cloud.cli("server", "create", "vm1", "--flavor", "m1.tiny", "--image", "cirros",
                       "--network", "private", "--wait", **u)
    assert server["status"] == "ACTIVE", server
    vol = conn.block_storage.create_volume(size=1, name="data")
    conn.block_storage.wait_for_status(vol, "available", interval=0.05, wait=60)
    conn.compute.create_volume_attachment(server["id"], volume_id=vol.id)
    conn.block_storage.wait_for_status(vol, "in-use", interval=0.05, wait=60)
    conn.object_store.create_container(name="c1")
    conn.object_store.upload_object(container="c1", name="o1", data=b"kept")
    addresses = conn.compute.get_server(server["id"]).addresses
    token = conn.session.get_token()
    cloud.stop()

    cloud2 = start_cloud_process(cloud.state_path)
    try:
        # a token issued by the first run is still valid, for every service
        r = httpx.get(f"{cloud2.url}/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": token, "X-Subject-Token": token})
        assert r.status_code == 200, r.text
        r = httpx.get(f"{cloud2.url}/compute/v2.1/servers", headers={"X-Auth-Token": token})
        assert [s["name"] for s in r.json()["servers"]] == ["vm1"], r.text
        conn = cloud2.connect(username=user["username"], password=user["password"],
                              project_name=user["project_name"])
        kept = conn.compute.get_server(server["id"])
        assert kept.status == "ACTIVE" and kept.addresses == addresses, kept
        assert [a["id"] for a in kept.attached_volumes] == [vol.id]
        assert conn.block_storage.get_volume(vol.id).status == "in-use"
        data = conn.image.download_image(conn.image.get_image(image["id"])).content
        assert data == b"disk-bytes" * 100
        assert conn.object_store.download_object("o1", container="c1") == b"kept"
        # and the restarted cloud still works: boot, detach, delete
        again = conn.compute.create_server(name="vm2", image_id=image["id"], flavor_id="1",
                                           networks=[{"uuid": net.id}])
        conn.compute.wait_for_server(again, interval=0.05, wait=120)
        conn.compute.delete_volume_attachment(server["id"], vol.id)
        conn.block_storage.wait_for_status(vol, "available", interval=0.05, wait=60)
        for srv in (kept, again):
            conn.compute.delete_server(srv)
            conn.compute.wait_for_delete(srv, interval=0.05, wait=60)
        left = [p for p in conn.network.ports(network_id=net.id)
                if p.device_owner.startswith("compute:")]
        assert left == [], left
    finally:
        cloud2.stop()


def test_cross_service_lifecycles(pocketstack_cloud, tmp_path):
    """Where one service acts on another's resources: deleting a server with a
    floating IP and a volume attached, volumes from images and images from volumes,
    availability zones and services of every API, tenants kept apart."""
    cloud = pocketstack_cloud
    admin = cloud.connect()
    user = cloud.make_user()
    other = cloud.make_user()
    u = _user_kwargs(user)
    conn = cloud.connect(username=user["username"], password=user["password"],
                         project_name=user["project_name"])
    peer = cloud.connect(username=other["username"], password=other["password"],
                         project_name=other["project_name"])

    ext = admin.network.create_network(name="public", is_router_external=True)
    admin.network.create_subnet(network_id=ext.id, cidr="172.24.4.0/24", ip_version=4,
                                is_dhcp_enabled=False)
    image = conn.image.create_image(name="cirros", data=b"fake-disk" * 256,
                                    disk_format="raw", container_format="bare")
    net = conn.network.create_network(name="private")
    subnet = conn.network.create_subnet(network_id=net.id, cidr="10.3.0.0/24", ip_version=4)
    router = conn.network.create_router(name="r1", external_gateway_info={"network_id": ext.id})
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)

    # a volume made from the image, and an image made from the volume (CLI)
    vol = cloud.cli("volume", "create", "--size", "1", "--image", image.id, "from-image", **u)
    vol = conn.block_storage.wait_for_status(conn.block_storage.get_volume(vol["id"]),
                                             "available", interval=0.05, wait=60)
    assert vol.is_bootable, vol
    uploaded = cloud.cli("image", "create", "--volume", vol.id, "from-volume",
                         "--disk-format", "raw", "--container-format", "bare", **u)
    img2 = wait_for(lambda: (i := conn.image.find_image("from-volume")) and
                    i.status == "active" and i, "image from volume active")
    assert img2.id == uploaded.get("image_id", img2.id)
    data = conn.image.download_image(img2).content
    assert data.startswith(b"fake-disk"), data[:32]
    wait_for(lambda: conn.block_storage.get_volume(vol.id).status == "available",
             "volume available after upload")

    # a server with a floating IP and the volume, deleted as it is
    server = conn.compute.create_server(name="vm1", image_id=image.id, flavor_id="1",
                                        networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, interval=0.05, wait=120)
    port = next(conn.network.ports(device_id=server.id))
    fip = conn.network.create_ip(floating_network_id=ext.id, port_id=port.id)
    assert fip.fixed_ip_address == port.fixed_ips[0]["ip_address"]
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    conn.block_storage.wait_for_status(conn.block_storage.get_volume(vol.id), "in-use",
                                       interval=0.05, wait=60)

    # the other tenant sees none of it
    assert list(peer.compute.servers()) == []
    assert list(peer.block_storage.volumes()) == []
    assert peer.network.find_network("private") is None
    assert [i.name for i in peer.image.images() if i.owner == user["project_id"]] == []
    assert list(peer.network.ips()) == []

    # admin views of the whole cloud
    zones = cloud.cli("availability", "zone", "list")
    assert {z["Zone Name"] for z in zones} >= {"nova"}, zones
    assert cloud.cli("compute", "service", "list")
    assert cloud.cli("volume", "service", "list")
    assert cloud.cli("hypervisor", "list")
    assert cloud.cli("server", "list", "--all-projects")[0]["ID"] == server.id
    limits = cloud.cli("limits", "show", "--absolute", **u)
    assert any(row["Name"] == "total_instances_used" and row["Value"] == 1 for row in limits)

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.05, wait=60)
    # the volume is detached, the floating IP released from the port, the port gone
    wait_for(lambda: conn.block_storage.get_volume(vol.id).status == "available",
             "volume available after its server was deleted")
    assert conn.block_storage.get_volume(vol.id).attachments == []
    fip = conn.network.get_ip(fip.id)
    assert fip.port_id is None and fip.fixed_ip_address is None, fip
    assert list(conn.network.ports(device_id=server.id)) == []

    conn.network.delete_ip(fip)
    conn.block_storage.delete_volume(vol)
    conn.block_storage.wait_for_delete(vol, interval=0.05, wait=60)
    conn.image.delete_image(img2)
    conn.image.delete_image(image)
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_network(net)
    usage = conn.block_storage.get_quota_set(user["project_id"], usage=True).usage
    assert usage["volumes"] == 0 and usage["gigabytes"] == 0, usage
    limits = {row["Name"]: row["Value"]
              for row in cloud.cli("limits", "show", "--absolute", **u)}
    assert limits["total_instances_used"] == 0 and limits["total_ram_used"] == 0, limits


def test_auto_ip_boot_from_volume_app_credential_and_project_cleanup(pocketstack_cloud):
    """What Ansible playbooks and CI jobs lean on: the cloud layer's auto_ip and
    boot-from-volume, an application credential reaching every service, and
    `openstack project cleanup` emptying a project across all of them."""
    cloud = pocketstack_cloud
    admin = cloud.connect()
    user = cloud.make_user()
    u = _user_kwargs(user)
    conn = cloud.connect(username=user["username"], password=user["password"],
                         project_name=user["project_name"])
    ext = admin.network.create_network(name="public", is_router_external=True)
    admin.network.create_subnet(network_id=ext.id, cidr="172.24.4.0/24", ip_version=4)

    conn.create_image("cirros", data=b"x" * 4096, disk_format="raw",
                      container_format="bare", wait=True)
    net = conn.create_network("private")
    subnet = conn.create_subnet(net.id, cidr="10.5.0.0/24", ip_version=4)
    router = conn.create_router("r1", ext_gateway_net_id=ext.id)
    conn.add_router_interface(router, subnet_id=subnet.id)
    # default security group, made for the project on first use
    assert [g.name for g in conn.network.security_groups()] == ["default"]

    conn.create_server("vm1", image="cirros", flavor="m1.tiny", network="private",
                       wait=True, auto_ip=True, timeout=60)
    conn.create_server("vm2", image="cirros", flavor="m1.tiny", network="private",
                       wait=True, auto_ip=False, boot_from_volume=True, volume_size=1,
                       terminate_volume=True, timeout=60)
    servers = {s.name: s for s in conn.list_servers()}
    assert servers["vm1"].public_v4.startswith("172.24.4."), servers["vm1"]
    assert servers["vm1"].private_v4.startswith("10.5.0.")
    assert servers["vm2"].public_v4 == "" and servers["vm2"].volumes, servers["vm2"]
    assert [v.status for v in conn.list_volumes()] == ["in-use"]
    conn.create_volume(size=1, name="spare", wait=True, timeout=60)
    conn.object_store.create_container(name="c1")
    conn.object_store.upload_object(container="c1", name="o1", data=b"x")

    cred = cloud.cli("application", "credential", "create", "ci", **u)
    import openstack

    app = openstack.connect(auth_type="v3applicationcredential", region_name="RegionOne",
                            load_yaml_config=False, load_envvars=False,
                            auth={"auth_url": cloud.auth_url,
                                  "application_credential_id": cred["ID"],
                                  "application_credential_secret": cred["Secret"]})
    try:
        assert {s.name for s in app.compute.servers()} == {"vm1", "vm2"}
        assert len(list(app.block_storage.volumes())) == 2
        assert [c.name for c in app.object_store.containers()] == ["c1"]
        assert "cirros" in [i.name for i in app.image.images()]
        assert "private" in [n.name for n in app.network.networks()]
    finally:
        app.close()

    # delete_server(delete_ips=True) releases the floating IP auto_ip made
    assert conn.delete_server("vm1", wait=True, delete_ips=True, timeout=60)
    assert list(conn.network.ips()) == []

    # everything else: `openstack project cleanup` as the project's own user
    cloud.cli("project", "cleanup", "--auto-approve", "--auth-project", parse=False, **u)
    assert list(conn.compute.servers()) == []
    wait_for(lambda: list(conn.block_storage.volumes()) == [], "volumes cleaned up")
    assert [i for i in conn.image.images() if i.owner == user["project_id"]] == []
    assert list(conn.object_store.containers()) == []
    assert [n.name for n in conn.network.networks()] == ["public"]
    assert list(conn.network.routers()) == []
    assert list(conn.network.ports(project_id=user["project_id"])) == []


def test_server_on_two_networks_security_groups_and_own_port(pocketstack_cloud):
    """A server on a port its user made plus a second network: `server add/remove
    security group` reach both ports, `server add/remove network` adds and frees a
    port, and deleting the server leaves the user's own port, unbound."""
    cloud = pocketstack_cloud
    user = cloud.make_user()
    u = _user_kwargs(user)
    conn = cloud.connect(username=user["username"], password=user["password"],
                         project_name=user["project_name"])
    conn.create_image("cirros", data=b"x" * 1024, disk_format="raw", container_format="bare",
                      wait=True)
    for name, cidr in (("private", "10.5.0.0/24"), ("second", "10.6.0.0/24"),
                       ("third", "10.7.0.0/24")):
        net = conn.create_network(name)
        conn.create_subnet(net.id, cidr=cidr, ip_version=4)
    web = conn.create_security_group("web", "web servers")
    default = conn.network.find_security_group("default")
    port = cloud.cli("port", "create", "--network", "private", "myport", **u)

    server = cloud.cli("server", "create", "vm1", "--flavor", "m1.tiny", "--image", "cirros",
                       "--port", "myport", "--network", "second", "--wait", **u)
    ports = list(conn.network.ports(device_id=server["id"]))
    assert len(ports) == 2 and port["id"] in [p.id for p in ports]

    cloud.cli("server", "add", "security", "group", "vm1", "web", parse=False, **u)
    groups = [sorted(p.security_group_ids) for p in conn.network.ports(device_id=server["id"])]
    assert groups == [sorted([web.id, default.id])] * 2, groups
    shown = cloud.cli("server", "show", "vm1", **u)
    assert sorted(g["name"] for g in shown["security_groups"]) == ["default", "web"]
    cloud.cli("server", "remove", "security", "group", "vm1", "web", parse=False, **u)
    groups = [p.security_group_ids for p in conn.network.ports(device_id=server["id"])]
    assert groups == [[default.id]] * 2, groups
    bad = cloud.cli("server", "add", "security", "group", "vm1", "nope", parse=False,
                    check=False, **u)
    assert bad.returncode != 0 and "nope" in bad.stderr

    cloud.cli("server", "add", "network", "vm1", "third", parse=False, **u)
    wait_for(lambda: "third" in cloud.cli("server", "show", "vm1", **u)["addresses"],
             "the third network in the server's addresses")
    assert len(list(conn.network.ports(device_id=server["id"]))) == 3
    cloud.cli("server", "remove", "network", "vm1", "third", parse=False, **u)
    wait_for(lambda: len(list(conn.network.ports(device_id=server["id"]))) == 2,
             "the third network's port freed")

    cloud.cli("server", "delete", "vm1", "--wait", parse=False, **u)
    kept = conn.network.get_port(port["id"])
    assert kept.device_id == "" and kept.device_owner == "", kept
    assert list(conn.network.ports(device_id=server["id"])) == []
    assert [p.id for p in conn.network.ports(project_id=user["project_id"])
            if p.device_owner.startswith("compute:")] == []
