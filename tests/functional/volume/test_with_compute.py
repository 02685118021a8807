"""Volumes and servers: `openstack server add/remove volume` and boot from volume."""

from __future__ import annotations

import subprocess

import pytest
from openstack import exceptions

from tests.functional.volume.conftest import wait_for, wait_status


@pytest.fixture
def cloud(pocketstack_cloud_factory, tmp_path):
    cloud = pocketstack_cloud_factory(enabled_services=["identity", "image", "volume",
                                                        "compute"])
    conn = cloud.connect()
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    cloud.image = conn.image.create_image(name="tiny", filename=str(disk),
                                          disk_format="qcow2", container_format="bare",
                                          wait=True)
    cloud.flavor = conn.compute.find_flavor("m1.tiny")
    return cloud


def boot(conn, cloud, name, **kw):
    server = conn.compute.create_server(name=name, flavor_id=cloud.flavor.id, networks="none",
                                        **kw)
    return conn.compute.wait_for_server(server, wait=120, interval=0.05)


def test_server_add_and_remove_volume(cloud):
    conn = cloud.connect()
    bs = conn.block_storage
    s1 = boot(conn, cloud, "s1", image_id=cloud.image.id)
    s2 = boot(conn, cloud, "s2", image_id=cloud.image.id)
    vol = cloud.cli("volume", "create", "--size", "1", "data")
    wait_status(lambda: bs.get_volume(vol["id"]), "available")

    cloud.cli("server", "add", "volume", "s1", "data", parse=False)
    shown = bs.get_volume(vol["id"])
    assert shown.status == "in-use"
    assert shown.attachments[0]["server_id"] == s1.id
    server = cloud.cli("server", "show", "s1")
    assert [v["id"] for v in server["volumes_attached"]] == [vol["id"]]
    # the compute side got the connection info: the volume's file
    att = conn.block_storage.get_attachment(shown.attachments[0]["attachment_id"])
    assert att.connection_info["data"]["path"].endswith(f"volume-{vol['id']}")

    # an in-use volume that is not multiattach cannot go to a second server
    with pytest.raises(exceptions.HttpException) as err:
        conn.compute.create_volume_attachment(s2, volume_id=vol["id"])
    assert err.value.status_code in (400, 409)
    # nor be deleted
    with pytest.raises(exceptions.BadRequestException):
        bs.delete_volume(vol["id"])

    cloud.cli("server", "remove", "volume", "s1", "data", parse=False)
    assert bs.get_volume(vol["id"]).status == "available"
    assert cloud.cli("server", "show", "s1")["volumes_attached"] == []


def test_boot_from_volume_and_delete_on_termination(cloud):
    conn = cloud.connect()
    bs = conn.block_storage
    server = boot(conn, cloud, "bfv", block_device_mapping=[{
        "boot_index": 0, "uuid": cloud.image.id, "source_type": "image",
        "destination_type": "volume", "volume_size": 1, "delete_on_termination": True}])
    assert server.status == "ACTIVE"
    (vol,) = list(bs.volumes())
    assert vol.status == "in-use" and vol.is_bootable
    assert vol.volume_image_metadata["image_id"] == cloud.image.id
    assert vol.attachments[0]["server_id"] == server.id
    attached = conn.compute.get_server(server.id).attached_volumes
    assert [v["id"] for v in attached] == [vol.id]
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120, interval=0.05)
    wait_for(lambda: not list(bs.volumes()), 120, what="the boot volume to be deleted")
