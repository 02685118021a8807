"""Volume actions: legacy attach/detach, admin-only actions, bootable, revert, messages."""

from __future__ import annotations

import os

import pytest
from openstack import exceptions

from tests.functional.volume.conftest import pattern_at, qemu_io, wait_for, wait_status


def user_conn(cloud):
    user = cloud.make_user()
    return cloud.connect(username=user["username"], password=user["password"],
                         project_name=user["project_name"])


def test_legacy_attach_detach_and_admin_actions(volume_cloud):
    conn = user_conn(volume_cloud)
    bs = conn.block_storage
    vol = bs.create_volume(size=1)
    wait_status(lambda: bs.get_volume(vol.id), "available")
    bs.attach_volume(vol, "/dev/vdb", instance="33333333-3333-3333-3333-333333333333")
    vol = bs.get_volume(vol.id)
    assert vol.status == "in-use" and vol.attachments[0]["device"] == "/dev/vdb"
    with pytest.raises(exceptions.BadRequestException):
        bs.attach_volume(vol, "/dev/vdc", instance="44444444-4444-4444-4444-444444444444")
    bs.detach_volume(vol, vol.attachments[0]["attachment_id"])
    assert bs.get_volume(vol.id).status == "available"

    # bootable is the owner's to set; reset-status is the admin's
    bs.set_volume_bootable_status(vol, True)
    assert bs.get_volume(vol.id).is_bootable is True
    with pytest.raises(exceptions.ForbiddenException):
        bs.reset_volume_status(vol, status="error")
    admin = volume_cloud.connect().block_storage
    admin.reset_volume_status(vol.id, status="error", attach_status="detached")
    assert bs.get_volume(vol.id).status == "error"
    # a volume in error can still be deleted by its owner
    bs.delete_volume(vol)
    bs.wait_for_delete(vol, interval=0.05, wait=60)


def test_revert_to_latest_snapshot(volume_cloud):
    bs = volume_cloud.connect().block_storage
    vol = bs.create_volume(size=1)
    wait_status(lambda: bs.get_volume(vol.id), "available")
    mgr = volume_cloud.cloud.services["volume"].manager

    def active():
        from pocketstack.common.context import RequestContext

        loc = mgr.get_volume(RequestContext.internal_admin(), vol.id)["provider_location"]
        return os.path.join(loc["pool"], loc["chain"][-1][0])

    qemu_io(active(), "write -P 0x41 0 64k")
    snap = bs.create_snapshot(volume_id=vol.id)
    wait_status(lambda: bs.get_snapshot(snap.id), "available")
    qemu_io(active(), "write -P 0x42 0 64k")
    bs.revert_volume_to_snapshot(vol, snap)
    wait_for(lambda: bs.get_volume(vol.id).status == "available")
    assert pattern_at(active(), 0, 65536, 0x41)


def test_volume_in_error_has_a_message(pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(enabled_services=["identity", "volume"])
    conn = cloud.connect()
    bs = conn.block_storage
    bs.create_type(name="elsewhere", extra_specs={"volume_backend_name": "missing"})
    vol = bs.create_volume(size=1, volume_type="elsewhere")
    wait_status(lambda: bs.get_volume(vol.id), "error")
    import requests

    r = requests.get(bs.get_endpoint() + "/messages", headers={
        "X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "volume 3.3"})
    assert r.status_code == 200
    (msg,) = [m for m in r.json()["messages"] if m["resource_uuid"] == vol.id]
    assert "No valid backend" in msg["user_message"] and msg["message_level"] == "ERROR"
    # before 3.3 the messages API does not exist
    r = requests.get(bs.get_endpoint() + "/messages", headers={"X-Auth-Token": conn.auth_token})
    assert r.status_code == 404
