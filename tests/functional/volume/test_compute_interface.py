"""The in-process interface compute uses (cloud.services["compute"].volume_api):
Nova's attach flow over Cinder's attachments API, and boot-from-volume's create."""

from __future__ import annotations

import pytest

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from tests.functional.volume.conftest import wait_status


def test_compute_attach_flow_and_boot_volume(pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(enabled_services=["identity", "volume", "compute"])
    vapi = cloud.cloud.services["compute"].volume_api
    assert vapi is not None
    conn = cloud.connect()
    bs = conn.block_storage
    ctx = RequestContext(project_id=conn.current_project_id, user_id=conn.current_user_id,
                         roles=["member", "reader"])
    vol = bs.create_volume(size=1, name="data")
    wait_status(lambda: bs.get_volume(vol.id), "available")
    server = "77777777-7777-7777-7777-777777777777"

    assert vapi.check({"uuid": vol.id, "source_type": "volume"})["id"] == vol.id
    vapi.check_attach(ctx, vol.id, server)
    att = vapi.attachment_create(ctx, vol.id, server)
    assert bs.get_volume(vol.id).status == "reserved"
    att = vapi.attachment_update(ctx, att["id"], {"host": "fake-host-1"}, "/dev/vdb")
    info = att["connection_info"]
    assert info["driver_volume_type"] == "file" and info["data"]["path"].endswith(vol.id)
    vapi.attachment_complete(ctx, att["id"])
    shown = bs.get_volume(vol.id)
    assert shown.status == "in-use"
    assert shown.attachments[0]["server_id"] == server
    assert shown.attachments[0]["device"] == "/dev/vdb"
    assert [a["id"] for a in vapi.attachments_for_instance(ctx, server)] == [att["id"]]
    with pytest.raises(errors.BadRequest):
        vapi.check_attach(ctx, vol.id, "88888888-8888-8888-8888-888888888888")
    vapi.attachment_delete(ctx, att["id"])
    vapi.attachment_delete(ctx, att["id"])  # idempotent
    assert bs.get_volume(vol.id).status == "available"

    # another project's volume is not found
    other = RequestContext(project_id="someone-else", user_id="u", roles=["member"])
    with pytest.raises(errors.NotFound):
        vapi.attachment_create(other, vol.id, server)

    # boot from volume: create, wait, and delete on termination
    boot = vapi.create(ctx, 1, name="root")
    boot = vapi.wait_available(ctx, boot["id"])
    assert boot["status"] == "available"
    vapi.delete(ctx, boot["id"])
    bs.wait_for_delete(bs.get_volume(boot["id"]), interval=0.05, wait=60)
