"""The block storage interface compute uses in-process (what Nova's
``nova.volume.cinder.API`` does over REST), registered by the volume service
as ``cloud.services["compute"].volume_api``.

Attach (Nova's new-style flow, Cinder's attachments API)::

    vapi = cloud.services["compute"].volume_api
    vapi.check_attach(ctx, volume_id, instance_uuid)          # 400 if not attachable
    att = vapi.attachment_create(ctx, volume_id, instance_uuid)   # volume: reserved
    att = vapi.attachment_update(ctx, att["id"], connector, "/dev/vdb")
    att["connection_info"]   # {"driver_volume_type": "file"|"nfs", "data": {"path"|"url",...}}
    vapi.attachment_complete(ctx, att["id"])                 # volume: in-use
    vapi.attachment_delete(ctx, att["id"])                   # detach: available

Boot from volume (``source_type=image, destination_type=volume``)::

    vol = vapi.create(ctx, size, name="", description="", image_id=image_ref)
    vol = vapi.wait_available(ctx, vol["id"])
    ...
    vapi.delete(ctx, vol["id"])      # delete_on_termination (after detaching)

Every call takes the caller's RequestContext; another project's volume is
not found (404), as over REST.
"""

from __future__ import annotations

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.common.db import isotime


def _view(vol: dict) -> dict:
    vtype = vol.get("volume_type")
    return {"id": vol["id"], "status": vol["status"], "size": vol["size"],
            "name": vol["name"], "attach_status": vol["attach_status"],
            "multiattach": vol["multiattach"], "bootable": vol["bootable"],
            "availability_zone": vol["availability_zone"],
            "volume_type": vtype["name"] if vtype else None,
            "project_id": vol["project_id"],
            "volume_image_metadata": vol.get("image_meta") or {},
            "attachments": [{"attachment_id": a["id"], "server_id": a["instance_uuid"],
                             "status": a["attach_status"], "device": a["mountpoint"],
                             "attached_at": isotime(a["attach_time"])}
                            for a in vol.get("attachments", [])]}


def _att(att: dict) -> dict:
    return {"id": att["id"], "volume_id": att["volume_id"], "instance": att["instance_uuid"],
            "status": att["attach_status"], "attach_mode": att["attach_mode"],
            "connection_info": att["connection_info"], "mountpoint": att["mountpoint"]}


class ComputeVolumeAPI:
    def __init__(self, manager):
        self.manager = manager

    # -- reading ----------------------------------------------------------------------

    def get(self, ctx: RequestContext, volume_id: str) -> dict:
        return _view(self.manager.get_volume(ctx, volume_id))

    def check(self, *args) -> dict:
        """``check(mapping)`` or ``check(ctx, mapping)``: a block_device_mapping_v2
        entry with source_type=volume must name an attachable volume (400 otherwise,
        as Nova answers)."""
        ctx = next((a for a in args if isinstance(a, RequestContext)), None) \
            or RequestContext.internal_admin()
        mapping = next(a for a in args if isinstance(a, dict))
        volume_id = mapping.get("uuid") or mapping.get("volume_id")
        try:
            vol = self.get(ctx, volume_id)
        except errors.NotFound:
            raise errors.BadRequest(f"Block Device Mapping is Invalid: failed to get volume "
                                    f"{volume_id}.") from None
        if vol["status"] != "available" and not (vol["multiattach"] and
                                                 vol["status"] == "in-use"):
            raise errors.BadRequest(f"Block Device Mapping is Invalid: volume {volume_id} "
                                    f"status is {vol['status']}, not available.")
        return vol

    def check_attach(self, ctx: RequestContext, volume_id: str, instance_uuid: str) -> dict:
        vol = self.get(ctx, volume_id)
        if any(a["server_id"] == instance_uuid for a in vol["attachments"]):
            raise errors.BadRequest(f"Invalid volume: volume {volume_id} is already attached "
                                    f"to server {instance_uuid}.")
        if vol["status"] != "available" and not (vol["multiattach"] and
                                                 vol["status"] == "in-use"):
            raise errors.BadRequest(f"Invalid volume: volume {volume_id} status must be "
                                    f"'available', but is '{vol['status']}'.")
        return vol

    def attachments_for_instance(self, ctx: RequestContext, instance_uuid: str) -> list[dict]:
        return [_att(a) for a in self.manager.list_attachments(
            RequestContext.internal_admin(), all_tenants=True, instance_id=instance_uuid)]

    # -- attach / detach ------------------------------------------------------------------

    def attachment_create(self, ctx: RequestContext, volume_id: str, instance_uuid: str,
                          connector: dict | None = None, mountpoint: str | None = None,
                          mode: str = "rw") -> dict:
        return _att(self.manager.attachment_create(ctx, volume_id, instance_uuid, connector,
                                                   mode, mountpoint))

    def attachment_update(self, ctx: RequestContext, attachment_id: str, connector: dict,
                          mountpoint: str | None = None) -> dict:
        return _att(self.manager.attachment_update(ctx, attachment_id, connector or {},
                                                   mountpoint))

    def attachment_complete(self, ctx: RequestContext, attachment_id: str) -> None:
        self.manager.attachment_complete(ctx, attachment_id)

    def attachment_delete(self, ctx: RequestContext, attachment_id: str) -> None:
        try:
            self.manager.attachment_delete(ctx, attachment_id)
        except errors.NotFound:
            pass  # already gone: detaching is idempotent

    def initialize_connection(self, ctx: RequestContext, volume_id: str,
                              connector: dict) -> dict:
        return self.manager.initialize_connection(ctx, volume_id, connector)

    # -- boot from volume ------------------------------------------------------------------

    def create(self, ctx: RequestContext, size: int | None, name: str | None = None,
               description: str | None = None, image_id: str | None = None,
               snapshot_id: str | None = None, source_volid: str | None = None,
               volume_type: str | None = None, availability_zone: str | None = None,
               metadata: dict | None = None) -> dict:
        vol = self.manager.create_volume(
            ctx, size=size, name=name, description=description, image_id=image_id,
            snapshot_id=snapshot_id, source_volid=source_volid, volume_type=volume_type,
            availability_zone=availability_zone, metadata=metadata)
        return _view(vol)

    def wait_available(self, ctx: RequestContext, volume_id: str,
                       timeout: float = 600.0) -> dict:
        """Block until the volume is available; 409 if it went to error."""
        return _view(self.manager.wait_volume(ctx, volume_id, ("available",), timeout))

    def delete(self, ctx: RequestContext, volume_id: str) -> None:
        try:
            self.manager.delete_volume(ctx, volume_id)
        except errors.NotFound:
            pass
