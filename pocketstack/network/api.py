"""Networking v2.0 routes (as the OpenStack Networking API reference describes them).

Handlers are thin: they parse the envelope, query parameters (filters,
``fields``, sorting, pagination) and call the manager (core.py)."""

from __future__ import annotations

from starlette.responses import Response

from pocketstack.common import errors, pagination
from pocketstack.common.http import Api, JSONResponse, Request
from pocketstack.network import extensions

RESERVED = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "sort",
            "verbose"}

# collection -> (member key, manager kind)
COLLECTIONS = {
    "networks": ("network", "network"),
    "subnets": ("subnet", "subnet"),
    "ports": ("port", "port"),
    "routers": ("router", "router"),
    "floatingips": ("floatingip", "floatingip"),
    "security-groups": ("security_group", "security_group"),
    "security-group-rules": ("security_group_rule", "security_group_rule"),
    "subnetpools": ("subnetpool", "subnetpool"),
}
DEFAULT_TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden",
                 404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 409: "HTTPConflict",
                 413: "HTTPRequestEntityTooLarge", 415: "HTTPUnsupportedMediaType",
                 500: "HTTPInternalServerError", 501: "HTTPNotImplemented",
                 503: "HTTPServiceUnavailable"}


def neutron_error_body(err: errors.ApiError) -> Response:
    kind = err.kind or DEFAULT_TYPES.get(err.status, "NeutronError")
    return JSONResponse({"NeutronError": {"type": kind, "message": err.message,
                                          "detail": err.detail or ""}})


def build(service) -> Api:
    mgr = service.manager
    api = Api(error_body=neutron_error_body, authenticate=service.validator,
              max_body_size=service.conf.max_request_body_size)
    max_limit = service.conf.network.pagination_max_limit

    def v2(req: Request) -> str:
        return req.base_url + "/v2.0"

    def select(req: Request, item: dict) -> dict:
        fields = [f for f in req.query.getlist("fields") if f]
        if not fields:
            return item
        return {k: v for k, v in item.items() if k in fields}

    def body_of(req: Request, key: str) -> dict:
        body = req.json()
        if not isinstance(body, dict) or key not in body:
            raise errors.BadRequest("Resource body required", kind="HTTPBadRequest")
        if not isinstance(body[key], dict):
            raise errors.BadRequest(f"Invalid input for {key}. Reason: Resource body must be "
                                    "a dictionary.", kind="HTTPBadRequest")
        return body[key]

    # -- discovery ---------------------------------------------------------

    @api.route("/", "GET", auth=False)
    def versions(req: Request):
        return {"versions": [{"id": "v2.0", "status": "CURRENT",
                              "links": [{"href": req.base_url + "/v2.0/", "rel": "self"}]}]}

    @api.route("/v2.0", "GET", auth=False)
    @api.route("/v2.0/", "GET", auth=False)
    def resources(req: Request):
        return {"resources": [
            {"name": member, "collection": coll.replace("-", "_"),
             "links": [{"href": f"{v2(req)}/{coll}", "rel": "self"}]}
            for coll, (member, _) in COLLECTIONS.items()]}

    @api.route("/v2.0/extensions", "GET")
    def list_extensions(req: Request):
        return {"extensions": extensions.listing()}

    @api.route("/v2.0/extensions/{alias}", "GET")
    def show_extension(req: Request):
        alias = req.path_params["alias"]
        for ext in extensions.listing():
            if ext["alias"] == alias:
                return {"extension": ext}
        raise errors.NotFound(f"Extension with alias {alias} does not exist",
                              kind="HTTPNotFound")

    @api.route("/v2.0/availability_zones", "GET")
    def availability_zones(req: Request):
        zones = [{"name": "nova", "resource": kind, "state": "available"}
                 for kind in ("network", "router")]
        for key, value in req.query.multi_items():
            if key in ("name", "resource", "state"):
                zones = [z for z in zones if z[key] == value]
        return {"availability_zones": zones}

    @api.route("/v2.0/service-providers", "GET")
    def service_providers(req: Request):
        # The one service this plugin provides in-tree; no VPN/LBaaS/FWaaS providers
        # (openstacksdk's project cleanup asks for VPN ones first).
        providers = [{"service_type": "L3_ROUTER_NAT", "name": "default", "default": True}]
        for key, value in req.query.multi_items():
            if key in ("service_type", "name"):
                providers = [p for p in providers if p[key] == value]
            elif key == "default":
                providers = [p for p in providers if str(p[key]).lower() == value.lower()]
        return {"service_providers": providers}

    @api.route("/v2.0/network-ip-availabilities", "GET")
    def ip_availabilities(req: Request):
        filters: dict[str, list] = {}
        for key, value in req.query.multi_items():
            if key not in RESERVED:
                filters.setdefault(key, []).append(value)
        items = mgr.ip_availabilities(req.context, filters)
        return {"network_ip_availabilities": [select(req, i) for i in items]}

    @api.route("/v2.0/network-ip-availabilities/{id}", "GET")
    def ip_availability(req: Request):
        found = mgr.ip_availabilities(req.context, {"network_id": req.path_params["id"]})
        if not found:
            raise errors.NotFound(f"Network {req.path_params['id']} could not be found.",
                                  kind="NetworkNotFound")
        return {"network_ip_availability": select(req, found[0])}

    # -- generic CRUD --------------------------------------------------------

    def list_handler(coll: str, member: str, kind: str):
        def handler(req: Request):
            ctx = req.context
            filters: dict[str, list] = {}
            for key, value in req.query.multi_items():
                if key in RESERVED:
                    continue
                filters.setdefault(key, []).append(value)
            limit = pagination.parse_limit(req.query)
            if max_limit and max_limit > 0:
                limit = min(limit or max_limit, max_limit)
            if limit == 0:
                limit = None
            sorts = pagination.parse_sort(req.query, mgr.sort_keys_of(kind), [])
            marker = req.query.get("marker")
            reverse = req.flag("page_reverse")
            items, more = mgr.list_page(ctx, kind, filters, sorts=sorts, limit=limit,
                                        marker=marker, page_reverse=reverse)
            if req.query.getlist("fields"):
                items = [select(req, i) for i in items]
            body = {coll.replace("-", "_"): items}
            if limit and items:
                base = f"{v2(req)}/{coll}"
                keep = [(k, v) for k, v in req.query.multi_items()
                        if k not in ("marker", "page_reverse")]
                links = []
                if (more and not reverse) or reverse:
                    links.append({"rel": "next", "href": _href(
                        base, keep + [("marker", items[-1]["id"])])})
                if (marker and not reverse) or (reverse and more):
                    links.append({"rel": "previous", "href": _href(
                        base, keep + [("marker", items[0]["id"]), ("page_reverse", "True")])})
                if links:
                    body[coll.replace("-", "_") + "_links"] = links
            return body
        return handler

    def show_handler(member: str, kind: str):
        getter = getattr(mgr, f"get_{kind}")

        def handler(req: Request):
            return {member: select(req, getter(req.context, req.path_params["id"]))}
        return handler

    def create_handler(coll: str, member: str, kind: str):
        creator = getattr(mgr, f"create_{kind}")

        def handler(req: Request):
            body = req.json()
            plural = coll.replace("-", "_")
            if isinstance(body, dict) and plural in body and member not in body:
                items = body[plural]
                if not isinstance(items, list):
                    raise errors.BadRequest("Resource body required", kind="HTTPBadRequest")
                created = []
                try:
                    for item in items:
                        created.append(creator(req.context, item if isinstance(item, dict)
                                               else {"": item}))
                except errors.ApiError:
                    deleter = getattr(mgr, f"delete_{kind}")
                    for done in created:
                        try:
                            deleter(req.context, done["id"])
                        except errors.ApiError:
                            pass
                    raise
                return JSONResponse({plural: created}, status_code=201)
            return JSONResponse({member: creator(req.context, body_of(req, member))},
                                status_code=201)
        return handler

    def update_handler(member: str, kind: str):
        updater = getattr(mgr, f"update_{kind}", None)

        def handler(req: Request):
            if updater is None:
                raise errors.MethodNotAllowed("Method not allowed.",
                                              kind="HTTPMethodNotAllowed")
            return {member: updater(req.context, req.path_params["id"], body_of(req, member))}
        return handler

    def delete_handler(kind: str):
        deleter = getattr(mgr, f"delete_{kind}")

        def handler(req: Request):
            deleter(req.context, req.path_params["id"])
            return None
        return handler

    for coll, (member, kind) in COLLECTIONS.items():
        api.route(f"/v2.0/{coll}", "GET")(list_handler(coll, member, kind))
        api.route(f"/v2.0/{coll}", "POST", status=201)(create_handler(coll, member, kind))
        api.route(f"/v2.0/{coll}/{{id}}", "GET")(show_handler(member, kind))
        api.route(f"/v2.0/{coll}/{{id}}", "PUT")(update_handler(member, kind))
        api.route(f"/v2.0/{coll}/{{id}}", "DELETE", status=204)(delete_handler(kind))

    # -- tags ----------------------------------------------------------------

    TAG_COLLS = "{coll:str}"

    def tag_coll(req: Request) -> str:
        coll = req.path_params["coll"]
        if coll not in mgr.TAGGABLE:
            raise errors.NotFound("The resource could not be found.", kind="HTTPNotFound")
        return coll

    @api.route(f"/v2.0/{TAG_COLLS}/{{id}}/tags", "GET")
    def get_tags(req: Request):
        return {"tags": mgr.get_tags(req.context, tag_coll(req), req.path_params["id"])}

    @api.route(f"/v2.0/{TAG_COLLS}/{{id}}/tags", "PUT")
    def put_tags(req: Request):
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
            raise errors.BadRequest("Invalid tags body", kind="HTTPBadRequest")
        return {"tags": mgr.update_tags(req.context, tag_coll(req), req.path_params["id"],
                                        replace=body["tags"])}

    @api.route(f"/v2.0/{TAG_COLLS}/{{id}}/tags", "DELETE", status=204)
    def delete_tags(req: Request):
        mgr.update_tags(req.context, tag_coll(req), req.path_params["id"], replace=[])

    @api.route(f"/v2.0/{TAG_COLLS}/{{id}}/tags/{{tag}}", "GET", status=204)
    def check_tag(req: Request):
        mgr.check_tag(req.context, tag_coll(req), req.path_params["id"], req.path_params["tag"])

    @api.route(f"/v2.0/{TAG_COLLS}/{{id}}/tags/{{tag}}", "PUT", status=201)
    def add_tag(req: Request):
        mgr.update_tags(req.context, tag_coll(req), req.path_params["id"],
                        add=req.path_params["tag"])
        return Response(status_code=201)

    @api.route(f"/v2.0/{TAG_COLLS}/{{id}}/tags/{{tag}}", "DELETE", status=204)
    def remove_tag(req: Request):
        mgr.update_tags(req.context, tag_coll(req), req.path_params["id"],
                        remove=req.path_params["tag"])

    # -- router interfaces -------------------------------------------------------

    @api.route("/v2.0/routers/{id}/add_router_interface", "PUT")
    def add_interface(req: Request):
        return mgr.add_router_interface(req.context, req.path_params["id"], req.json())

    @api.route("/v2.0/routers/{id}/remove_router_interface", "PUT")
    def remove_interface(req: Request):
        return mgr.remove_router_interface(req.context, req.path_params["id"], req.json())

    @api.route("/v2.0/routers/{id}/add_extraroutes", "PUT")
    def add_extraroutes(req: Request):
        body = body_of(req, "router")
        current = mgr.get_router(req.context, req.path_params["id"])["routes"]
        routes = current + [r for r in body.get("routes") or [] if r not in current]
        return {"router": mgr.update_router(req.context, req.path_params["id"],
                                            {"routes": routes})}

    @api.route("/v2.0/routers/{id}/remove_extraroutes", "PUT")
    def remove_extraroutes(req: Request):
        body = body_of(req, "router")
        current = mgr.get_router(req.context, req.path_params["id"])["routes"]
        routes = [r for r in current if r not in (body.get("routes") or [])]
        return {"router": mgr.update_router(req.context, req.path_params["id"],
                                            {"routes": routes})}

    # -- quotas ----------------------------------------------------------------

    def quota_project(req: Request) -> str:
        return req.path_params["project_id"].removesuffix(".json")

    @api.route("/v2.0/quotas", "GET")
    def list_quotas(req: Request):
        return {"quotas": mgr.list_quotas(req.context)}

    @api.route("/v2.0/quotas/tenant", "GET")
    @api.route("/v2.0/quotas/project", "GET")
    def my_quota(req: Request):
        return {"tenant": {"tenant_id": req.context.project_id}}

    @api.route("/v2.0/quotas/{project_id}", "GET")
    def show_quota(req: Request):
        return {"quota": mgr.get_quota(req.context, quota_project(req))}

    @api.route("/v2.0/quotas/{project_id}/default", "GET")
    def default_quota(req: Request):
        return {"quota": mgr.default_quotas()}

    @api.route("/v2.0/quotas/{project_id}/details", "GET")
    @api.route("/v2.0/quotas/{project_id}/details.json", "GET")
    def quota_details(req: Request):
        return {"quota": mgr.quota_details(req.context, quota_project(req))}

    @api.route("/v2.0/quotas/{project_id}", "PUT")
    def update_quota(req: Request):
        return {"quota": mgr.update_quota(req.context, quota_project(req),
                                          body_of(req, "quota"))}

    @api.route("/v2.0/quotas/{project_id}", "DELETE", status=204)
    def delete_quota(req: Request):
        mgr.delete_quota(req.context, quota_project(req))

    # -- auto-allocated topology -------------------------------------------------

    @api.route("/v2.0/auto-allocated-topology/{project_id}", "GET")
    def get_topology(req: Request):
        dry = "dry-run" in req.query.getlist("fields")
        topo = mgr.get_auto_allocated_topology(req.context, req.path_params["project_id"],
                                               dry_run=dry)
        return {"auto_allocated_topology": topo}

    @api.route("/v2.0/auto-allocated-topology/{project_id}", "DELETE", status=204)
    def delete_topology(req: Request):
        mgr.delete_auto_allocated_topology(req.context, req.path_params["project_id"])

    return api


def _href(base: str, params: list) -> str:
    from urllib.parse import urlencode

    return f"{base}?{urlencode(params)}"
