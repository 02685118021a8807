"""Block Storage v3 API routes (as the Cinder API reference describes them).

Version-gated behaviour (microversions.MAX = 3.50): 3.3 user messages,
3.13 group_id / 3.14 group_snapshot_id fields, 3.18 backup project id,
3.21 provider_id (admin), 3.27 attachments API, 3.34 ``name~`` filters,
3.40 revert to snapshot, 3.41 snapshot user_id, 3.42 extending in-use
volumes, 3.43 backup metadata, 3.44 attachment complete, 3.45 ``with_count``,
3.47 volumes from backups, 3.48 shared_targets/service_uuid.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from starlette.responses import Response

from pocketstack.common import errors, pagination
from pocketstack.common.db import isotime, utcnow
from pocketstack.common.http import Api, JSONResponse, Request, nova_error_body
from pocketstack.common.validation import validate
from pocketstack.volume import microversions, schemas, views

MAX_LIMIT = 1000
TRUE = ("true", "1", "yes", "y", "on", "t")
FALSE = ("false", "0", "no", "n", "off", "f")
VOLUME_STATUSES = ("creating", "available", "reserved", "attaching", "in-use", "detaching",
                   "deleting", "error", "error_deleting", "extending", "error_extending",
                   "backing-up", "restoring-backup", "error_restoring", "downloading",
                   "uploading", "retyping", "maintenance", "reverting")


def as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in FALSE:
        return False
    raise errors.BadRequest(f"Invalid input received: {name} must be a boolean, not "
                            f"'{value}'.")


def as_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise errors.BadRequest(f"Invalid input received: {name} must be an integer.")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise errors.BadRequest(f"Invalid input received: {name} must be an integer, not "
                                f"'{value}'.") from None


def build(service) -> Api:
    mgr = service.manager
    policy = service.policy

    def before(req: Request) -> None:
        req.state["version"] = microversions.parse(req.headers)

    def after(req: Request, response: Response) -> None:
        version = req.state.get("version", microversions.MIN)
        response.headers[microversions.HEADER] = f"volume {microversions.text(version)}"
        response.headers["Vary"] = microversions.HEADER

    api = Api(error_body=nova_error_body, authenticate=service.cloud.identity.validator
              if "identity" in service.cloud.services else None,
              before=before, after=after, max_body_size=service.conf.max_request_body_size)

    def ver(req) -> tuple[int, int]:
        return req.state.get("version", microversions.MIN)

    def at_least(req, version: tuple[int, int]) -> bool:
        return ver(req) >= version

    def require(req, version: tuple[int, int]) -> None:
        if not at_least(req, version):
            raise errors.NotFound(f"The resource could not be found (requires microversion "
                                  f"{microversions.text(version)}).")

    def base(req) -> str:
        return req.base_url + "/v3"

    def enforce(req, action: str, project_id: str | None = None) -> None:
        policy.enforce(req.context, action,
                       {"project_id": project_id or req.context.project_id})

    def body_of(req, schema):
        return validate(schema, req.json())

    def metadata_routes(collection: str, id_param: str, get, set_meta, delete_key):
        """The six metadata routes Cinder gives volumes and snapshots alike."""
        base = f"/v3/{collection}/{{{id_param}}}/metadata"

        @api.route(base)
        def meta_get(req):
            return {"metadata": get(req.context, req.path_params[id_param])["meta"]}

        @api.route(base, ("POST", "PUT"))
        def meta_set(req):
            meta = body_of(req, schemas.metadata_body)["metadata"]
            return {"metadata": set_meta(req.context, req.path_params[id_param], meta,
                                         replace=req.method == "PUT")}

        @api.route(base + "/{key}")
        def meta_show(req):
            meta = get(req.context, req.path_params[id_param])["meta"]
            key = req.path_params["key"]
            if key not in meta:
                raise errors.NotFound(f"Metadata item was not found: {key}")
            return {"meta": {key: meta[key]}}

        @api.route(base + "/{key}", "PUT")
        def meta_item_put(req):
            meta = body_of(req, schemas.meta_item)["meta"]
            if req.path_params["key"] not in meta:
                raise errors.BadRequest("Request body and URI mismatch")
            set_meta(req.context, req.path_params[id_param], meta, replace=False)
            return {"meta": meta}

        @api.route(base + "/{key}", "DELETE")
        def meta_delete(req):
            delete_key(req.context, req.path_params[id_param], req.path_params["key"])
            return Response(status_code=200)

    def list_params(req, sort_keys: dict[str, str]):
        limit = pagination.parse_limit(req.query, default=MAX_LIMIT, maximum=MAX_LIMIT)
        sort = pagination.parse_sort(req.query, sort_keys, [("created_at", "desc")])
        offset = as_int(req.query.get("offset", 0), "offset")
        if offset < 0:
            raise errors.BadRequest("Invalid input received: offset must be >= 0.")
        with_count = at_least(req, (3, 45)) and req.flag("with_count")
        all_tenants = req.context.is_admin and req.flag("all_tenants")
        return limit, sort, offset, with_count, all_tenants

    def page(req, key: str, items: list, rows: list, limit: int | None, count):
        body = {key: items}
        if limit is not None and rows and len(rows) >= limit:
            body[f"{key}_links"] = [{"href": pagination.next_href(
                req.url.split("?")[0], req.query, rows[-1]["id"]), "rel": "next"}]
        if count is not None:
            body["count"] = count
        return body

    # -- versions ---------------------------------------------------------------

    def version_doc(req) -> dict:
        root = req.base_url
        return {"id": "v3.0", "status": "CURRENT", "version": microversions.text(
            microversions.MAX), "min_version": microversions.text(microversions.MIN),
            "updated": "2026-11-25T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{root}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}

    @api.route("/", auth=False)
    def versions(req):
        return JSONResponse({"versions": [version_doc(req)]}, status_code=300)

    @api.route("/v3", auth=False)
    def version_v3(req):
        return {"versions": [version_doc(req)]}

    api.route("/v3/", auth=False)(version_v3)

    # -- volumes ----------------------------------------------------------------

    VOLUME_SORT = {k: k for k in ("id", "name", "size", "status", "created_at", "updated_at",
                                  "availability_zone", "bootable", "project_id")}
    VOLUME_SORT["display_name"] = "name"

    def render_volume(req, v):
        return views.volume(base(req), v, ver(req), req.context.is_admin)

    def volume_filters(req) -> dict:
        filters = {}
        q = req.query
        for key in ("name", "status", "availability_zone", "user_id", "host",
                    "migration_status"):
            if key in q:
                filters[key] = q[key]
        if "display_name" in q:
            filters["name"] = q["display_name"]
        if "project_id" in q and req.context.is_admin:
            filters["project_id"] = q["project_id"]
        if "bootable" in q:
            filters["bootable"] = as_bool(q["bootable"], "bootable")
        if "name~" in q and at_least(req, (3, 34)):
            filters["name~"] = q["name~"]
        if "volume_type" in q:
            filters["volume_type"] = mgr.get_type(req.context, q["volume_type"])["id"]
        if "metadata" in q:
            import ast
            import json

            raw = q["metadata"]
            try:
                meta = json.loads(raw)
            except ValueError:
                try:
                    meta = ast.literal_eval(raw)
                except (ValueError, SyntaxError):
                    raise errors.BadRequest(f"Invalid metadata filter '{raw}'.") from None
            if not isinstance(meta, dict):
                raise errors.BadRequest(f"Invalid metadata filter '{raw}'.")
            filters["metadata"] = meta
        from pocketstack.volume import models

        for key in ("created_at", "updated_at"):
            if key in q:
                filters[key] = time_filter(getattr(models.volume.c, key), q[key])
        return filters

    def time_filter(column, raw: str) -> list:
        conds = []
        ops = {"gt": column.__gt__, "gte": column.__ge__, "lt": column.__lt__,
               "lte": column.__le__, "eq": column.__eq__, "neq": column.__ne__}
        for item in raw.split(","):
            op, _, value = item.partition(":")
            if op not in ops or not value:
                raise errors.BadRequest(f"Invalid time comparison filter '{raw}'.")
            try:
                when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise errors.BadRequest(f"Invalid time '{value}'.") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
            conds.append(ops[op](when))
        return conds

    def list_volumes(req, detail: bool):
        limit, sort, offset, with_count, all_tenants = list_params(req, VOLUME_SORT)
        rows, count = mgr.list_volumes(req.context, volume_filters(req), all_tenants, sort,
                                       limit, req.query.get("marker"), offset, with_count)
        items = [render_volume(req, v) if detail else views.volume_summary(base(req), v)
                 for v in rows]
        return page(req, "volumes", items, rows, limit, count)

    @api.route("/v3/volumes")
    def volumes_index(req):
        return list_volumes(req, False)

    @api.route("/v3/volumes/detail")
    def volumes_detail(req):
        return list_volumes(req, True)

    @api.route("/v3/volumes/summary")
    def volumes_summary(req):
        rows, _ = mgr.list_volumes(req.context, {}, req.context.is_admin and
                                   req.flag("all_tenants"), [("created_at", "desc")], None,
                                   None)
        body = {"total_size": sum(r["size"] for r in rows), "total_count": len(rows)}
        if at_least(req, (3, 36)):
            meta: dict[str, list] = {}
            for r in rows:
                for k, v in r["meta"].items():
                    meta.setdefault(k, [])
                    if v not in meta[k]:
                        meta[k].append(v)
            body["metadata"] = meta
        return {"volume-summary": body}

    @api.route("/v3/volumes", "POST", status=202)
    def volumes_create(req):
        body = body_of(req, schemas.volume_create)
        v = body["volume"]
        size = v.get("size")
        if size is not None:
            size = as_int(size, "size")
            if size <= 0:
                raise errors.BadRequest(f"Invalid input received: Volume size '{size}' must "
                                        "be an integer and greater than 0.")
        if v.get("multiattach"):
            raise errors.BadRequest("multiattach parameter has been removed. The default "
                                    "behavior is to use multiattach enabled volume types. "
                                    "Contact your administrator to create a multiattach "
                                    "enabled volume type and use it to create multiattach "
                                    "volumes.")
        backup_id = v.get("backup_id")
        if backup_id and not at_least(req, (3, 47)):
            raise errors.BadRequest("Creating a volume from a backup requires microversion "
                                    "3.47.")
        vol = mgr.create_volume(
            req.context, size=size, name=v.get("name", v.get("display_name")),
            description=v.get("description", v.get("display_description")),
            metadata=v.get("metadata"), volume_type=v.get("volume_type"),
            availability_zone=v.get("availability_zone"), source_volid=v.get("source_volid"),
            snapshot_id=v.get("snapshot_id"), image_id=v.get("imageRef") or v.get("image_id"),
            backup_id=backup_id,
            scheduler_hints=body.get("OS-SCH-HNT:scheduler_hints"))
        return {"volume": render_volume(req, vol)}

    @api.route("/v3/volumes/{volume_id}")
    def volumes_show(req):
        return {"volume": render_volume(req, mgr.get_volume(req.context,
                                                            req.path_params["volume_id"]))}

    @api.route("/v3/volumes/{volume_id}", "PUT")
    def volumes_update(req):
        v = body_of(req, schemas.volume_update)["volume"]
        values = {}
        if "name" in v or "display_name" in v:
            values["name"] = v.get("name", v.get("display_name"))
        if "description" in v or "display_description" in v:
            values["description"] = v.get("description", v.get("display_description"))
        if "metadata" in v:
            values["meta"] = v["metadata"] or {}
        vol = mgr.update_volume(req.context, req.path_params["volume_id"], values)
        return {"volume": render_volume(req, vol)}

    @api.route("/v3/volumes/{volume_id}", "DELETE", status=202)
    def volumes_delete(req):
        force = req.flag("force") if at_least(req, (3, 23)) else False
        if force:
            enforce(req, "volume_extension:volume_admin_actions:force_delete")
        mgr.delete_volume(req.context, req.path_params["volume_id"],
                          cascade=req.flag("cascade"), force=force)
        return Response(status_code=202)

    metadata_routes("volumes", "volume_id", mgr.get_volume,
                    mgr.set_metadata, mgr.delete_metadata_key)

    # actions
    @api.route("/v3/volumes/{volume_id}/action", "POST")
    def volume_action(req):
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Malformed request body: one action is expected.")
        (action, args), = body.items()
        handler = VOLUME_ACTIONS.get(action)
        if handler is None:
            raise errors.BadRequest(f"There is no such action: {action}")
        return handler(req, req.path_params["volume_id"], args if args is not None else {})

    def need(args, key: str, action: str):
        if not isinstance(args, dict) or key not in args:
            raise errors.BadRequest(f"Invalid input received: {action} requires '{key}'.")
        return args[key]

    def act_extend(req, vid, args):
        new_size = as_int(need(args, "new_size", "os-extend"), "new_size")
        mgr.extend_volume(req.context, vid, new_size, allow_in_use=at_least(req, (3, 42)))
        return Response(status_code=202)

    def act_reset_status(req, vid, args):
        enforce(req, "volume_extension:volume_admin_actions:reset_status")
        status = args.get("status")
        if status is not None and status not in VOLUME_STATUSES:
            raise errors.BadRequest(f"Invalid input received: invalid status {status}.")
        attach = args.get("attach_status")
        if attach is not None and attach not in ("attached", "detached"):
            raise errors.BadRequest(f"Invalid input received: invalid attach_status {attach}.")
        mgr.reset_status(req.context, vid, status, attach, args.get("migration_status"))
        return Response(status_code=202)

    def act_force_delete(req, vid, args):
        enforce(req, "volume_extension:volume_admin_actions:force_delete")
        mgr.delete_volume(req.context, vid, cascade=True, force=True)
        return Response(status_code=202)

    def act_bootable(req, vid, args):
        mgr.set_bootable(req.context, vid, as_bool(need(args, "bootable", "os-set_bootable"),
                                                   "bootable"))
        return Response(status_code=200)

    def act_readonly(req, vid, args):
        mgr.set_readonly(req.context, vid, as_bool(
            need(args, "readonly", "os-update_readonly_flag"), "readonly"))
        return Response(status_code=202)

    def act_reserve(req, vid, args):
        mgr.reserve(req.context, vid)
        return Response(status_code=202)

    def act_unreserve(req, vid, args):
        mgr.unreserve(req.context, vid)
        return Response(status_code=202)

    def act_attach(req, vid, args):
        mode = args.get("mode", "rw")
        if mode not in ("rw", "ro"):
            raise errors.BadRequest(f"Invalid input received: invalid mode {mode}.")
        if not args.get("instance_uuid") and not args.get("host_name"):
            raise errors.BadRequest("Invalid request to attach volume to an invalid target")
        mgr.legacy_attach(req.context, vid, args.get("instance_uuid"), args.get("host_name"),
                          args.get("mountpoint"), mode)
        return Response(status_code=202)

    def act_detach(req, vid, args):
        mgr.legacy_detach(req.context, vid, (args or {}).get("attachment_id"))
        return Response(status_code=202)

    def act_force_detach(req, vid, args):
        enforce(req, "volume_extension:volume_admin_actions:force_detach")
        mgr.legacy_detach(req.context, vid, (args or {}).get("attachment_id"))
        return Response(status_code=202)

    def act_begin_detaching(req, vid, args):
        mgr.begin_detaching(req.context, vid)
        return Response(status_code=202)

    def act_roll_detaching(req, vid, args):
        mgr.roll_detaching(req.context, vid)
        return Response(status_code=202)

    def act_initialize(req, vid, args):
        connector = need(args, "connector", "os-initialize_connection")
        return {"connection_info": mgr.initialize_connection(req.context, vid, connector)}

    def act_terminate(req, vid, args):
        need(args, "connector", "os-terminate_connection")
        mgr.get_volume(req.context, vid)
        return Response(status_code=202)

    def act_retype(req, vid, args):
        new_type = need(args, "new_type", "os-retype")
        policy_name = args.get("migration_policy") or "never"
        if policy_name not in ("never", "on-demand"):
            raise errors.BadRequest(f"Invalid input received: migration_policy {policy_name}.")
        mgr.retype(req.context, vid, new_type, policy_name)
        return Response(status_code=202)

    def act_upload(req, vid, args):
        name = need(args, "image_name", "os-volume_upload_image")
        params = {"image_name": name, "force": as_bool(args.get("force", False), "force"),
                  "disk_format": args.get("disk_format") or "raw",
                  "container_format": args.get("container_format") or "bare"}
        if params["disk_format"] not in ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx"):
            raise errors.BadRequest(f"Invalid disk-format '{params['disk_format']}'.")
        if at_least(req, (3, 1)):
            if "visibility" in args:
                params["visibility"] = args["visibility"]
            if "protected" in args:
                params["protected"] = as_bool(args["protected"], "protected")
        result = mgr.upload_to_image(req.context, vid, params)
        vol, image = result["vol"], result["image"]
        vtype = mgr.get_volume(req.context, vid).get("volume_type")
        if vtype:
            vtype = {**vtype, "created_at": isotime(vtype["created_at"], micro=True, z=False),
                     "updated_at": isotime(vtype["updated_at"], micro=True, z=False)}
        body = {"id": vid, "updated_at": isotime(utcnow(), micro=True, z=False),
                "status": "uploading", "display_description": vol["description"],
                "size": vol["size"], "image_id": image["id"],
                "volume_type": views.volume_type(vtype) if vtype else None,
                "container_format": params["container_format"],
                "disk_format": params["disk_format"], "image_name": name}
        if at_least(req, (3, 1)):
            body["visibility"] = image.get("visibility")
            body["protected"] = image.get("protected")
        return JSONResponse({"os-volume_upload_image": body}, status_code=202)

    def act_set_image_metadata(req, vid, args):
        meta = need(args, "metadata", "os-set_image_metadata")
        if not isinstance(meta, dict):
            raise errors.BadRequest("Invalid input received: metadata must be an object.")
        return {"metadata": mgr.set_image_metadata(req.context, vid, meta)}

    def act_unset_image_metadata(req, vid, args):
        mgr.unset_image_metadata(req.context, vid, need(args, "key", "os-unset_image_metadata"))
        return Response(status_code=200)

    def act_show_image_metadata(req, vid, args):
        return {"metadata": mgr.get_volume(req.context, vid)["image_meta"] or {}}

    def act_revert(req, vid, args):
        require(req, (3, 40))
        mgr.revert_to_snapshot(req.context, vid, need(args, "snapshot_id", "revert"))
        return Response(status_code=202)

    VOLUME_ACTIONS = {
        "os-extend": act_extend, "os-reset_status": act_reset_status,
        "os-force_delete": act_force_delete, "os-set_bootable": act_bootable,
        "os-update_readonly_flag": act_readonly, "os-reserve": act_reserve,
        "os-unreserve": act_unreserve, "os-attach": act_attach, "os-detach": act_detach,
        "os-force_detach": act_force_detach, "os-begin_detaching": act_begin_detaching,
        "os-roll_detaching": act_roll_detaching,
        "os-initialize_connection": act_initialize,
        "os-terminate_connection": act_terminate, "os-retype": act_retype,
        "os-volume_upload_image": act_upload, "os-set_image_metadata": act_set_image_metadata,
        "os-unset_image_metadata": act_unset_image_metadata,
        "os-show_image_metadata": act_show_image_metadata, "revert": act_revert,
    }

    # -- snapshots ------------------------------------------------------------

    SNAP_SORT = {k: k for k in ("id", "name", "size", "status", "created_at", "updated_at",
                                "volume_id")}

    def list_snapshots(req, detail: bool):
        limit, sort, offset, with_count, all_tenants = list_params(req, SNAP_SORT)
        filters = {k: req.query[k] for k in ("name", "status", "volume_id", "project_id")
                   if k in req.query and (k != "project_id" or req.context.is_admin)}
        if "name~" in req.query and at_least(req, (3, 34)):
            filters["name~"] = req.query["name~"]
        if "metadata" in req.query:
            import ast

            try:
                filters["metadata"] = ast.literal_eval(req.query["metadata"])
            except (ValueError, SyntaxError):
                raise errors.BadRequest("Invalid metadata filter.") from None
        rows, count = mgr.list_snapshots(req.context, filters, all_tenants, sort, limit,
                                         req.query.get("marker"), offset, with_count)
        items = [views.snapshot(s, ver(req)) for s in rows]
        if not detail:
            for item in items:
                item.pop("os-extended-snapshot-attributes:progress", None)
                item.pop("os-extended-snapshot-attributes:project_id", None)
        return page(req, "snapshots", items, rows, limit, count)

    @api.route("/v3/snapshots")
    def snapshots_index(req):
        return list_snapshots(req, False)

    @api.route("/v3/snapshots/detail")
    def snapshots_detail(req):
        return list_snapshots(req, True)

    @api.route("/v3/snapshots", "POST", status=202)
    def snapshots_create(req):
        s = body_of(req, schemas.snapshot_create)["snapshot"]
        force = as_bool(s.get("force", False), "force")
        snap = mgr.create_snapshot(req.context, s["volume_id"],
                                   s.get("name", s.get("display_name")),
                                   s.get("description", s.get("display_description")),
                                   force, s.get("metadata"))
        return JSONResponse({"snapshot": views.snapshot(snap, ver(req))}, status_code=202)

    @api.route("/v3/snapshots/{snapshot_id}")
    def snapshots_show(req):
        return {"snapshot": views.snapshot(mgr.get_snapshot(
            req.context, req.path_params["snapshot_id"]), ver(req))}

    @api.route("/v3/snapshots/{snapshot_id}", "PUT")
    def snapshots_update(req):
        s = body_of(req, schemas.snapshot_update)["snapshot"]
        values = {}
        if "name" in s or "display_name" in s:
            values["name"] = s.get("name", s.get("display_name"))
        if "description" in s or "display_description" in s:
            values["description"] = s.get("description", s.get("display_description"))
        snap = mgr.update_snapshot(req.context, req.path_params["snapshot_id"], values)
        return {"snapshot": views.snapshot(snap, ver(req))}

    @api.route("/v3/snapshots/{snapshot_id}", "DELETE", status=202)
    def snapshots_delete(req):
        mgr.delete_snapshot(req.context, req.path_params["snapshot_id"])
        return Response(status_code=202)

    @api.route("/v3/snapshots/{snapshot_id}/action", "POST")
    def snapshots_action(req):
        body = req.json()
        sid = req.path_params["snapshot_id"]
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Malformed request body: one action is expected.")
        (action, args), = body.items()
        if action == "os-reset_status":
            enforce(req, "volume_extension:snapshot_admin_actions:reset_status")
            status = need(args, "status", action)
            if status not in ("creating", "available", "deleting", "error", "error_deleting"):
                raise errors.BadRequest(f"Invalid input received: invalid status {status}.")
            mgr.reset_snapshot_status(req.context, sid, status)
            return Response(status_code=202)
        if action == "os-force_delete":
            enforce(req, "volume_extension:snapshot_admin_actions:reset_status")
            mgr.delete_snapshot(req.context, sid, force=True)
            return Response(status_code=202)
        if action == "os-update_snapshot_status":
            mgr.update_snapshot(req.context, sid, {"status": need(args, "status", action)})
            return Response(status_code=202)
        raise errors.BadRequest(f"There is no such action: {action}")

    metadata_routes("snapshots", "snapshot_id", mgr.get_snapshot,
                    mgr.set_snapshot_metadata, mgr.delete_snapshot_metadata_key)

    # -- volume types ---------------------------------------------------------

    def render_type(req, vt):
        return views.volume_type(vt, admin=req.context.is_admin)

    @api.route("/v3/types")
    def types_index(req):
        is_public = None
        if "is_public" in req.query and req.query["is_public"].lower() != "none":
            is_public = as_bool(req.query["is_public"], "is_public")
        elif req.context.is_admin and "is_public" not in req.query:
            is_public = True
        if req.query.get("is_public", "").lower() == "none":
            is_public = None
        types = mgr.list_types(req.context, is_public)
        return {"volume_types": [render_type(req, vt) for vt in types]}

    @api.route("/v3/types/default")
    def types_default(req):
        with mgr.db.reader() as s:
            vt = mgr.default_type(s)
        if vt is None:
            raise errors.NotFound("Default volume type can not be found.")
        return {"volume_type": render_type(req, vt)}

    @api.route("/v3/types", "POST")
    def types_create(req):
        enforce(req, "volume_extension:types_manage")
        vt = body_of(req, schemas.type_create)["volume_type"]
        is_public = as_bool(vt.get("os-volume-type-access:is_public", True), "is_public")
        row = mgr.create_type(req.context, vt["name"].strip(), vt.get("description"),
                              is_public, vt.get("extra_specs") or {})
        return {"volume_type": render_type(req, row)}

    @api.route("/v3/types/{type_id}")
    def types_show(req):
        return {"volume_type": render_type(req, mgr.get_type(req.context,
                                                             req.path_params["type_id"]))}

    @api.route("/v3/types/{type_id}", "PUT")
    def types_update(req):
        enforce(req, "volume_extension:types_manage")
        vt = body_of(req, schemas.type_update)["volume_type"]
        values = {}
        if vt.get("name") is not None:
            values["name"] = vt["name"].strip()
        if "description" in vt:
            values["description"] = vt["description"]
        if "is_public" in vt:
            values["is_public"] = as_bool(vt["is_public"], "is_public")
        if not values:
            raise errors.BadRequest("Specify volume type name, description, is_public or a "
                                    "combination thereof.")
        return {"volume_type": render_type(req, mgr.update_type(
            req.context, req.path_params["type_id"], values))}

    @api.route("/v3/types/{type_id}", "DELETE", status=202)
    def types_delete(req):
        enforce(req, "volume_extension:types_manage")
        mgr.delete_type(req.context, req.path_params["type_id"])
        return Response(status_code=202)

    @api.route("/v3/types/{type_id}/extra_specs")
    def specs_index(req):
        vt = mgr.get_type(req.context, req.path_params["type_id"])
        return {"extra_specs": render_type(req, vt)["extra_specs"]}

    @api.route("/v3/types/{type_id}/extra_specs", "POST")
    def specs_create(req):
        enforce(req, "volume_extension:types_extra_specs:create")
        specs = body_of(req, schemas.extra_specs)["extra_specs"]
        mgr.set_extra_specs(req.context, req.path_params["type_id"], specs)
        return {"extra_specs": specs}

    @api.route("/v3/types/{type_id}/extra_specs/{key}")
    def specs_show(req):
        vt = mgr.get_type(req.context, req.path_params["type_id"])
        specs = render_type(req, vt)["extra_specs"]
        key = req.path_params["key"]
        if key not in specs:
            raise errors.NotFound(f"Volume Type {vt['id']} has no extra specs with key {key}.")
        return {key: specs[key]}

    @api.route("/v3/types/{type_id}/extra_specs/{key}", "PUT")
    def specs_update(req):
        enforce(req, "volume_extension:types_extra_specs:update")
        body = req.json()
        key = req.path_params["key"]
        if not isinstance(body, dict) or len(body) != 1 or key not in body or \
                not isinstance(body[key], str):
            raise errors.BadRequest("Request body and URI mismatch")
        mgr.set_extra_specs(req.context, req.path_params["type_id"], body)
        return body

    @api.route("/v3/types/{type_id}/extra_specs/{key}", "DELETE", status=202)
    def specs_delete(req):
        enforce(req, "volume_extension:types_extra_specs:delete")
        mgr.delete_extra_spec(req.context, req.path_params["type_id"], req.path_params["key"])
        return Response(status_code=202)

    @api.route("/v3/types/{type_id}/os-volume-type-access")
    def type_access_index(req):
        enforce(req, "volume_extension:volume_type_access")
        rows = mgr.type_access(req.context, req.path_params["type_id"])
        return {"volume_type_access": [{"volume_type_id": r["volume_type_id"],
                                        "project_id": r["project_id"]} for r in rows]}

    @api.route("/v3/types/{type_id}/action", "POST", status=202)
    def type_action(req):
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Malformed request body: one action is expected.")
        (action, args), = body.items()
        project = need(args, "project", action)
        if action == "addProjectAccess":
            enforce(req, "volume_extension:volume_type_access:addProjectAccess")
            mgr.add_type_access(req.context, req.path_params["type_id"], project)
        elif action == "removeProjectAccess":
            enforce(req, "volume_extension:volume_type_access:removeProjectAccess")
            mgr.remove_type_access(req.context, req.path_params["type_id"], project)
        else:
            raise errors.BadRequest(f"There is no such action: {action}")
        return Response(status_code=202)

    # -- backups --------------------------------------------------------------

    BACKUP_SORT = {k: k for k in ("id", "name", "size", "status", "created_at", "updated_at",
                                  "volume_id")}

    def render_backup(req, b, detail=True):
        return views.backup(base(req), b, ver(req), detail)

    def list_backups(req, detail):
        limit, sort, offset, with_count, all_tenants = list_params(req, BACKUP_SORT)
        filters = {k: req.query[k] for k in ("name", "status", "volume_id")
                   if k in req.query}
        if "name~" in req.query and at_least(req, (3, 34)):
            filters["name~"] = req.query["name~"]
        rows, count = mgr.list_backups(req.context, filters, all_tenants, sort, limit,
                                       req.query.get("marker"), offset, with_count)
        with_deps(rows)
        return page(req, "backups", [render_backup(req, b, detail) for b in rows], rows,
                    limit, count)

    def with_deps(rows):
        from pocketstack.volume import models

        ids = [r["id"] for r in rows]
        if not ids:
            return
        with mgr.db.reader() as s:
            parents = set(s.execute(sa.select(models.backup.c.parent_id).where(
                models.backup.c.parent_id.in_(ids))).scalars())
        for r in rows:
            r["has_dependent_backups"] = r["id"] in parents

    @api.route("/v3/backups")
    def backups_index(req):
        return list_backups(req, False)

    @api.route("/v3/backups/detail")
    def backups_detail(req):
        return list_backups(req, True)

    @api.route("/v3/backups", "POST", status=202)
    def backups_create(req):
        b = body_of(req, schemas.backup_create)["backup"]
        row = mgr.create_backup(
            req.context, b["volume_id"], name=b.get("name"), description=b.get("description"),
            container=b.get("container"),
            incremental=as_bool(b.get("incremental") or False, "incremental"),
            force=as_bool(b.get("force") or False, "force"), snapshot_id=b.get("snapshot_id"),
            metadata=b.get("metadata") if at_least(req, (3, 43)) else None)
        return JSONResponse({"backup": {"id": row["id"], "name": row["name"],
                                        "links": views.links(base(req), "backups", row["id"])}},
                            status_code=202)

    @api.route("/v3/backups/{backup_id}")
    def backups_show(req):
        row = mgr.get_backup(req.context, req.path_params["backup_id"])
        with_deps([row])
        return {"backup": render_backup(req, row)}

    @api.route("/v3/backups/{backup_id}", "PUT")
    def backups_update(req):
        b = body_of(req, schemas.backup_update)["backup"]
        values = {k: b[k] for k in ("name", "description") if k in b}
        if "metadata" in b:
            values["meta"] = b["metadata"] or {}
        row = mgr.update_backup(req.context, req.path_params["backup_id"], values)
        with_deps([row])
        return {"backup": render_backup(req, row)}

    @api.route("/v3/backups/{backup_id}", "DELETE", status=202)
    def backups_delete(req):
        mgr.delete_backup(req.context, req.path_params["backup_id"])
        return Response(status_code=202)

    @api.route("/v3/backups/{backup_id}/restore", "POST", status=202)
    def backups_restore(req):
        r = body_of(req, schemas.backup_restore)["restore"] or {}
        result = mgr.restore_backup(req.context, req.path_params["backup_id"],
                                    r.get("volume_id"), r.get("name"))
        return JSONResponse({"restore": result}, status_code=202)

    @api.route("/v3/backups/{backup_id}/action", "POST", status=202)
    def backups_action(req):
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Malformed request body: one action is expected.")
        (action, args), = body.items()
        bid = req.path_params["backup_id"]
        if action == "os-reset_status":
            enforce(req, "volume_extension:backup_admin_actions:reset_status")
            status = need(args, "status", action)
            if status not in ("available", "error"):
                raise errors.BadRequest(f"Invalid input received: invalid status {status}.")
            mgr.update_backup(req.context, bid, {"status": status})
        elif action == "os-force_delete":
            enforce(req, "volume_extension:backup_admin_actions:force_delete")
            mgr.delete_backup(req.context, bid, force=True)
        else:
            raise errors.BadRequest(f"There is no such action: {action}")
        return Response(status_code=202)

    # -- attachments (3.27) -----------------------------------------------------

    def render_attachment(req, a, detail=True):
        body = views.attachment(a, ver(req))
        if not detail:
            return {k: body[k] for k in ("id", "status", "instance", "volume_id")}
        return body

    def list_attachments(req, detail):
        require(req, (3, 27))
        rows = mgr.list_attachments(req.context, req.context.is_admin and
                                    req.flag("all_tenants"), req.query.get("volume_id"),
                                    req.query.get("instance_id"), req.query.get("status"))
        return {"attachments": [render_attachment(req, a, detail) for a in rows]}

    @api.route("/v3/attachments")
    def attachments_index(req):
        return list_attachments(req, False)

    @api.route("/v3/attachments/detail")
    def attachments_detail(req):
        return list_attachments(req, True)

    @api.route("/v3/attachments", "POST")
    def attachments_create(req):
        require(req, (3, 27))
        a = body_of(req, schemas.attachment_create)["attachment"]
        mode = a.get("mode", "rw") if at_least(req, (3, 54)) else "rw"
        att = mgr.attachment_create(req.context, a["volume_uuid"], a.get("instance_uuid"),
                                    a.get("connector"), mode)
        return {"attachment": render_attachment(req, att)}

    @api.route("/v3/attachments/{attachment_id}")
    def attachments_show(req):
        require(req, (3, 27))
        return {"attachment": render_attachment(req, mgr.get_attachment(
            req.context, req.path_params["attachment_id"]))}

    @api.route("/v3/attachments/{attachment_id}", "PUT")
    def attachments_update(req):
        require(req, (3, 27))
        a = body_of(req, schemas.attachment_update)["attachment"]
        att = mgr.attachment_update(req.context, req.path_params["attachment_id"],
                                    a["connector"])
        return {"attachment": render_attachment(req, att)}

    @api.route("/v3/attachments/{attachment_id}", "DELETE")
    def attachments_delete(req):
        require(req, (3, 27))
        mgr.attachment_delete(req.context, req.path_params["attachment_id"])
        return {"attachments": []}

    @api.route("/v3/attachments/{attachment_id}/action", "POST", status=204)
    def attachments_action(req):
        require(req, (3, 44))
        body = req.json()
        if not isinstance(body, dict) or "os-complete" not in body:
            raise errors.BadRequest("There is no such action.")
        mgr.attachment_complete(req.context, req.path_params["attachment_id"])
        return None

    # -- limits, quotas, zones, pools, messages, services -------------------------

    @api.route("/v3/limits")
    def limits(req):
        project = req.context.project_id
        if at_least(req, (3, 39)) and req.context.is_admin and "project_id" in req.query:
            project = req.query["project_id"]
        q = mgr.get_quotas(req.context, project, usage=True)
        absolute = {
            "maxTotalVolumes": q["volumes"]["limit"],
            "maxTotalSnapshots": q["snapshots"]["limit"],
            "maxTotalVolumeGigabytes": q["gigabytes"]["limit"],
            "maxTotalBackups": q["backups"]["limit"],
            "maxTotalBackupGigabytes": q["backup_gigabytes"]["limit"],
            "totalVolumesUsed": q["volumes"]["in_use"],
            "totalSnapshotsUsed": q["snapshots"]["in_use"],
            "totalGigabytesUsed": q["gigabytes"]["in_use"],
            "totalBackupsUsed": q["backups"]["in_use"],
            "totalBackupGigabytesUsed": q["backup_gigabytes"]["in_use"]}
        return {"limits": {"rate": [], "absolute": absolute}}

    def quota_body(project_id, values):
        return {"quota_set": {"id": project_id, **values}}

    @api.route("/v3/os-quota-sets/{project_id}")
    def quotas_show(req):
        project = req.path_params["project_id"]
        enforce(req, "volume_extension:quotas:show", project)
        return quota_body(project, mgr.get_quotas(req.context, project,
                                                  usage=req.flag("usage")))

    @api.route("/v3/os-quota-sets/{project_id}/defaults")
    def quotas_defaults(req):
        project = req.path_params["project_id"]
        enforce(req, "volume_extension:quotas:show", project)
        with mgr.db.reader() as s:
            names = mgr._type_names(s)
        values = dict(mgr.quota_defaults())
        for name in names:
            for res in ("volumes", "snapshots", "gigabytes"):
                values[f"{res}_{name}"] = -1
        return quota_body(project, values)

    @api.route("/v3/os-quota-sets/{project_id}", "PUT")
    def quotas_update(req):
        project = req.path_params["project_id"]
        enforce(req, "volume_extension:quotas:update", project)
        body = body_of(req, schemas.quota_update)["quota_set"]
        values = {k: as_int(v, k) for k, v in body.items() if k not in ("id", "tenant_id")}
        result = mgr.set_quotas(req.context, project, values)
        return {"quota_set": result}

    @api.route("/v3/os-quota-sets/{project_id}", "DELETE")
    def quotas_delete(req):
        project = req.path_params["project_id"]
        enforce(req, "volume_extension:quotas:delete", project)
        mgr.delete_quotas(req.context, project)
        return Response(status_code=200)

    @api.route("/v3/os-availability-zone")
    def zones(req):
        return {"availabilityZoneInfo": [{"zoneName": z, "zoneState": {"available": True}}
                                         for z in mgr.availability_zones()]}

    @api.route("/v3/scheduler-stats/get_pools")
    def get_pools(req):
        enforce(req, "scheduler_extension:scheduler_stats:get_pools")
        pools = mgr.pools()
        if not req.flag("detail"):
            pools = [{"name": p["name"]} for p in pools]
        return {"pools": pools}

    @api.route("/v3/capabilities/{host}")
    def capabilities(req):
        enforce(req, "volume_extension:capabilities")
        host = req.path_params["host"]
        for p in mgr.pools():
            if p["name"].partition("#")[0] == host or p["name"] == host:
                c = p["capabilities"]
                return {"namespace": "OS::Storage::Capabilities::" + host,
                        "vendor_name": "pocketstack", "volume_backend_name":
                        c["volume_backend_name"], "pool_name": c["pool_name"],
                        "driver_version": "1.0", "storage_protocol": c["storage_protocol"],
                        "display_name": None, "description": None, "visibility": None,
                        "replication_targets": [], "properties": {}}
        raise errors.NotFound(f"Host {host} could not be found.")

    @api.route("/v3/messages")
    def messages_index(req):
        require(req, (3, 3))
        return {"messages": [views.message(base(req), m)
                             for m in mgr.list_messages(req.context)]}

    @api.route("/v3/messages/{message_id}")
    def messages_show(req):
        require(req, (3, 3))
        return {"message": views.message(base(req), mgr.get_message(
            req.context, req.path_params["message_id"]))}

    @api.route("/v3/messages/{message_id}", "DELETE", status=204)
    def messages_delete(req):
        require(req, (3, 3))
        mgr.delete_message(req.context, req.path_params["message_id"])
        return None

    @api.route("/v3/os-services")
    def services(req):
        enforce(req, "volume_extension:capabilities")
        now = isotime(utcnow(), micro=True, z=False)
        entries = [{"binary": "cinder-scheduler", "host": service.conf.host,
                    "zone": mgr.default_zone, "status": "enabled", "state": "up",
                    "updated_at": now, "disabled_reason": None}]
        for be in mgr.backends.values():
            entries.append({"binary": "cinder-volume", "host": be.host,
                            "zone": be.availability_zone, "status": "enabled", "state": "up",
                            "updated_at": now, "disabled_reason": None})
        return {"services": entries}

    @api.route("/v3/extensions")
    def extensions(req):
        names = [("AdminActions", "os-admin-actions"), ("AvailabilityZones",
                 "os-availability-zone"), ("Backups", "backups"), ("Qos_specs_manage",
                 "qos-specs"), ("QuotaSets", "os-quota-sets"), ("TypesManage", "types"),
                 ("VolumeActions", "os-volume-actions"), ("VolumeTypeAccess",
                 "os-volume-type-access"), ("SchedulerStats", "scheduler-stats")]
        return {"extensions": [{"name": n, "alias": a, "description": n, "links": [],
                                "updated": "2026-11-25T00:00:00+00:00"} for n, a in names]}

    return api
