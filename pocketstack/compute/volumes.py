"""Volumes of servers: attach/detach (os-volume_attachments) and boot from volume.

Block storage registers ``ComputeService.volume_api`` (see
``pocketstack/volume/compute_api.py``); compute drives Cinder's attachment
flow with it: reserve (``attachment_create``), hand the host's connector
over (``attachment_update`` -> connection_info), plug the volume into the
guest through the host's agent, then ``attachment_complete``. Detach and
server delete run ``attachment_delete`` (and delete the volumes marked
``delete_on_termination``).
"""

from __future__ import annotations

import logging
import uuid

from pocketstack.common import errors
from pocketstack.compute import states
from pocketstack.compute.integration import as_context, context_dict

LOG = logging.getLogger(__name__)
ATTACHABLE = (states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED,
              states.SHELVED, states.SHELVED_OFFLOADED, states.RESIZED)


def connector(host: str) -> dict:
    return {"host": host, "ip": "127.0.0.1", "initiator": None, "platform": "x86_64",
            "os_type": "linux", "multipath": False}


def next_device(inst: dict) -> str:
    used = {b.get("device_name") for b in inst["block_devices"] or []}
    used.add(inst.get("root_device_name") or "/dev/vda")
    used.add("/dev/vda")
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if f"/dev/vd{letter}" not in used:
            return f"/dev/vd{letter}"
    raise errors.BadRequest("No free disk device names for prefix 'vd'")


def api(service):
    if service.volume_api is None:
        return None
    return service.volume_api


def attach(service, ctx, inst: dict, volume_id: str, device: str | None,
           delete_on_termination: bool = False, tag: str | None = None) -> dict:
    vapi = api(service)
    if vapi is None:
        raise errors.NotFound(f"Volume {volume_id} could not be found.")
    if inst["vm_state"] not in ATTACHABLE or inst["task_state"] is not None:
        raise errors.Conflict(f"Cannot 'attach_volume' instance {inst['uuid']} while it is "
                              f"in vm_state {inst['vm_state']}")
    if any(b.get("volume_id") == volume_id for b in inst["block_devices"] or []):
        raise errors.BadRequest(f"Invalid volume: volume {volume_id} is already attached to "
                                f"server {inst['uuid']}.")
    vapi.check_attach(ctx, volume_id, inst["uuid"])
    device = device or next_device(inst)
    att = vapi.attachment_create(ctx, volume_id, inst["uuid"])
    conductor = service.conductor
    try:
        if inst["host"]:
            att = vapi.attachment_update(ctx, att["id"], connector(inst["host"]), device)
            conductor.agents.call(context_dict(ctx), inst["host"], "attach_volume",
                                  instance=conductor.agent_view(inst),
                                  connection_info=att["connection_info"], mountpoint=device)
        bdm = {"volume_id": volume_id, "device_name": device, "attachment_id": att["id"],
               "bdm_uuid": str(uuid.uuid4()), "delete_on_termination": delete_on_termination,
               "tag": tag, "source_type": "volume", "boot_index": None,
               "connection_info": att.get("connection_info")}
        conductor.update_instance(inst["uuid"], {
            "block_devices": [*(inst["block_devices"] or []), bdm]})
        vapi.attachment_complete(ctx, att["id"])
    except Exception:
        vapi.attachment_delete(ctx, att["id"])
        raise
    conductor.record_action(ctx, inst["uuid"], "attach_volume")
    return bdm


def detach(service, ctx, inst: dict, volume_id: str) -> None:
    bdm = next((b for b in inst["block_devices"] or [] if b.get("volume_id") == volume_id),
               None)
    if bdm is None:
        raise errors.NotFound(f"Volume {volume_id} is not attached to {inst['uuid']}")
    if bdm.get("boot_index") == 0:
        raise errors.BadRequest("Cannot detach a root device volume")
    if inst["task_state"] is not None:
        raise errors.Conflict(f"Cannot 'detach_volume' instance {inst['uuid']} while it is "
                              f"in task_state {inst['task_state']}")
    conductor = service.conductor
    if inst["host"]:
        conductor.agents.call(context_dict(ctx), inst["host"], "detach_volume",
                              instance=conductor.agent_view(inst),
                              connection_info=bdm.get("connection_info") or {},
                              mountpoint=bdm.get("device_name"))
    conductor.update_instance(inst["uuid"], {"block_devices": [
        b for b in inst["block_devices"] if b.get("volume_id") != volume_id]})
    vapi = api(service)
    if vapi is not None and bdm.get("attachment_id"):
        vapi.attachment_delete(ctx, bdm["attachment_id"])
    conductor.record_action(ctx, inst["uuid"], "detach_volume")


def release_all(service, inst: dict) -> None:
    """The server is gone: detach its volumes, delete those marked for it."""
    vapi = api(service)
    if vapi is None:
        return
    ctx = as_context(None, inst["project_id"], inst["user_id"])
    for bdm in inst["block_devices"] or []:
        if not bdm.get("volume_id"):
            continue
        try:
            if bdm.get("attachment_id"):
                vapi.attachment_delete(ctx, bdm["attachment_id"])
            if bdm.get("delete_on_termination"):
                vapi.delete(ctx, bdm["volume_id"])
        except Exception:  # noqa: BLE001 - the delete of the server goes on
            LOG.exception("releasing volume %s of %s", bdm.get("volume_id"), inst["uuid"])


def prepare_boot_volumes(service, ctx, inst: dict) -> list[dict]:
    """Before spawning: create (image -> volume) and attach the server's volumes."""
    vapi = api(service)
    bdms = list(inst["block_devices"] or [])
    if vapi is None or not bdms:
        return bdms
    result = []
    for bdm in bdms:
        if not bdm.get("volume_id") and bdm.get("source_type") not in ("image", "blank"):
            result.append(bdm)
            continue
        bdm = dict(bdm)
        if bdm.get("attachment_id"):
            result.append(bdm)
            continue
        if not bdm.get("volume_id"):
            vol = vapi.create(ctx, int(bdm.get("volume_size") or inst["flavor"]["disk"] or 1),
                              name="", image_id=bdm.get("image_id"))
            vol = vapi.wait_available(ctx, vol["id"])
            bdm["volume_id"] = vol["id"]
        device = bdm.get("device_name") or ("/dev/vda" if bdm.get("boot_index") == 0
                                            else next_device({**inst, "block_devices":
                                                              result}))
        att = vapi.attachment_create(ctx, bdm["volume_id"], inst["uuid"])
        att = vapi.attachment_update(ctx, att["id"], connector(inst["host"]), device)
        vapi.attachment_complete(ctx, att["id"])
        bdm.update(attachment_id=att["id"], connection_info=att.get("connection_info"),
                   device_name=device, bdm_uuid=bdm.get("bdm_uuid") or str(uuid.uuid4()))
        result.append(bdm)
    return result
