"""The ``evacuate`` server action: rebuild a server on another host when its
own host is down (or forced down), as Nova does.

Before 2.14 the request says ``onSharedStorage`` and the answer carries the
new ``adminPass``; 2.29-2.67 accept ``force`` (with a host); from 2.95 the
evacuated server is left stopped. The source host's claim is released, the
ports are bound to the destination, the server's console tokens (of the old
host) are deleted, and the destination's agent builds the guest again from
the server's image.
"""

from __future__ import annotations

import sqlalchemy as sa
from starlette.responses import Response

from pocketstack.common import errors
from pocketstack.common.http import JSONResponse
from pocketstack.common.validation import validate
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.conductor import NoValidHost, row
from pocketstack.compute.console.tokens import delete_for_instance
from pocketstack.compute.integration import as_context, context_dict


def schema(version: tuple[int, int]) -> dict:
    props = {"host": {"type": "string", "minLength": 1, "maxLength": 255},
             "adminPass": {"type": "string"}}
    required = []
    if version < (2, 14):
        props["onSharedStorage"] = {"type": ["boolean", "string"]}
        required.append("onSharedStorage")
    elif (2, 29) <= version < (2, 68):
        props["force"] = {"type": ["boolean", "string"]}
    return {"type": "object", "properties": {"evacuate": {
        "type": "object", "properties": props, "required": required,
        "additionalProperties": False}}, "required": ["evacuate"],
        "additionalProperties": False}


def _bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes", "on", "t", "y"):
        return True
    if lowered in ("false", "0", "no", "off", "f", "n"):
        return False
    raise errors.BadRequest(f"Invalid input for field/attribute {name}. Value: {value}.")


def evacuate(h, req, inst: dict, body: dict):
    from pocketstack.compute.actions import conflict, transition
    from pocketstack.compute.api import _admin_pass

    c = h.conductor
    ctx = req.context
    version = req.state["version"]
    h.policy.enforce(ctx, "os_compute_api:os-evacuate", {"project_id": inst["project_id"]})
    args = validate(schema(version), body)["evacuate"]
    host = args.get("host")
    shared = _bool(args["onSharedStorage"], "onSharedStorage") if version < (2, 14) else False
    if "force" in args and _bool(args["force"], "force") and not host:
        raise errors.BadRequest("Can't force to a non-provided destination")
    if shared and "adminPass" in args:
        raise errors.BadRequest("admin password can't be changed on existing disk")
    password = args.get("adminPass") or (None if shared else _admin_pass())
    if host is not None:
        with c.db.reader() as s:
            known = s.execute(sa.select(m.service.c.id).where(
                m.service.c.host == host,
                m.service.c.binary == "pocketstack-compute")).first()
        if known is None:
            raise errors.NotFound(f"Compute host {host} not found.")
    if inst["host"] == host:
        raise errors.BadRequest("The target host can't be the same one.")
    if inst["vm_state"] not in (states.ACTIVE, states.STOPPED, states.ERROR) \
            or inst["task_state"] is not None:
        raise conflict(inst, "evacuate")
    source = inst["host"]
    if source and c.host_up(source):
        raise errors.BadRequest(f"Compute service of {source} is still in use.")
    target = transition(h, inst, "evacuate", [states.ACTIVE, states.STOPPED, states.ERROR],
                        "rebuilding")
    c.record_action(ctx, target["uuid"], "evacuate")

    def place(s):
        return c.schedule(s, target, target["flavor"], ignore={source} if source else None,
                          force_host=host)

    try:
        dest = c.db.transaction(place)
    except NoValidHost as exc:  # as Nova: the server stays as it was, the action failed
        c.update_instance(target["uuid"], {"task_state": None})
        c.finish_action(target["uuid"], "Error", None, str(exc))
        return _answer(version, shared, password)

    def move(s):
        c.release(s, source, target["flavor"])
        zone = c.host_zone(s, dest)
        delete_for_instance(s, target["uuid"])
        s.execute(m.instance.update().where(m.instance.c.uuid == target["uuid"]).values(
            host=dest, node=dest, availability_zone=zone))
        return row(s.execute(sa.select(m.instance).where(
            m.instance.c.uuid == target["uuid"])).first())

    moved = c.db.transaction(move)
    c.record_migration(ctx, moved, "evacuation", source, dest, moved["flavor"])
    c.set_migration_status(moved["uuid"], "migrating")
    c.network.bind_host(as_context(ctx, moved["project_id"], moved["user_id"]),
                        moved["network_info"] or [], dest)
    image = {}
    if moved["image_ref"]:
        try:
            image = c.images.get(ctx, moved["image_ref"])
        except errors.ApiError:
            image = {}
    c.agents.cast(context_dict(ctx), dest, "evacuate_instance", instance=c.agent_view(moved),
                  image_meta=image, admin_password=password, stopped=version >= (2, 95))
    return _answer(version, shared, password)


def _answer(version: tuple[int, int], shared: bool, password: str | None) -> Response:
    if version < (2, 14):  # None on shared storage: the disk keeps its password
        return JSONResponse({"adminPass": None if shared else password})
    return Response(status_code=200)
