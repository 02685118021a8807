"""The metadata service: OpenStack and EC2 formats, signed instance id or address."""

from __future__ import annotations

import base64

import httpx

from pocketstack.compute.metadata import sign

SECRET = "s3cret-proxy"


def test_metadata_openstack_and_ec2_formats(compute_env):
    env = compute_env(**{"neutron.metadata_proxy_shared_secret": SECRET})
    conn = env.conn
    conn.compute.create_keypair(name="k1", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO"
                                "8y0b6Gk3t0d6Wq0JpQ9vQ1uP3Kq3Tn7Q5b7d5R2ZrB test")
    user_data = base64.b64encode(b"#cloud-config\nhostname: md\n").decode()
    server = env.boot(name="md-vm", key_name="k1", user_data=user_data,
                      metadata={"role": "db"})
    url = env.cloud.url + "/metadata"
    signed = {"X-Instance-ID": server.id, "X-Instance-ID-Signature": sign(SECRET, server.id),
              "X-Tenant-ID": server.project_id}

    assert "latest" in httpx.get(url + "/openstack").text
    md = httpx.get(url + "/openstack/latest/meta_data.json", headers=signed).json()
    assert md["uuid"] == server.id and md["meta"] == {"role": "db"}
    assert md["public_keys"]["k1"].startswith("ssh-ed25519")
    assert md["hostname"] == "md-vm"
    ud = httpx.get(url + "/openstack/latest/user_data", headers=signed)
    assert ud.content == b"#cloud-config\nhostname: md\n"
    net = httpx.get(url + "/openstack/latest/network_data.json", headers=signed).json()
    address = server.addresses["private"][0]["addr"]
    assert net["networks"][0]["ip_address"] == address
    assert net["networks"][0]["netmask"] == "255.255.255.0"
    assert httpx.get(url + "/openstack/latest/vendor_data2.json", headers=signed).json() == {}

    # a wrong signature is refused
    bad = dict(signed, **{"X-Instance-ID-Signature": "0" * 64})
    assert httpx.get(url + "/openstack/latest/meta_data.json", headers=bad).status_code == 403

    # EC2 format, the instance found by its address on its network
    by_ip = {"X-Forwarded-For": address, "X-Neutron-Network-ID": env.network.id}
    listing = httpx.get(url + "/latest/meta-data/", headers=by_ip).text.split("\n")
    assert "instance-id" in listing and "public-keys/" in listing
    assert httpx.get(url + "/latest/meta-data/local-ipv4", headers=by_ip).text == address
    assert httpx.get(url + "/latest/meta-data/placement/availability-zone",
                     headers=by_ip).text == "nova"
    key = httpx.get(url + "/latest/meta-data/public-keys/0/openssh-key", headers=by_ip).text
    assert key.startswith("ssh-ed25519")
    assert httpx.get(url + "/2009-04-04/user-data", headers=by_ip).content.startswith(
        b"#cloud-config")
    # another network's address finds nothing
    other = {"X-Forwarded-For": "10.9.9.9", "X-Neutron-Network-ID": env.network.id}
    assert httpx.get(url + "/latest/meta-data/", headers=other).status_code == 404
