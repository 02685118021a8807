"""Response bodies, field for field as the Block Storage v3 reference lists them
(fields that appear at a microversion are added only from it)."""

from __future__ import annotations

from pocketstack.common.db import isotime


def t(value):
    return isotime(value, micro=True, z=False)


def links(base: str, collection: str, id: str) -> list[dict]:
    return [{"href": f"{base}/{collection}/{id}", "rel": "self"},
            {"href": f"{base}/{collection}/{id}".replace("/v3/", "/", 1), "rel": "bookmark"}]


def volume_attachment(a: dict, admin: bool = True) -> dict:
    return {"id": a["volume_id"], "attachment_id": a["id"], "volume_id": a["volume_id"],
            "server_id": a["instance_uuid"],
            "host_name": a["attached_host"] if admin else None,
            "device": a["mountpoint"], "attached_at": t(a["attach_time"])}


def volume_summary(base: str, v: dict) -> dict:
    return {"id": v["id"], "name": v["name"], "links": links(base, "volumes", v["id"])}


def volume(base: str, v: dict, version: tuple[int, int], admin: bool) -> dict:
    vtype = v.get("volume_type")
    body = {
        "id": v["id"], "name": v["name"], "description": v["description"],
        "status": v["status"], "size": v["size"],
        "availability_zone": v["availability_zone"],
        "created_at": t(v["created_at"]), "updated_at": t(v["updated_at"]),
        "attachments": [volume_attachment(a, admin) for a in v.get("attachments", [])
                        if a["attach_status"] == "attached"],
        "bootable": "true" if v["bootable"] else "false",
        "encrypted": False, "multiattach": v["multiattach"],
        "metadata": v["meta"], "links": links(base, "volumes", v["id"]),
        "volume_type": vtype["name"] if vtype else None,
        "snapshot_id": v["snapshot_id"], "source_volid": v["source_volid"],
        "user_id": v["user_id"], "os-vol-tenant-attr:tenant_id": v["project_id"],
        "replication_status": None, "consistencygroup_id": None,
    }
    if v.get("image_meta"):
        body["volume_image_metadata"] = v["image_meta"]
    if admin:
        body["migration_status"] = v["migration_status"]
        body["os-vol-host-attr:host"] = v["host"]
        body["os-vol-mig-status-attr:migstat"] = v["migration_status"]
        body["os-vol-mig-status-attr:name_id"] = None
    if version >= (3, 13):
        body["group_id"] = None
    if version >= (3, 21) and admin:
        body["provider_id"] = None
    if version >= (3, 48):
        body["shared_targets"] = False
        body["service_uuid"] = v["backend"]
    return body


def snapshot(s: dict, version: tuple[int, int]) -> dict:
    body = {"id": s["id"], "name": s["name"], "description": s["description"],
            "status": s["status"], "size": s["size"], "volume_id": s["volume_id"],
            "metadata": s["meta"], "created_at": t(s["created_at"]),
            "updated_at": t(s["updated_at"]),
            "os-extended-snapshot-attributes:progress": s["progress"],
            "os-extended-snapshot-attributes:project_id": s["project_id"]}
    if version >= (3, 14):
        body["group_snapshot_id"] = None
    if version >= (3, 41):
        body["user_id"] = s["user_id"]
    return body


def volume_type(vt: dict, admin: bool = True) -> dict:
    body = {"id": vt["id"], "name": vt["name"], "description": vt["description"],
            "is_public": vt["is_public"], "os-volume-type-access:is_public": vt["is_public"],
            "qos_specs_id": None}
    if admin:
        body["extra_specs"] = vt["extra_specs"]
    else:
        # users see the specs that are not about where the volume lives
        body["extra_specs"] = {k: v for k, v in vt["extra_specs"].items()
                               if k in ("multiattach", "RESKEY:availability_zones",
                                        "replication_enabled")}
    return body


def backup(base: str, b: dict, version: tuple[int, int], detail: bool = True) -> dict:
    if not detail:
        return {"id": b["id"], "name": b["name"], "links": links(base, "backups", b["id"])}
    body = {"id": b["id"], "name": b["name"], "description": b["description"],
            "status": b["status"], "size": b["size"], "volume_id": b["volume_id"],
            "snapshot_id": b["snapshot_id"], "availability_zone": b["availability_zone"],
            "container": b["container"], "created_at": t(b["created_at"]),
            "updated_at": t(b["updated_at"]), "data_timestamp": t(b["data_timestamp"]),
            "fail_reason": b["fail_reason"], "object_count": b["object_count"],
            "has_dependent_backups": bool(b.get("has_dependent_backups")),
            "is_incremental": b["is_incremental"],
            "links": links(base, "backups", b["id"])}
    if version >= (3, 18):
        body["os-backup-project-attr:project_id"] = b["project_id"]
    if version >= (3, 43):
        body["metadata"] = b["meta"]
    return body


def attachment(a: dict, version: tuple[int, int]) -> dict:
    body = {"id": a["id"], "status": a["attach_status"], "instance": a["instance_uuid"],
            "volume_id": a["volume_id"], "attached_at": t(a["attach_time"]),
            "detached_at": t(a["detach_time"]), "attach_mode": a["attach_mode"],
            "connection_info": a["connection_info"]}
    return body


def message(base: str, m: dict) -> dict:
    return {"id": m["id"], "event_id": m["event_id"], "user_message": m["user_message"],
            "message_level": m["message_level"], "resource_type": m["resource_type"],
            "resource_uuid": m["resource_uuid"], "created_at": t(m["created_at"]),
            "guaranteed_until": t(m["expires_at"]), "request_id": m["request_id"],
            "links": links(base, "messages", m["id"])}
