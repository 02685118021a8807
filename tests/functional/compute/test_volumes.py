"""Volumes and servers: attach/detach, boot from volume, delete_on_termination."""

from __future__ import annotations

import openstack.exceptions as osexc
import pytest

from tests.functional.compute.conftest import SERVICES, wait_for


def test_attach_detach_and_boot_from_volume(compute_env):
    env = compute_env(enabled_services=[*SERVICES, "volume"])
    conn = env.conn
    server = env.boot(name="with-volume")
    vol = conn.block_storage.create_volume(size=1, name="data")
    vol = conn.block_storage.wait_for_status(vol, "available", interval=0.05, wait=60)
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    vol = conn.block_storage.wait_for_status(vol, "in-use", interval=0.05, wait=60)
    atts = list(conn.compute.volume_attachments(server))
    assert [a.volume_id for a in atts] == [vol.id] and atts[0].device == "/dev/vdb"
    shown = conn.compute.get_server(server)
    assert [v["id"] for v in shown.attached_volumes] == [vol.id]
    # a volume cannot be attached twice
    with pytest.raises(osexc.BadRequestException):
        conn.compute.create_volume_attachment(server, volume_id=vol.id)
    conn.compute.delete_volume_attachment(server, vol.id)
    conn.block_storage.wait_for_status(vol, "available", interval=0.05, wait=60)
    assert list(conn.compute.volume_attachments(server)) == []

    # boot from a new volume made from the image, deleted with the server
    bfv = conn.compute.create_server(
        name="bfv", flavor_id="1", networks=[{"uuid": env.network.id}],
        block_device_mapping=[{"source_type": "image", "destination_type": "volume",
                               "uuid": env.image.id, "boot_index": 0, "volume_size": 1,
                               "delete_on_termination": True}])
    bfv = conn.compute.wait_for_server(bfv, interval=0.05, wait=120)
    root = bfv.attached_volumes[0]["id"]
    assert conn.block_storage.get_volume(root).status == "in-use"
    assert not bfv.image or not dict(bfv.image).get("id")
    conn.compute.delete_server(bfv)
    conn.compute.wait_for_delete(bfv, interval=0.05, wait=60)
    wait_for(lambda: conn.block_storage.find_volume(root) is None, "root volume deleted", 60)

    # an unknown volume in a mapping is a 400, nothing created
    with pytest.raises(osexc.BadRequestException):
        env.boot(wait=False, block_device_mapping=[
            {"source_type": "volume", "destination_type": "volume", "boot_index": 0,
             "uuid": "00000000-0000-0000-0000-000000000000"}])
    assert {s.name for s in conn.compute.servers()} == {"with-volume"}
