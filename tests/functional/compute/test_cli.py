"""The `openstack` CLI commands of the compute issue, against a small cloud."""

from __future__ import annotations


def test_server_lifecycle_with_the_cli(compute_env):
    env = compute_env()
    cli = env.cloud.cli
    cli("keypair", "create", "--public-key", _pubkey(env), "mykey")
    server = cli("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                 "--network", "private", "--key-name", "mykey", "--wait", "vm-cli")
    assert server["status"] == "ACTIVE"
    assert server["key_name"] == "mykey"
    listed = cli("server", "list", "--long")
    row = next(r for r in listed if r["ID"] == server["id"])
    assert row["Status"] == "ACTIVE" and row["Power State"] in (1, "Running")
    assert row["Flavor"] == "m1.tiny" and row["Image Name"] == "cirros"
    assert "10.0.0." in str(row["Networks"])

    cli("server", "stop", "vm-cli", parse=False)
    env.wait_status(env.conn.compute.get_server(server["id"]), "SHUTOFF")
    cli("server", "start", "vm-cli", parse=False)
    env.wait_status(env.conn.compute.get_server(server["id"]), "ACTIVE")
    cli("server", "reboot", "--hard", "--wait", "vm-cli", parse=False)
    cli("server", "resize", "--flavor", "m1.small", "--wait", "vm-cli", parse=False)
    shown = cli("server", "show", "vm-cli")
    assert shown["status"] == "VERIFY_RESIZE"
    cli("server", "resize", "confirm", "vm-cli", parse=False)
    env.wait_status(env.conn.compute.get_server(server["id"]), "ACTIVE")
    image = cli("server", "image", "create", "--name", "vm-cli-snap", "--wait", "vm-cli")
    assert image["name"] == "vm-cli-snap"
    assert env.conn.image.get_image(image["id"]).status == "active"
    # a stopped server cannot be stopped again: 409 from the API, shown by the CLI
    cli("server", "stop", "vm-cli", parse=False)
    env.wait_status(env.conn.compute.get_server(server["id"]), "SHUTOFF")
    again = cli("server", "stop", "vm-cli", parse=False, check=False)
    assert again.returncode != 0 and "409" in again.stderr
    cli("server", "delete", "--wait", "vm-cli", parse=False)
    assert cli("server", "list") == []


def test_admin_commands(compute_env):
    env = compute_env(**{"fake.hosts": 2})
    cli = env.cloud.cli
    flavor = cli("flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1",
                 "--property", "aggregate_instance_extra_specs:ssd=true", "ssd.small")
    assert "ssd='true'" in str(flavor["properties"]) or \
        flavor["properties"].get("aggregate_instance_extra_specs:ssd") == "true"
    agg = cli("aggregate", "create", "--zone", "fast", "fast-hosts")
    assert agg["availability_zone"] == "fast"
    cli("aggregate", "add", "host", "fast-hosts", "fake-2")
    cli("aggregate", "set", "--property", "ssd=true", "fast-hosts", parse=False)
    shown = cli("aggregate", "show", "fast-hosts")
    assert shown["hosts"] == ["fake-2"]
    assert "ssd" in str(shown["properties"])
    zones = {z["Zone Name"] for z in cli("availability", "zone", "list", "--compute")}
    assert {"nova", "fast"} <= zones
    hyps = cli("hypervisor", "list")
    assert {h["Hypervisor Hostname"] for h in hyps} == {"fake-1", "fake-2"}
    services = cli("compute", "service", "list")
    assert {(s["Host"], s["Zone"], s["State"]) for s in services if
            s["Binary"] == "nova-compute"} == {("fake-1", "nova", "up"),
                                               ("fake-2", "fast", "up")}
    # the flavor's extra spec sends the server to the aggregate with ssd=true
    server = cli("server", "create", "--flavor", "ssd.small", "--image", "cirros",
                 "--network", "private", "--wait", "ssd-vm")
    assert env.conn.compute.get_server(server["id"]).compute_host == "fake-2"
    zoned = cli("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                "--network", "private", "--availability-zone", "nova", "--wait", "nova-vm")
    assert env.conn.compute.get_server(zoned["id"]).compute_host == "fake-1"

    group = cli("server", "group", "create", "--policy", "anti-affinity", "spread")
    assert group["policy"] == "anti-affinity"

    tenant = env.cloud.make_user()
    cli("quota", "set", "--instances", "1", tenant["project_name"], parse=False)
    quota = env.conn.compute.get_quota_set(tenant["project_id"])
    assert quota.instances == 1
    denied = cli("aggregate", "list", parse=False, check=False,
                 username=tenant["username"], password=tenant["password"],
                 project_name=tenant["project_name"])
    assert denied.returncode != 0 and "403" in denied.stderr


def _pubkey(env) -> str:
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    path = os.path.join(env.cloud.state_path, "key.pub")
    with open(path, "w") as f:
        f.write(key + " test@host\n")
    return path
