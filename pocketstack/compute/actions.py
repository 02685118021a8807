"""POST /servers/{id}/action: the state machine of server actions."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.responses import Response

from pocketstack.common import errors
from pocketstack.common.http import JSONResponse
from pocketstack.compute import models as m
from pocketstack.compute import states, views
from pocketstack.compute.conductor import NoValidHost, StateConflict
from pocketstack.compute.console.api import ACTIONS as CONSOLE_ACTIONS
from pocketstack.compute.integration import as_context, context_dict

A, S, P, SU, R, RS, E = (states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED,
                         states.RESCUED, states.RESIZED, states.ERROR)
SH, SHO = states.SHELVED, states.SHELVED_OFFLOADED

# action -> (allowed vm_states, task_state set, agent method, Nova's action name)
SIMPLE = {
    "os-stop": ([A, E], "powering-off", "stop_instance", "stop"),
    "os-start": ([S], "powering-on", "start_instance", "start"),
    "pause": ([A], "pausing", "pause_instance", "pause"),
    "unpause": ([P], "unpausing", "unpause_instance", "unpause"),
    "suspend": ([A, S], "suspending", "suspend_instance", "suspend"),
    "resume": ([SU], "resuming", "resume_instance", "resume"),
    "rescue": ([A, S, E], "rescuing", "rescue_instance", "rescue"),
    "unrescue": ([R], "unrescuing", "unrescue_instance", "unrescue"),
}


def conflict(inst: dict, action: str) -> errors.Conflict:
    if inst["task_state"] is not None:
        return errors.Conflict(f"Cannot '{action}' instance {inst['uuid']} while it is in "
                               f"task_state {inst['task_state']}")
    return errors.Conflict(f"Cannot '{action}' instance {inst['uuid']} while it is in "
                           f"vm_state {inst['vm_state']}")


def transition(h, inst: dict, action: str, allowed: list[str], task: str | None,
               extra: dict | None = None) -> dict:
    try:
        return h.conductor.update_instance(inst["uuid"], {"task_state": task, **(extra or {})},
                                           expected_vm_state=allowed,
                                           expected_task_state=[None])
    except StateConflict as exc:
        raise conflict(exc.instance, action) from None


def run_action(h, req):
    body = req.json()
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.BadRequest("There is no such action: "
                                f"{','.join(body) if isinstance(body, dict) else body}")
    name, args = next(iter(body.items()))
    inst = h.instance(req)
    ctx = req.context
    c = h.conductor
    cdict = context_dict(ctx)
    policy = h.policy
    v = req.state["version"]
    if name in CONSOLE_ACTIONS:
        return h.service.remote_consoles.action(req, inst, name, body)
    if name not in ("unlock", "os-resetState", "lock") and inst["locked"] and not ctx.is_admin:
        raise errors.Conflict(f"Instance {inst['uuid']} is locked")

    def cast(method: str, target: dict, host: str | None = None, **kw):
        c.record_action(ctx, target["uuid"], nova_name)
        c.agents.cast(cdict, host or target["host"], method,
                      instance=c.agent_view(target), **kw)

    nova_name = name
    if name in SIMPLE:
        allowed, task, method, nova_name = SIMPLE[name]
        if name == "rescue" and v < (2, 87) and inst["block_devices"]:
            pass
        target = transition(h, inst, nova_name, allowed, task)
        cast(method, target, **({"rescue_password": (args or {}).get("adminPass")}
                                if name == "rescue" else {}))
        return None
    if name == "reboot":
        kind = str((args or {}).get("type", "")).upper()
        if kind not in ("SOFT", "HARD"):
            raise errors.BadRequest("Invalid input for field/attribute type. Value: "
                                    f"{kind}. '{kind}' is not one of ['HARD', 'Hard', 'hard', "
                                    "'SOFT', 'Soft', 'soft']")
        nova_name = "reboot"
        allowed = [A, S, P, SU, E] if kind == "HARD" else [A]
        target = transition(h, inst, "reboot", allowed,
                            "rebooting_hard" if kind == "HARD" else "rebooting")
        cast("reboot_instance", target, reboot_type=kind)
        return None
    if name in ("lock", "unlock"):
        if name == "unlock" and inst["locked"] and inst["locked_by"] == "admin" \
                and not ctx.is_admin:
            policy.enforce(ctx, "os_compute_api:os-lock-server:unlock:unlock_override")
        reason = (args or {}).get("locked_reason") if name == "lock" and v >= (2, 73) else None
        c.update_instance(inst["uuid"], {
            "locked": name == "lock", "locked_by": ("admin" if ctx.is_admin else "owner")
            if name == "lock" else None, "locked_reason": reason})
        c.record_action(ctx, inst["uuid"], name)
        return None
    if name == "os-resetState":
        policy.enforce(ctx, "os_compute_api:os-admin-actions:reset_state")
        state = (args or {}).get("state")
        if state not in ("active", "error"):
            raise errors.BadRequest("Invalid input for field/attribute state.")
        c.update_instance(inst["uuid"], {"vm_state": state, "task_state": None})
        return None
    if name in ("forceDelete", "restore"):
        if name == "restore":
            raise conflict(inst, "restore")
        h.delete(req, inst, force=True)
        return None
    if name == "evacuate":
        from pocketstack.compute.evacuate import evacuate

        return evacuate(h, req, inst, body)
    if name == "createImage":
        return create_image(h, req, inst, args or {})
    if name == "rebuild":
        return rebuild(h, req, inst, args or {})
    if name in ("resize", "migrate"):
        return resize(h, req, inst, name, args or {})
    if name == "confirmResize":
        target = transition(h, inst, "confirmResize", [RS], None)
        with c.db.session() as s:
            c.release(s, target["old_host"], target["old_flavor"], vm=False)
        target = c.update_instance(target["uuid"], {"old_flavor": None, "old_host": None})
        c.record_action(ctx, target["uuid"], "confirmResize")
        c.set_migration_status(target["uuid"], "confirmed")
        c.agents.cast(cdict, inst["old_host"] or target["host"], "confirm_resize",
                      instance=c.agent_view(target))
        return Response(status_code=204)
    if name == "revertResize":
        target = transition(h, inst, "revertResize", [RS], "resize_reverting")
        old_flavor = target["old_flavor"] or target["flavor"]
        with c.db.session() as s:
            c.release(s, target["host"], target["flavor"], vm=True)
            s.execute(m.compute_node.update().where(
                m.compute_node.c.host == target["old_host"]).values(
                running_vms=m.compute_node.c.running_vms + 1))
        view = c.agent_view(target)
        c.update_instance(target["uuid"], {
            "flavor": old_flavor, "old_flavor": None, "new_flavor": None,
            "vcpus": old_flavor["vcpus"], "memory_mb": old_flavor["ram"],
            "root_gb": old_flavor["disk"] + old_flavor.get("ephemeral", 0)})
        c.record_action(ctx, target["uuid"], "revertResize")
        c.set_migration_status(target["uuid"], "reverted")
        c.agents.cast(cdict, target["host"], "revert_resize", instance=view)
        return None
    if name == "os-migrateLive":
        policy.enforce(ctx, "os_compute_api:os-migrate-server:migrate_live")
        return live_migrate(h, req, inst, args or {})
    if name == "shelve":
        target = transition(h, inst, "shelve", [A, S, P, SU], "shelving")
        with c.db.session() as s:
            c.release(s, target["host"], target["flavor"])
        cast("shelve_offload_instance", target)
        return None
    if name == "shelveOffload":
        raise conflict(inst, "shelveOffload")
    if name == "unshelve":
        target = transition(h, inst, "unshelve", [SH, SHO], "unshelving")
        return unshelve(h, req, target, args)
    if name == "os-getConsoleOutput":
        if inst["vm_state"] not in (A, S, P, SU, R, RS, E) or not inst["host"]:
            raise conflict(inst, "get_console_output")
        length = (args or {}).get("length")
        if length is not None:
            try:
                length = int(length)
            except (TypeError, ValueError):
                raise errors.BadRequest("Invalid input for field/attribute length.") from None
            if length < -1:
                raise errors.BadRequest("Invalid input for field/attribute length.")
            if length == -1:
                length = None
        out = c.agents.call(cdict, inst["host"], "get_console_output",
                            instance=c.agent_view(inst), length=length)
        return JSONResponse({"output": out}, status_code=200)
    if name in ("addSecurityGroup", "removeSecurityGroup"):
        group = (args or {}).get("name")
        if not group:
            raise errors.BadRequest("Security group name cannot be empty")
        if c.network.manager is not None:
            c.network.security_group_id(ctx, group)  # 400 when unknown
        groups = list(inst["security_groups"] or [])
        if name == "addSecurityGroup":
            if group in groups:
                raise errors.BadRequest(f"Security group {group} is already associated with "
                                        "the instance")
            groups.append(group)
        else:
            if group not in groups:
                raise errors.BadRequest(f"Security group {group} not associated with the "
                                        "instance")
            groups.remove(group)
        c.network.change_security_group(ctx, inst["uuid"], group,
                                        add=name == "addSecurityGroup")
        c.update_instance(inst["uuid"], {"security_groups": groups})
        return None
    if name == "changePassword":
        if not isinstance(args, dict) or not args.get("adminPass"):
            raise errors.BadRequest("'adminPass' is a required property")
        if inst["vm_state"] != A:
            raise conflict(inst, "changePassword")
        return None
    if name == "trigger_crash_dump":
        if v < (2, 17):
            raise errors.NotFound("The resource could not be found.")
        if args is not None:
            raise errors.BadRequest("Invalid input for field/attribute trigger_crash_dump. "
                                    f"Value: {args}. {args!r} is not of type 'null'")
        if inst["vm_state"] not in (A, P, R, RS, E) or inst["task_state"] is not None:
            raise conflict(inst, "trigger_crash_dump")
        cast("trigger_crash_dump", inst)  # the outcome is the action's event
        return None
    raise errors.BadRequest(f"There is no such action: {name}")


def create_image(h, req, inst, args):
    c = h.conductor
    ctx = req.context
    name = args.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise errors.BadRequest("Invalid input for field/attribute name.")
    metadata = args.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise errors.BadRequest("Invalid input for field/attribute metadata.")
    if inst["vm_state"] not in (A, S, P, SU) or inst["task_state"] is not None:
        raise conflict(inst, "createImage")
    base = None
    if inst["image_ref"]:
        try:
            base = c.images.get(ctx, inst["image_ref"])
        except errors.ApiError:
            base = None
    image_id = c.images.create_snapshot(ctx, name, inst, base, metadata)
    target = transition(h, inst, "createImage", [A, S, P, SU], "image_snapshot")
    c.record_action(ctx, target["uuid"], "createImage")
    c.agents.cast(context_dict(ctx), target["host"], "snapshot_instance",
                  instance=c.agent_view(target), image_id=image_id)
    if req.state["version"] >= (2, 45):
        return JSONResponse({"image_id": image_id}, status_code=202)
    return Response(status_code=202, headers={
        "Location": f"{req.base_url.rsplit('/', 1)[0]}/image/v2/images/{image_id}"})


def rebuild(h, req, inst, args):
    c = h.conductor
    ctx = req.context
    image_ref = args.get("imageRef")
    if not isinstance(image_ref, str) or not image_ref:
        raise errors.BadRequest("Invalid input for field/attribute rebuild. 'imageRef' is a "
                                "required property")
    image_ref = image_ref.rstrip("/").split("/")[-1]
    image = c.images.get(ctx, image_ref)
    if image["status"] != "active":
        raise errors.BadRequest(f"Image {image_ref} is not active.")
    extra = {"image_ref": image_ref}
    if "name" in args:
        extra["display_name"] = args["name"]
    if "metadata" in args:
        extra["meta"] = args["metadata"]
    if "description" in args and req.state["version"] >= (2, 19):
        extra["description"] = args["description"]
    sysmeta = dict(inst["system_metadata"] or {})
    sysmeta["image_properties"] = {k: str(v) for k, v in (image["properties"] or {}).items()}
    extra["system_metadata"] = sysmeta
    target = transition(h, inst, "rebuild", [A, S, E], "rebuilding", extra)
    c.record_action(ctx, target["uuid"], "rebuild")
    c.agents.cast(context_dict(ctx), target["host"], "rebuild_instance",
                  instance=c.agent_view(target), image_meta=image)
    view = h.view(req, [target["uuid"]]).detail(target, show=True)
    view["adminPass"] = args.get("adminPass") or "rebuild-pass"
    return JSONResponse({"server": view}, status_code=202)


def resize(h, req, inst, name, args):
    c = h.conductor
    ctx = req.context
    if name == "migrate":
        h.policy.enforce(ctx, "os_compute_api:servers:migrate")
        new = inst["flavor"]
        force_host = (args or {}).get("host") if req.state["version"] >= (2, 56) else None
    else:
        ref = args.get("flavorRef")
        if ref is None:
            raise errors.BadRequest("Invalid input for field/attribute resize. 'flavorRef' is "
                                    "a required property")
        flavor = h.find_flavor(ctx, str(ref).rstrip("/").split("/")[-1], status=400)
        new = views.flavor_snapshot(flavor)
        force_host = None
        if new["flavorid"] == inst["flavor"]["flavorid"]:
            raise errors.BadRequest("When resizing, instances must change flavor!")
        if new["disk"] < inst["flavor"]["disk"] and not inst["block_devices"]:
            raise errors.BadRequest("Resize error: Unable to resize disk down.")
        cur = inst["flavor"]
        limits = c.quota_limits(inst["project_id"])
        with c.db.reader() as s:
            used = c.usage(s, inst["project_id"])
        for res, delta in (("cores", new["vcpus"] - cur["vcpus"]),
                           ("ram", new["ram"] - cur["ram"])):
            if delta > 0 and limits[res] >= 0 and used[res] + delta > limits[res]:
                raise errors.Forbidden(f"Quota exceeded for {res}: Requested {delta}, but "
                                       f"already used {used[res]} of {limits[res]} {res}")
    target = transition(h, inst, name, [A, S], "resize_prep")
    source = target["host"]

    def place(s):
        ignore = {source} if name == "migrate" else set()
        return c.schedule(s, target, new, ignore=ignore, force_host=force_host)

    try:
        dest = c.db.transaction(place)
    except NoValidHost as exc:
        c.update_instance(target["uuid"], {"task_state": None})
        c.record_action(ctx, target["uuid"], name, message=str(exc))
        raise errors.BadRequest(str(exc)) if name == "resize" else \
            errors.BadRequest(f"No valid host was found. {exc}") from None
    with c.db.session() as s:
        s.execute(m.compute_node.update().where(m.compute_node.c.host == source).values(
            running_vms=m.compute_node.c.running_vms - 1))
    target = c.update_instance(target["uuid"], {
        "old_flavor": target["flavor"], "new_flavor": new, "old_host": source,
        "flavor": new, "vcpus": new["vcpus"], "memory_mb": new["ram"],
        "root_gb": new["disk"] + new.get("ephemeral", 0), "task_state": "resize_migrating"})
    c.record_action(ctx, target["uuid"], name)
    c.record_migration(ctx, {**target, "flavor": target["old_flavor"]},
                       "resize" if name == "resize" else "migration", source, dest, new)
    c.agents.cast(context_dict(ctx), source, "resize_instance",
                  instance=c.agent_view(target), dest_host=dest, new_flavor=new)
    return None


def live_migrate(h, req, inst, args):
    c = h.conductor
    ctx = req.context
    host = args.get("host")
    target = transition(h, inst, "os-migrateLive", [A, P], "migrating")
    source = target["host"]

    def place(s):
        return c.schedule(s, target, target["flavor"], ignore={source},
                          force_host=host or None)

    try:
        dest = c.db.transaction(place)
    except NoValidHost as exc:
        c.update_instance(target["uuid"], {"task_state": None})
        if host:
            raise errors.BadRequest(f"Compute service of {host} is unavailable at this "
                                    "time.") from None
        raise errors.BadRequest(f"No valid host was found. {exc}") from None
    with c.db.session() as s:
        c.release(s, source, target["flavor"])
    c.record_action(ctx, target["uuid"], "live-migration")
    c.record_migration(ctx, target, "live-migration", source, dest, target["flavor"])
    c.agents.cast(context_dict(ctx), source, "live_migration",
                  instance=c.agent_view(target), dest_host=dest)
    return None


def unshelve(h, req, target, args):
    c = h.conductor
    ctx = req.context

    def place(s):
        return c.schedule(s, target, target["flavor"])

    try:
        dest = c.db.transaction(place)
    except NoValidHost as exc:
        c.update_instance(target["uuid"], {"task_state": None})
        raise errors.BadRequest(str(exc)) from None
    with c.db.session() as s:
        zone = c.host_zone(s, dest)
    uctx = as_context(ctx, target["project_id"], target["user_id"])
    c.network.bind_host(uctx, target["network_info"] or [], dest)
    target = c.update_instance(target["uuid"], {"host": dest, "node": dest,
                                                "availability_zone": zone,
                                                "vm_state": states.BUILDING,
                                                "task_state": states.SPAWNING})
    c.record_action(ctx, target["uuid"], "unshelve")
    c.agents.cast(context_dict(ctx), dest, "build_and_run_instance",
                  instance=c.agent_view(target),
                  image_meta=(target["request_spec"] or {}).get("image_meta") or {},
                  network_info=target["network_info"] or [],
                  block_device_info=c.block_device_info(target), admin_password=None)
    return None


def attach_interface(h, req):
    c = h.conductor
    ctx = req.context
    inst = h.instance(req)
    body = req.json()
    att = (body or {}).get("interfaceAttachment") if isinstance(body, dict) else None
    if not isinstance(att, dict):
        raise errors.BadRequest("Invalid input for field/attribute interfaceAttachment.")
    if inst["vm_state"] not in (A, P, S, SU) or inst["task_state"] is not None:
        raise conflict(inst, "attach_interface")
    requested = []
    if att.get("port_id"):
        requested.append({"port": att["port_id"]})
    elif att.get("net_id"):
        item = {"uuid": att["net_id"]}
        ips = att.get("fixed_ips") or []
        if ips:
            item["fixed_ip"] = ips[0].get("ip_address")
        requested.append(item)
    else:
        raise errors.BadRequest("Either port_id or net_id is required")
    c.network.validate(ctx, requested, [])
    uctx = as_context(ctx, inst["project_id"], inst["user_id"])
    vifs = c.network.allocate(uctx, inst, inst["host"], requested,
                              inst["security_groups"] or [])
    inst = c.update_instance(inst["uuid"], {"network_info": [*inst["network_info"], *vifs]})
    c.record_action(ctx, inst["uuid"], "attach_interface")
    for vif in vifs:
        c.agents.call(context_dict(ctx), inst["host"], "attach_interface",
                      instance=c.agent_view(inst), vif=vif)
    return {"interfaceAttachment": h.interface_view(req, vifs[0])}


def detach_interface(h, req):
    c = h.conductor
    ctx = req.context
    inst = h.instance(req)
    port_id = req.path_params["port_id"]
    vif = next((v for v in inst["network_info"] or [] if v["id"] == port_id), None)
    if vif is None:
        raise errors.NotFound(f"Port {port_id} is not attached")
    if inst["vm_state"] not in (A, P, S, SU) or inst["task_state"] is not None:
        raise conflict(inst, "detach_interface")
    c.agents.call(context_dict(ctx), inst["host"], "detach_interface",
                  instance=c.agent_view(inst), vif=vif)
    c.update_instance(inst["uuid"], {"network_info": [v for v in inst["network_info"]
                                                      if v["id"] != port_id]})
    c.network.deallocate(as_context(ctx, inst["project_id"], inst["user_id"]), [vif])
    c.record_action(ctx, inst["uuid"], "detach_interface")


__all__ = ["run_action", "sa"]
