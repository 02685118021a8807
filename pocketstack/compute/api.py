"""Compute v2.1 API: servers and their actions (other resources in api_resources.py)."""

from __future__ import annotations

import base64
import re
import secrets
import string
import time
import uuid as uuidlib

import sqlalchemy as sa
from starlette.responses import Response

from pocketstack.common import errors
from pocketstack.common.db import isotime, utcnow
from pocketstack.common.http import Api, JSONResponse, Request, nova_error_body
from pocketstack.common.validation import validate
from pocketstack.compute import microversions, schemas, sql, states, views
from pocketstack.compute import models as m
from pocketstack.compute.conductor import StateConflict, row
from pocketstack.compute.integration import context_dict

VERSION_UPDATED = "2013-07-23T11:33:21Z"
SORT_KEYS = {"created_at", "display_name", "updated_at", "uuid", "vm_state", "task_state",
             "host", "node", "launched_at", "terminated_at", "availability_zone",
             "project_id", "user_id", "key_name", "hostname", "power_state", "image_ref",
             "locked", "display_description", "access_ip_v4", "access_ip_v6",
             "instance_type_id", "kernel_id", "config_drive", "progress", "ramdisk_id",
             "root_device_name", "launch_index", "flavorid"}
SORT_COLUMNS = {"display_description": "description", "instance_type_id": "id",
                "kernel_id": "id", "ramdisk_id": "id", "flavorid": "id"}
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                     r"[0-9a-fA-F]{12}$")


def version_doc(base: str, *, full: bool = False) -> dict:
    doc = {"id": "v2.1", "status": "CURRENT",
           "version": microversions.text(microversions.MAX_VERSION),
           "min_version": microversions.text(microversions.MIN_VERSION),
           "updated": VERSION_UPDATED,
           "links": [{"rel": "self", "href": f"{base}/v2.1/"}]}
    if full:
        doc["links"].append({"rel": "describedby", "type": "text/html",
                             "href": "http://docs.openstack.org/"})
        doc["media-types"] = [{"base": "application/json",
                               "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return doc


def build(service) -> Api:
    conf = service.conf
    conductor = service.conductor
    db = service.db
    policy = service.policy

    def before(req: Request) -> None:
        req.state["version"] = microversions.requested(req.headers)

    def after(req: Request, response: Response) -> None:
        version = req.state.get("version")
        if version is None:
            try:
                version = microversions.requested(req.headers)
            except errors.ApiError:
                version = microversions.MIN_VERSION
        for key, value in microversions.headers_for(version).items():
            response.headers[key] = value
        rid = response.headers.get("x-openstack-request-id") or req.request_id
        response.headers["x-compute-request-id"] = rid

    api = Api(error_body=nova_error_body, authenticate=service.cloud.identity.validator
              if "identity" in service.cloud.services else None,
              before=before, after=after, max_body_size=max(conf.max_request_body_size,
                                                            conf.max_user_data_size * 2))
    service.api_helpers = helpers = Helpers(service)

    # -- versions ----------------------------------------------------------------

    @api.route("/", "GET", auth=False)
    def versions(req: Request):
        return JSONResponse({"versions": [
            {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
             "updated": "2025-07-04T12:00:00Z",
             "links": [{"rel": "self", "href": f"{req.base_url}/v2/"}]},
            version_doc(req.base_url)]}, status_code=200)

    @api.route("/v2.1", "GET", auth=False)
    @api.route("/v2.1/", "GET", auth=False)
    def version_show(req: Request):
        return {"version": version_doc(req.base_url, full=True)}

    # -- servers -----------------------------------------------------------------

    @api.route("/v2.1/servers", "GET")
    def server_index(req: Request):
        policy.enforce(req.context, "os_compute_api:servers:index")
        return helpers.list_servers(req, detail=False)

    @api.route("/v2.1/servers/detail", "GET")
    def server_detail(req: Request):
        policy.enforce(req.context, "os_compute_api:servers:detail")
        return helpers.list_servers(req, detail=True)

    @api.route("/v2.1/servers/{server_id}", "GET")
    def server_show(req: Request):
        inst = helpers.refresh_floating([helpers.instance(req)])[0]
        return {"server": helpers.view(req, [inst["uuid"]]).detail(inst, show=True)}

    @api.route("/v2.1/servers", "POST", status=202)
    def server_create(req: Request):
        policy.enforce(req.context, "os_compute_api:servers:create")
        return helpers.create(req)

    @api.route("/v2.1/servers/{server_id}", "PUT")
    def server_update(req: Request):
        inst = helpers.instance(req)
        body = validate(schemas.server_update, req.json())["server"]
        values = {}
        if "name" in body:
            values["display_name"] = body["name"]
        if "description" in body:
            if req.state["version"] < (2, 19):
                raise errors.BadRequest("Additional properties are not allowed "
                                        "('description' was unexpected)")
            values["description"] = body["description"]
        for key, col in (("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6")):
            if key in body:
                values[col] = body[key]
        if "hostname" in body:
            values["hostname"] = body["hostname"]
        if values:
            inst = conductor.update_instance(inst["uuid"], values)
        return {"server": helpers.view(req, [inst["uuid"]]).detail(inst, show=True)}

    @api.route("/v2.1/servers/{server_id}", "DELETE", status=204)
    def server_delete(req: Request):
        inst = helpers.instance(req)
        helpers.check_locked(req, inst, "delete")
        helpers.delete(req, inst)
        return None

    @api.route("/v2.1/servers/{server_id}/action", "POST", status=202)
    def server_action(req: Request):
        return helpers.action(req)

    # -- metadata ----------------------------------------------------------------

    @api.route("/v2.1/servers/{server_id}/metadata", "GET")
    def metadata_index(req: Request):
        return {"metadata": helpers.instance(req)["meta"]}

    @api.route("/v2.1/servers/{server_id}/metadata", ("PUT", "POST"))
    def metadata_set(req: Request):
        inst = helpers.instance(req)
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise errors.BadRequest("Malformed request body: 'metadata' is required")
        validate(schemas.metadata, body["metadata"])
        meta = body["metadata"] if req.method == "PUT" else {**inst["meta"],
                                                             **body["metadata"]}
        helpers.check_meta_quota(inst["project_id"], meta)
        inst = conductor.update_instance(inst["uuid"], {"meta": meta})
        return {"metadata": inst["meta"]}

    @api.route("/v2.1/servers/{server_id}/metadata/{key}", "GET")
    def metadata_show(req: Request):
        inst = helpers.instance(req)
        key = req.path_params["key"]
        if key not in inst["meta"]:
            raise errors.NotFound("Metadata item was not found")
        return {"meta": {key: inst["meta"][key]}}

    @api.route("/v2.1/servers/{server_id}/metadata/{key}", "PUT")
    def metadata_item_set(req: Request):
        inst = helpers.instance(req)
        key = req.path_params["key"]
        body = req.json()
        item = body.get("meta") if isinstance(body, dict) else None
        if not isinstance(item, dict) or len(item) != 1:
            raise errors.BadRequest("Request body contains too many items" if
                                    isinstance(item, dict) else "Malformed request body")
        if key not in item:
            raise errors.BadRequest("Request body and URI mismatch")
        validate(schemas.metadata, item)
        meta = {**inst["meta"], **item}
        helpers.check_meta_quota(inst["project_id"], meta)
        conductor.update_instance(inst["uuid"], {"meta": meta})
        return {"meta": item}

    @api.route("/v2.1/servers/{server_id}/metadata/{key}", "DELETE", status=204)
    def metadata_delete(req: Request):
        inst = helpers.instance(req)
        key = req.path_params["key"]
        if key not in inst["meta"]:
            raise errors.NotFound("Metadata item was not found")
        meta = dict(inst["meta"])
        meta.pop(key)
        conductor.update_instance(inst["uuid"], {"meta": meta})

    # -- tags (2.26) --------------------------------------------------------------

    def tagged(req: Request) -> dict:
        if req.state["version"] < (2, 26):
            raise errors.NotFound("The resource could not be found.")
        return helpers.instance(req)

    @api.route("/v2.1/servers/{server_id}/tags", "GET")
    def tags_index(req: Request):
        return {"tags": tagged(req)["tags"]}

    @api.route("/v2.1/servers/{server_id}/tags", "PUT")
    def tags_replace(req: Request):
        inst = tagged(req)
        body = validate({"type": "object", "properties": {"tags": {
            "type": "array", "items": schemas.tag, "maxItems": 50}},
            "required": ["tags"], "additionalProperties": False}, req.json())
        tags = list(dict.fromkeys(body["tags"]))
        conductor.update_instance(inst["uuid"], {"tags": tags})
        return {"tags": tags}

    @api.route("/v2.1/servers/{server_id}/tags", "DELETE", status=204)
    def tags_clear(req: Request):
        conductor.update_instance(tagged(req)["uuid"], {"tags": []})

    @api.route("/v2.1/servers/{server_id}/tags/{tag}", "GET", status=204)
    def tag_check(req: Request):
        if req.path_params["tag"] not in tagged(req)["tags"]:
            raise errors.NotFound(f"Tag {req.path_params['tag']} could not be found.")

    @api.route("/v2.1/servers/{server_id}/tags/{tag}", "PUT")
    def tag_add(req: Request):
        inst = tagged(req)
        tag = req.path_params["tag"]
        validate(schemas.tag, tag)
        if tag in inst["tags"]:
            return Response(status_code=204)
        if len(inst["tags"]) >= 50:
            raise errors.BadRequest("The number of tags exceeded the per-server limit 50")
        conductor.update_instance(inst["uuid"], {"tags": [*inst["tags"], tag]})
        return Response(status_code=201, headers={
            "Location": f"{req.base_url}/v2.1/servers/{inst['uuid']}/tags/{tag}"})

    @api.route("/v2.1/servers/{server_id}/tags/{tag}", "DELETE", status=204)
    def tag_delete(req: Request):
        inst = tagged(req)
        tag = req.path_params["tag"]
        if tag not in inst["tags"]:
            raise errors.NotFound(f"Tag {tag} could not be found.")
        conductor.update_instance(inst["uuid"], {"tags": [t for t in inst["tags"] if t != tag]})

    # -- instance actions ------------------------------------------------------------

    @api.route("/v2.1/servers/{server_id}/os-instance-actions", "GET")
    def actions_index(req: Request):
        inst = helpers.instance(req, deleted=True)
        with db.reader() as s:
            rows = s.execute(sa.select(m.instance_action).where(
                m.instance_action.c.instance_uuid == inst["uuid"]).order_by(
                m.instance_action.c.id.desc())).all()
        return {"instanceActions": [helpers.action_view(req, row(r)) for r in rows]}

    @api.route("/v2.1/servers/{server_id}/os-instance-actions/{request_id}", "GET")
    def actions_show(req: Request):
        inst = helpers.instance(req, deleted=True)
        with db.reader() as s:
            found = row(s.execute(sa.select(m.instance_action).where(
                m.instance_action.c.instance_uuid == inst["uuid"],
                m.instance_action.c.request_id == req.path_params["request_id"])).first())
        if found is None:
            raise errors.NotFound(f"Action {req.path_params['request_id']} not found")
        out = helpers.action_view(req, found)
        if policy.check(req.context, "os_compute_api:os-instance-actions:events") \
                or req.state["version"] >= (2, 51):
            events = []
            for e in found["events"]:
                ev = {"event": e["event"], "start_time": e["start_time"][:19] + ".000000",
                      "finish_time": e["finish_time"][:19] + ".000000", "result": e["result"]}
                if req.context.is_admin:
                    ev["traceback"] = e.get("traceback")
                    if req.state["version"] >= (2, 62):
                        ev["host"] = e.get("host") or ""
                        ev["hostId"] = views.host_id(inst["project_id"], e.get("host"))
                elif req.state["version"] >= (2, 62):
                    ev["hostId"] = views.host_id(inst["project_id"], e.get("host"))
                if req.state["version"] >= (2, 84):
                    ev["details"] = None if e["result"] != "Error" else e.get("traceback")
                events.append(ev)
            out["events"] = events
        return {"instanceAction": out}

    # -- interfaces, diagnostics, ips -------------------------------------------------

    @api.route("/v2.1/servers/{server_id}/os-interface", "GET")
    def interfaces(req: Request):
        inst = helpers.instance(req)
        return {"interfaceAttachments": [helpers.interface_view(req, v)
                                         for v in inst["network_info"] or []]}

    @api.route("/v2.1/servers/{server_id}/os-interface/{port_id}", "GET")
    def interface_show(req: Request):
        inst = helpers.instance(req)
        for vif in inst["network_info"] or []:
            if vif["id"] == req.path_params["port_id"]:
                return {"interfaceAttachment": helpers.interface_view(req, vif)}
        raise errors.NotFound(f"Port {req.path_params['port_id']} is not attached")

    @api.route("/v2.1/servers/{server_id}/os-interface", "POST")
    def interface_attach(req: Request):
        return helpers.attach_interface(req)

    @api.route("/v2.1/servers/{server_id}/os-interface/{port_id}", "DELETE", status=202)
    def interface_detach(req: Request):
        helpers.detach_interface(req)

    @api.route("/v2.1/servers/{server_id}/diagnostics", "GET")
    def diagnostics(req: Request):
        policy.enforce(req.context, "os_compute_api:os-server-diagnostics")
        inst = helpers.instance(req)
        if not inst["host"] or inst["vm_state"] == states.BUILDING:
            raise errors.Conflict(f"Cannot 'get_diagnostics' instance {inst['uuid']} while "
                                  f"it is in vm_state {inst['vm_state']}")
        data = conductor.agents.call(context_dict(req.context), inst["host"],
                                     "get_diagnostics",
                                     instance=conductor.agent_view(inst))
        return data

    @api.route("/v2.1/servers/{server_id}/ips", "GET")
    def ips(req: Request):
        return {"addresses": helpers.ips(helpers.instance(req))}

    @api.route("/v2.1/servers/{server_id}/ips/{network}", "GET")
    def ips_network(req: Request):
        addrs = helpers.ips(helpers.instance(req))
        net = req.path_params["network"]
        if net not in addrs:
            raise errors.NotFound("Instance is not a member of specified network")
        return {net: addrs[net]}

    @api.route("/v2.1/servers/{server_id}/os-security-groups", "GET")
    def server_security_groups(req: Request):
        inst = helpers.instance(req)
        return {"security_groups": [{"name": n, "id": n, "description": "",
                                     "tenant_id": inst["project_id"], "rules": []}
                                    for n in inst["security_groups"] or []]}

    @api.route("/v2.1/servers/{server_id}/os-volume_attachments", "GET")
    def volume_attachments(req: Request):
        inst = helpers.instance(req)
        return {"volumeAttachments": [attachment_view(req, inst, b)
                                      for b in inst["block_devices"] or []
                                      if b.get("volume_id")]}

    def attachment_view(req: Request, inst: dict, b: dict) -> dict:
        item = {"serverId": inst["uuid"], "volumeId": b["volume_id"],
                "device": b.get("device_name")}
        if req.state["version"] < (2, 89):
            item["id"] = b["volume_id"]
        else:
            item["attachment_id"] = b.get("attachment_id")
            item["bdm_uuid"] = b.get("bdm_uuid")
        if req.state["version"] >= (2, 70):
            item["tag"] = b.get("tag")
        if req.state["version"] >= (2, 79):
            item["delete_on_termination"] = bool(b.get("delete_on_termination"))
        return item

    @api.route("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "GET")
    def volume_attachment_show(req: Request):
        inst = helpers.instance(req)
        for b in inst["block_devices"] or []:
            if b.get("volume_id") == req.path_params["volume_id"]:
                return {"volumeAttachment": attachment_view(req, inst, b)}
        raise errors.NotFound(f"Volume {req.path_params['volume_id']} is not attached to "
                              f"{inst['uuid']}")

    @api.route("/v2.1/servers/{server_id}/os-volume_attachments", "POST")
    def volume_attach(req: Request):
        from pocketstack.compute import volumes

        inst = helpers.instance(req)
        body = validate({"type": "object", "properties": {"volumeAttachment": {
            "type": "object", "properties": {
                "volumeId": {"type": "string", "minLength": 1},
                "device": {"type": ["string", "null"],
                           "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"},
                "tag": {"type": "string", "maxLength": 60},
                "delete_on_termination": {"type": "boolean"}},
            "required": ["volumeId"], "additionalProperties": False}},
            "required": ["volumeAttachment"], "additionalProperties": False}, req.json())
        att = body["volumeAttachment"]
        if "delete_on_termination" in att and req.state["version"] < (2, 79):
            raise errors.BadRequest("Additional properties are not allowed "
                                    "('delete_on_termination' was unexpected)")
        helpers.check_locked(req, inst, "attach_volume")
        bdm = volumes.attach(service, req.context, inst, att["volumeId"], att.get("device"),
                             bool(att.get("delete_on_termination")), att.get("tag"))
        return {"volumeAttachment": attachment_view(req, inst, bdm)}

    @api.route("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "DELETE",
               status=202)
    def volume_detach(req: Request):
        from pocketstack.compute import volumes

        inst = helpers.instance(req)
        helpers.check_locked(req, inst, "detach_volume")
        volumes.detach(service, req.context, inst, req.path_params["volume_id"])

    @api.route("/v2.1/servers/{server_id}/shares", "GET")
    def shares(req: Request):
        if req.state["version"] < (2, 97):
            raise errors.NotFound("The resource could not be found.")
        helpers.instance(req)
        return {"shares": []}  # no shared file systems service in this cloud

    from pocketstack.compute import api_resources

    api_resources.register(api, service, helpers)
    from pocketstack.compute import api_proxies

    api_proxies.register(api, service, helpers)
    from pocketstack.compute.console import api as console_api

    console_api.register(api, service, helpers)
    from pocketstack.compute import quota_classes, server_password

    quota_classes.register(api, service)
    server_password.register(api, helpers)
    return api


def _admin_pass() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


class Helpers:
    """The servers API's logic, shared by its routes."""

    def __init__(self, service):
        self.service = service
        self.conf = service.conf
        self.conductor = service.conductor
        self.db = service.db
        self.policy = service.policy
        self.flavor_cache: dict[str, tuple[dict, float]] = {}

    # -- lookups ------------------------------------------------------------------

    def instance(self, req: Request, *, deleted: bool = False) -> dict:
        server_id = req.path_params["server_id"]
        ctx = req.context
        inst = self.conductor.get_instance(server_id, deleted=deleted)
        if not ctx.is_admin and inst["project_id"] != ctx.project_id:
            raise errors.NotFound(f"Instance {server_id} could not be found.")
        return inst

    def refresh_floating(self, insts: list[dict]) -> list[dict]:
        """Floating IPs change in the networking service: refresh the cached addresses
        (Nova's info-cache refresh) and keep the cache in step."""
        ports = [v["id"] for i in insts for v in i.get("network_info") or []]
        if not ports or self.conductor.network.manager is None:
            return insts
        fips = self.conductor.network.floating_ips(RequestContext_internal(), ports)
        out = []
        for inst in insts:
            changed = False
            vifs = []
            for vif in inst["network_info"] or []:
                wanted = fips.get(vif["id"], [])
                if sorted(vif.get("floating_ips") or []) != sorted(wanted):
                    vif = {**vif, "floating_ips": wanted}
                    changed = True
                vifs.append(vif)
            if changed:
                inst = {**inst, "network_info": vifs}
                try:
                    self.conductor.update_instance(inst["uuid"], {"network_info": vifs})
                except Exception:  # noqa: BLE001 - shown anyway; cached next time
                    pass
            out.append(inst)
        return out

    def host_status_fn(self):
        with self.conductor.fast.read() as conn:
            services = {r.host: row(r) for r in conn.execute(
                sql.SERVICES, {"binary": "pocketstack-compute"}).all()}
        now = utcnow()

        def status(host: str) -> str:
            svc = services.get(host)
            if svc is None:
                return "UNKNOWN"
            if svc["forced_down"] or not self.conductor.service_up(svc, now):
                return "DOWN"
            if svc["disabled"]:
                return "MAINTENANCE"
            return "UP"
        shown = {host: status(host) for host in services}
        return lambda host: shown.get(host) or "UNKNOWN"

    def view(self, req: Request, uuids: list[str] | None = None) -> views.ServerView:
        v = req.state["version"]
        groups = {}
        if v >= (2, 71) and uuids:
            with self.db.reader() as s:
                for g_uuid, i_uuid in s.execute(sa.select(
                        m.server_group.c.uuid, m.server_group_member.c.instance_uuid).join(
                        m.server_group_member).where(
                        m.server_group_member.c.instance_uuid.in_(uuids))).all():
                    groups.setdefault(i_uuid, []).append(g_uuid)
        admin = req.context.is_admin
        return views.ServerView(req.base_url, v, admin,
                                host_status=self.host_status_fn() if admin and v >= (2, 16)
                                else None, groups=groups)

    # -- list --------------------------------------------------------------------

    def list_servers(self, req: Request, *, detail: bool) -> dict:
        from pocketstack.common import pagination

        ctx = req.context
        q = req.query
        v = req.state["version"]
        t = m.instance
        # only the columns the view shows: big JSON documents stay unread
        skip = {"key_data", "old_flavor", "new_flavor", "old_host", "locked_by", "vcpus",
                "memory_mb", "root_gb", "deleted", "deleted_at"}
        if v < (2, 100):
            skip.add("request_spec")
        if not (ctx.is_admin and v >= (2, 3)):
            skip.add("user_data")
        stmt = sql.plain_select([c for c in t.c if c.key not in skip] if detail else [
            t.c.id, t.c.uuid, t.c.display_name, t.c.created_at, t.c.updated_at, t.c.flavor,
            t.c.network_info, t.c.tags, t.c.description])
        all_tenants = "all_tenants" in q and q.get("all_tenants", "").lower() not in (
            "false", "0", "off", "no")
        if all_tenants:
            self.policy.enforce(ctx, "os_compute_api:servers:index:get_all_tenants")
        admin = ctx.is_admin
        project = q.get("project_id") or q.get("tenant_id")
        if not admin or not (all_tenants or project):
            if not (admin and all_tenants):
                project = ctx.project_id if not admin or not project else project
        if project and not (admin and all_tenants and not q.get("project_id")
                            and not q.get("tenant_id")):
            stmt = stmt.where(t.c.project_id == project)
        deleted = q.get("deleted", "false").lower() in ("true", "1", "yes") and admin
        changes_since = q.get("changes-since")
        if deleted:
            stmt = stmt.where(t.c.deleted.is_(True))
        elif not changes_since:
            stmt = stmt.where(t.c.deleted.is_(False))
        if changes_since:
            stmt = stmt.where(t.c.updated_at >= _parse_time(changes_since, "changes-since"))
        if q.get("changes-before") and v >= (2, 66):
            stmt = stmt.where(t.c.updated_at <= _parse_time(q["changes-before"],
                                                             "changes-before"))
        if "status" in q:
            statuses = [s.upper() for s in q.getlist("status")]
            conds = []
            for st in statuses:
                if st not in states.STATUS_FILTER:
                    if v >= (2, 38):
                        raise errors.BadRequest(f"Invalid status value: {st}")
                    return {"servers": []}
                vms, tasks = states.STATUS_FILTER[st]
                c = t.c.vm_state.in_(vms)
                if tasks:
                    c = sa.and_(c, t.c.task_state.in_(tasks))
                conds.append(c)
            stmt = stmt.where(sa.or_(*conds))
        for key, col in (("host", t.c.host), ("node", t.c.node), ("image", t.c.image_ref),
                         ("availability_zone", t.c.availability_zone),
                         ("key_name", t.c.key_name), ("reservation_id", t.c.reservation_id),
                         ("user_id", t.c.user_id), ("vm_state", t.c.vm_state),
                         ("task_state", t.c.task_state)):
            if key in q:
                if key in ("host", "node") and not admin:
                    continue
                stmt = stmt.where(col == q[key])
        if "locked" in q and v >= (2, 73):
            stmt = stmt.where(t.c.locked.is_(req.flag("locked")))
        python_filters = []
        if "name" in q:
            try:
                pattern = re.compile(q["name"])
            except re.error:
                raise errors.BadRequest(f"Invalid regex '{q['name']}'") from None
            python_filters.append(lambda i: bool(pattern.search(i["display_name"] or "")))
        if "flavor" in q:
            fid = q["flavor"]
            python_filters.append(lambda i: i["flavor"].get("flavorid") == fid)
        if "ip" in q or "ip6" in q:
            pat = re.compile(q.get("ip") or q.get("ip6"))
            python_filters.append(lambda i: any(
                pat.search(a["addr"]) for lst in views.addresses(i["network_info"]).values()
                for a in lst))
        if v >= (2, 26):
            for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
                if key in q:
                    wanted = set(q[key].split(","))
                    fn = {"tags": lambda i, w=wanted: w <= set(i["tags"]),
                          "tags-any": lambda i, w=wanted: bool(w & set(i["tags"])),
                          "not-tags": lambda i, w=wanted: not w <= set(i["tags"]),
                          "not-tags-any": lambda i, w=wanted: not (w & set(i["tags"]))}[key]
                    python_filters.append(fn)
        if "description" in q and v >= (2, 83):
            desc = q["description"]
            python_filters.append(lambda i: desc in (i["description"] or ""))
        keys = q.getlist("sort_key")
        if keys and not admin:
            for k in keys:
                if k in ("host", "node"):
                    raise errors.BadRequest(f"Only administrators can sort servers by {k}")
        sort = pagination.parse_sort(q, {k: SORT_COLUMNS.get(k, k) for k in SORT_KEYS
                                         if k in SORT_COLUMNS or k in t.c},
                                     [("created_at", "desc")])
        sort = [(("display_name" if c == "display_name" else c), d) for c, d in sort]
        max_limit = self.conf.osapi_max_limit
        limit = pagination.parse_limit(q, default=max_limit, maximum=max_limit)
        marker_row = None
        if q.get("marker"):
            with self.db.reader() as s:
                marker_row = s.execute(sa.select(t).where(t.c.uuid == q["marker"])).first()
            if marker_row is None:
                raise errors.BadRequest(f"marker [{q['marker']}] not found")
        stmt = _keyset(stmt, t, sort, marker_row, None if python_filters else limit)
        with self.db.reader() as s:
            rows = sql.decode_rows(s.execute(stmt))
        insts = [r for r in rows if all(f(r) for f in python_filters)]
        if python_filters and limit is not None:
            insts = insts[:limit]
        if detail and len(insts) <= 100:
            insts = self.refresh_floating(insts)
        view = self.view(req) if detail else None
        servers = [view.detail(i) for i in insts] if detail else [
            {"id": i["uuid"], "name": i["display_name"],
             "links": views.links(req.base_url, "servers", i["uuid"])} for i in insts]
        result = {"servers": servers}
        if limit and len(insts) == limit and insts:
            path = "servers/detail" if detail else "servers"
            result["servers_links"] = [{"rel": "next", "href": pagination.next_href(
                f"{req.base_url}/v2.1/{path}", q, insts[-1]["uuid"])}]
        return result

    # -- create ------------------------------------------------------------------

    def create(self, req: Request):
        ctx = req.context
        v = req.state["version"]
        body = validate(schemas.server_create, req.json())
        server = body["server"]
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        for key, since in (("description", (2, 19)), ("tags", (2, 52)),
                           ("trusted_image_certificates", (2, 63)), ("host", (2, 74)),
                           ("hypervisor_hostname", (2, 74)), ("hostname", (2, 90))):
            if key in server and v < since:
                raise errors.BadRequest(f"Additional properties are not allowed ('{key}' was "
                                        "unexpected)")
        if "personality" in server and v >= (2, 57):
            raise errors.BadRequest("Additional properties are not allowed ('personality' "
                                    "was unexpected)")
        if server.get("personality"):
            limit = self.conductor.quota_limits(ctx.project_id)["injected_files"]
            if len(server["personality"]) > limit:
                raise errors.Forbidden("Quota exceeded, too many injected files")
        conductor = self.conductor
        # flavor
        flavor = self.find_flavor(ctx, str(server["flavorRef"]).rstrip("/").split("/")[-1],
                                  status=400)
        # counts
        try:
            min_count = int(server.get("min_count", 1))
            max_count = int(server.get("max_count", min_count))
        except (TypeError, ValueError):
            raise errors.BadRequest("min_count and max_count must be integers") from None
        if min_count < 1 or max_count < 1:
            raise errors.BadRequest("min_count and max_count must be at least 1")
        if min_count > max_count:
            raise errors.BadRequest("min_count must be <= max_count")
        # user data
        user_data = server.get("user_data")
        if user_data is not None:
            if len(user_data) > self.conf.max_user_data_size:
                raise errors.BadRequest(f"User data too large. User data must be no larger "
                                        f"than {self.conf.max_user_data_size} bytes once "
                                        "base64 encoded. Your data is "
                                        f"{len(user_data)} bytes")
            try:
                base64.b64decode(user_data, validate=True)
            except ValueError:
                raise errors.BadRequest("Userdata content cannot be decoded") from None
        # block devices
        bdms, boot_volume = self.parse_bdms(ctx, server)
        # image
        image_ref = server.get("imageRef") or ""
        image_ref = image_ref.rstrip("/").split("/")[-1] if image_ref else ""
        image = None
        if image_ref:
            image = conductor.images.get(ctx, image_ref)
            if image["status"] != "active":
                raise errors.BadRequest(f"Image {image_ref} is not active.")
            if flavor["memory_mb"] < (image["min_ram"] or 0):
                raise errors.BadRequest("Flavor's memory is too small for requested image.")
            if flavor["root_gb"] and flavor["root_gb"] < (image["min_disk"] or 0) \
                    and not boot_volume:
                raise errors.BadRequest("Flavor's disk is too small for requested image.")
        elif not boot_volume:
            raise errors.BadRequest("Block Device Mapping is Invalid: Boot sequence for the "
                                    "instance and image/block device mapping combination is "
                                    "not valid.")
        # networks
        networks = server.get("networks")
        if networks is None:
            if v >= (2, 37):
                raise errors.BadRequest("Invalid input for field/attribute server. 'networks' "
                                        "is a required property")
            networks = []
        elif isinstance(networks, str) and v < (2, 37):
            raise errors.BadRequest("Invalid input for field/attribute networks.")
        if isinstance(networks, list):
            for n in networks:
                if not n.get("uuid") and not n.get("port"):
                    raise errors.BadRequest("Bad networks format: network uuid is not in "
                                            "proper format")
                if n.get("uuid") and not UUID_RE.match(n["uuid"]):
                    raise errors.BadRequest(f"Bad networks format: network uuid is not in "
                                            f"proper format ({n['uuid']})")
            if max_count > 1 and any(n.get("port") for n in networks):
                raise errors.BadRequest("Unable to launch multiple instances with a single "
                                        "configured port ID. Please launch your instance one "
                                        "by one with different ports.")
        sg_names = list(dict.fromkeys(g["name"] for g in server.get("security_groups") or []))
        conductor.network.validate(ctx, networks, sg_names)
        if not sg_names and conductor.network.manager is not None and networks != "none":
            sg_names = ["default"]
        # key pair
        key_data = None
        key_name = server.get("key_name")
        if key_name:
            with self.db.reader() as s:
                kp = s.execute(sa.select(m.keypair).where(
                    m.keypair.c.user_id == ctx.user_id, m.keypair.c.name == key_name)).first()
            if kp is None:
                raise errors.BadRequest("Invalid key_name provided.")
            key_data = kp.public_key
        # availability zone / forced host
        az = server.get("availability_zone") or self.conf.default_schedule_zone
        force_host = None
        if az and ":" in az:
            az, _, force_host = az.partition(":")
            force_host = force_host.partition(":")[0] or None
            if force_host:
                self.policy.enforce(ctx, "os_compute_api:servers:create:forced_host")
            az = az or None
        if server.get("host"):
            self.policy.enforce(ctx, "os_compute_api:servers:create:forced_host")
            force_host = server["host"]
        if az:
            zones = self.service.resources.zone_names()
            if az not in zones:
                raise errors.BadRequest("The requested availability zone is not available")
        # server group
        group = None
        group_uuid = hints.get("group")
        if group_uuid:
            with self.db.reader() as s:
                group = row(s.execute(sa.select(m.server_group).where(
                    m.server_group.c.uuid == group_uuid)).first())
            if group is None or (group["project_id"] != ctx.project_id and not ctx.is_admin):
                raise errors.BadRequest(f"Invalid server group {group_uuid}")
        meta = server.get("metadata") or {}
        if meta:
            self.check_meta_quota(ctx.project_id, meta)
        name = server["name"]
        hostname = server.get("hostname") or _hostname(name)
        admin_pass = server.get("adminPass") or _admin_pass()
        image_props = (image or {}).get("properties") or {}
        reservation_id = "r-" + secrets.token_hex(4)[:8]
        base = {
            "display_name": name, "description": server.get("description"),
            "project_id": ctx.project_id, "user_id": ctx.user_id, "hostname": hostname,
            "image_ref": image_ref, "flavor": views.flavor_snapshot(flavor),
            "vcpus": flavor["vcpus"], "memory_mb": flavor["memory_mb"],
            "root_gb": flavor["root_gb"] + flavor["ephemeral_gb"],
            "vm_state": states.BUILDING, "task_state": states.SCHEDULING, "power_state": 0,
            "availability_zone": az or None, "pinned_az": az or None,
            "key_name": key_name, "key_data": key_data, "user_data": user_data,
            "meta": meta, "system_metadata": {
                "image_properties": {k: str(val) for k, val in image_props.items()},
                "disk_config": server.get("OS-DCF:diskConfig", "MANUAL")},
            "tags": list(dict.fromkeys(server.get("tags") or [])),
            "security_groups": sg_names, "network_info": [], "block_devices": bdms,
            "request_spec": {
                "networks": networks, "availability_zone": az or None,
                "force_host": force_host, "scheduler_hints": hints,
                "group": group_uuid if group else None, "image_properties": image_props,
                "image_meta": image or {}, "admin_password": None},
            "access_ip_v4": server.get("accessIPv4"), "access_ip_v6": server.get("accessIPv6"),
            "config_drive": "True" if str(server.get("config_drive", "")).lower()
            in ("true", "1") else "",
            "reservation_id": reservation_id,
            "root_device_name": "/dev/vda" if boot_volume else "/dev/sda",
            "_multi_names": max_count > 1,
        }
        created = conductor.create_instances(ctx, base, max_count,
                                             group["id"] if group else None, min_count)
        conductor.start_build(context_dict(ctx), [c["uuid"] for c in created])
        if str(server.get("return_reservation_id", "")).lower() in ("true", "1"):
            return JSONResponse({"reservation_id": reservation_id}, status_code=202)
        first = created[0]
        body = {"id": first["uuid"], "links": views.links(req.base_url, "servers",
                                                         first["uuid"]),
                "OS-DCF:diskConfig": base["system_metadata"]["disk_config"],
                "security_groups": [{"name": n} for n in sg_names or ["default"]],
                "adminPass": admin_pass}
        return JSONResponse({"server": body}, status_code=202, headers={
            "Location": f"{req.base_url}/v2.1/servers/{first['uuid']}"})

    def parse_bdms(self, ctx, server: dict) -> tuple[list[dict], bool]:
        """Check block_device_mapping_v2; boot from volume is a hook for block storage."""
        bdms = []
        boot_volume = False
        if server.get("block_device_mapping") and server.get("block_device_mapping_v2"):
            raise errors.BadRequest("Using different block_device_mapping syntaxes is not "
                                    "allowed in the same request.")
        boot_indexes = []
        for raw in server.get("block_device_mapping_v2") or []:
            source = raw["source_type"]
            dest = raw.get("destination_type", "local" if source in ("image", "blank")
                           else "volume")
            try:
                boot_index = None if raw.get("boot_index") in (None, "", "none") else \
                    int(raw["boot_index"])
            except (TypeError, ValueError):
                raise errors.BadRequest("Block Device Mapping is Invalid: Boot index is "
                                        "invalid.") from None
            if source in ("volume", "snapshot", "image") and not raw.get("uuid"):
                raise errors.BadRequest("Block Device Mapping is Invalid: Missing device UUID.")
            if source == "blank" and dest == "volume" and not raw.get("volume_size"):
                raise errors.BadRequest("Block Device Mapping is Invalid: You specified more "
                                        "local devices than the limit allows")
            if source == "image" and dest == "local" and boot_index not in (0, None):
                raise errors.BadRequest("Block Device Mapping is Invalid: Mapping image to "
                                        "local is not supported.")
            if boot_index is not None:
                boot_indexes.append(boot_index)
            if dest == "volume" and boot_index == 0:
                boot_volume = True
            if dest == "volume":
                if self.service.volume_api is None:
                    raise errors.BadRequest("Block Device Mapping is Invalid: the block "
                                            "storage service is not available.")
                volume = self.service.volume_hook("check", ctx, raw) \
                    if source == "volume" else None
                if source == "image":
                    self.conductor.images.get(ctx, raw["uuid"])
                bdms.append({"volume_id": (volume or {}).get("id") or (
                                 raw.get("uuid") if source == "volume" else None),
                             "image_id": raw.get("uuid") if source == "image" else None,
                             "source_type": source, "boot_index": boot_index,
                             "device_name": raw.get("device_name"),
                             "delete_on_termination": str(raw.get(
                                 "delete_on_termination", False)).lower() == "true",
                             "volume_size": raw.get("volume_size"), "tag": raw.get("tag")})
        if sorted(boot_indexes) != list(range(len(boot_indexes))):
            raise errors.BadRequest("Block Device Mapping is Invalid: Boot sequence for the "
                                    "instance and image/block device mapping combination is "
                                    "not valid.")
        return bdms, boot_volume

    def find_flavor(self, ctx, flavor_id: str, status: int = 404) -> dict:
        cached = self.flavor_cache.get(flavor_id)
        if cached is not None and cached[1] > time.monotonic():
            f = dict(cached[0])
            if f["disabled"] and status == 400:
                raise errors.BadRequest(f"Flavor {flavor_id} could not be found.")
            return f
        with self.db.reader() as s:
            f = row(s.execute(sa.select(m.flavor).where(
                m.flavor.c.flavorid == flavor_id)).first())
            if f is not None and not f["is_public"] and not ctx.is_admin:
                allowed = s.execute(sa.select(m.flavor_access).where(
                    m.flavor_access.c.flavorid == flavor_id,
                    m.flavor_access.c.project_id == ctx.project_id)).first()
                if allowed is None:
                    f = None
        if f is None:
            raise errors.for_status(status, f"Flavor {flavor_id} could not be found.")
        if f["is_public"]:
            # public flavors are shared by every request for a second
            self.flavor_cache[flavor_id] = (dict(f), time.monotonic() + 1.0)
        if f["disabled"] and status == 400:
            raise errors.BadRequest(f"Flavor {flavor_id} could not be found.")
        return f

    def check_meta_quota(self, project_id: str, meta: dict) -> None:
        limit = self.conductor.quota_limits(project_id)["metadata_items"]
        if limit >= 0 and len(meta) > limit:
            raise errors.Forbidden(f"Quota exceeded for metadata_items: Requested "
                                   f"{len(meta)}, but already used 0 of {limit} "
                                   "metadata_items")

    # -- delete ------------------------------------------------------------------

    def delete(self, req: Request, inst: dict, *, force: bool = False) -> None:
        try:
            inst = self.conductor.update_instance(
                inst["uuid"], {"task_state": states.DELETING},
                expected_task_state=None if force else None)
        except StateConflict as exc:
            inst = exc.instance
        self.conductor.record_action(req.context, inst["uuid"], "delete")
        self.conductor.delete_instance(req.context, inst)

    def check_locked(self, req: Request, inst: dict, action: str) -> None:
        if inst["locked"] and not req.context.is_admin:
            raise errors.Conflict(f"Instance {inst['uuid']} is locked")

    # -- actions -----------------------------------------------------------------

    def action(self, req: Request):
        from pocketstack.compute.actions import run_action

        return run_action(self, req)

    def action_view(self, req: Request, a: dict) -> dict:
        out = {"action": a["action"], "instance_uuid": a["instance_uuid"],
               "request_id": a["request_id"], "user_id": a["user_id"],
               "project_id": a["project_id"],
               "start_time": isotime(a["start_time"], micro=True, z=False),
               "message": a["message"]}
        if req.state["version"] >= (2, 58):
            out["updated_at"] = isotime(a["updated_at"], micro=True, z=False)
        return out

    def interface_view(self, req: Request, vif: dict) -> dict:
        ips = [{"subnet_id": s.get("id"), "ip_address": ip["address"]}
               for s in vif["network"].get("subnets", []) for ip in s.get("ips", [])]
        out = {"port_state": "ACTIVE", "fixed_ips": ips, "port_id": vif["id"],
               "net_id": vif["network"]["id"], "mac_addr": vif.get("address")}
        if req.state["version"] >= (2, 70):
            out["tag"] = None
        return out

    def ips(self, inst: dict) -> dict:
        out = {}
        for net, addrs in views.addresses(inst["network_info"]).items():
            out[net] = [{"version": a["version"], "addr": a["addr"]} for a in addrs]
        return out

    def attach_interface(self, req: Request):
        from pocketstack.compute.actions import attach_interface

        return attach_interface(self, req)

    def detach_interface(self, req: Request):
        from pocketstack.compute.actions import detach_interface

        return detach_interface(self, req)


def RequestContext_internal():  # noqa: N802 - reads as the class it builds
    from pocketstack.common.context import RequestContext

    return RequestContext.internal_admin()


def _hostname(name: str) -> str:
    text = re.sub(r"[^a-zA-Z0-9-]+", "-", name.strip()).strip("-").lower()
    return text[:63] or "server"


def _parse_time(value: str, key: str):
    import datetime

    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(f"Invalid input for query parameters {key}. Value: "
                                f"{value}. '{value}' is not a 'date-time'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def _keyset(stmt, table, sort, marker, limit):
    if not any(col == "id" for col, _ in sort):
        sort = [*sort, ("id", sort[-1][1] if sort else "desc")]
    cols = [(table.c[c], d) for c, d in sort]
    stmt = stmt.order_by(*[c.desc() if d == "desc" else c.asc() for c, d in cols])
    if marker is not None:
        mk = marker._mapping
        crit = []
        for i, (col, d) in enumerate(cols):
            eq = [cols[j][0] == mk[cols[j][0].key] for j in range(i)]
            value = mk[col.key]
            if value is None:
                after = col.is_not(None) if d == "asc" else sa.false()
            else:
                after = col > value if d == "asc" else sa.or_(col < value, col.is_(None))
            crit.append(sa.and_(*eq, after))
        stmt = stmt.where(sa.or_(*crit))
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


__all__ = ["build", "uuidlib"]
