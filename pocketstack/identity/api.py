"""Identity v3 API routes (as the OpenStack Identity API reference describes them)."""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import time

from starlette.responses import Response

from pocketstack.common import errors
from pocketstack.common.db import isotime
from pocketstack.common.http import (
    Api,
    JSONResponse,
    Request,
    dumps,
    keystone_error_body,
    run_blocking,
)
from pocketstack.identity import backends, core, passwords, schemas

VERSION = {
    "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
    "media-types": [{"base": "application/json",
                     "type": "application/vnd.openstack.identity-v3+json"}],
}
FILTER_SUFFIXES = ("__contains", "__icontains", "__startswith", "__istartswith",
                   "__endswith", "__iendswith", "__equals", "__iequals")


def build(service) -> Api:
    ident: core.IdentityManager = service.manager
    authn = service.authenticator
    policy = service.policy
    api = Api(error_body=keystone_error_body, authenticate=service.validator,
              max_body_size=service.conf.max_request_body_size)

    def enforce(req: Request, action: str, **target) -> None:
        flat = {"target.project_id": req.context.project_id}
        for key, value in target.items():
            flat[f"target.{key.replace('__', '.')}"] = value
        policy.enforce(req.context, f"identity:{action}", flat)

    def v3(req: Request) -> str:
        url = req.state.get("v3")
        if url is None:
            url = req.state["v3"] = req.base_url + "/v3"
        return url

    def links(req: Request, collection: str, id: str) -> dict:
        return {"self": f"{v3(req)}/{collection}/{id}"}

    def body_of(req: Request, schema: dict, key: str) -> dict:
        return schemas.check(schema, req.json())[key]

    def list_response(req: Request, key: str, refs: list[dict], collection: str) -> dict:
        limit = service.conf.identity.list_limit
        result = {key: refs, "links": {"self": f"{v3(req)}/{collection}", "previous": None,
                                       "next": None}}
        if limit and len(refs) > limit:
            result[key] = refs[:limit]
            result["truncated"] = True
        return result

    # Rendered list bodies, reused until the listed kind changes.
    list_bodies: dict[tuple, bytes] = {}

    def rendered_list(req: Request, kind: str, build) -> Response:
        version = ident.store(kind).version(kind)
        if version is None:
            return JSONResponse(build())
        key = (kind, version, v3(req), req.raw.url.query, req.context.domain_id)
        body = list_bodies.get(key)
        if body is None:
            body = dumps(build())
            if len(list_bodies) >= 256:
                list_bodies.clear()
            list_bodies[key] = body
        return Response(body, media_type="application/json")

    def filtered(req: Request, rows: list[dict], attrs: tuple[str, ...],
                 render) -> list[dict]:
        """Keystone's query filters: exact match and name__contains style."""
        refs = [render(r) for r in rows]
        for key, value in req.query.multi_items():
            base, suffix = key, ""
            for s in FILTER_SUFFIXES:
                if key.endswith(s):
                    base, suffix = key[: -len(s)], s
            if base not in attrs:
                continue
            refs = [r for r in refs if _matches(r.get(base), value, suffix)]
        return refs

    # -- renderers ---------------------------------------------------------

    def render_domain(req, d):
        return {"id": d["id"], "name": d["name"], "description": d["description"] or "",
                "enabled": d["enabled"], "tags": [], "options": {},
                "links": links(req, "domains", d["id"]), **d["extra"]}

    def render_project(req, p):
        return {"id": p["id"], "name": p["name"], "domain_id": p["domain_id"],
                "description": p["description"] or "", "enabled": p["enabled"],
                "parent_id": p["parent_id"] or p["domain_id"], "is_domain": False,
                "tags": p["tags"], "options": p["options"],
                "links": links(req, "projects", p["id"]), **p["extra"]}

    def render_user(req, u):
        ref = {"id": u["id"], "name": u["name"], "domain_id": u["domain_id"],
               "enabled": u["enabled"], "password_expires_at": None, "options": u["options"],
               "links": links(req, "users", u["id"]), **u["extra"]}
        if u["default_project_id"]:
            ref["default_project_id"] = u["default_project_id"]
        if u["description"] is not None:
            ref["description"] = u["description"]
        return ref

    def render_group(req, g):
        return {"id": g["id"], "name": g["name"], "domain_id": g["domain_id"],
                "description": g["description"] or "", "links": links(req, "groups", g["id"]),
                **g["extra"]}

    def render_role(req, r):
        return {"id": r["id"], "name": r["name"],
                "domain_id": None if r["domain_id"] == core.GLOBAL else r["domain_id"],
                "description": r["description"], "options": r["options"],
                "links": links(req, "roles", r["id"]), **r["extra"]}

    def render_region(req, r):
        return {"id": r["id"], "description": r["description"] or "",
                "parent_region_id": r["parent_region_id"],
                "links": links(req, "regions", r["id"]), **r["extra"]}

    def render_service(req, s):
        ref = {"id": s["id"], "type": s["type"], "enabled": s["enabled"],
               "links": links(req, "services", s["id"]), **s["extra"]}
        if s["name"] is not None:
            ref["name"] = s["name"]
        if s["description"] is not None:
            ref["description"] = s["description"]
        return ref

    def render_endpoint(req, e):
        return {"id": e["id"], "interface": e["interface"], "region_id": e["region_id"],
                "region": e["region_id"], "service_id": e["service_id"], "url": e["url"],
                "enabled": e["enabled"], "links": links(req, "endpoints", e["id"]),
                **e["extra"]}

    def render_credential(req, c):
        return {"id": c["id"], "user_id": c["user_id"], "project_id": c["project_id"],
                "type": c["type"], "blob": c["blob"], "links": links(req, "credentials", c["id"]),
                **c["extra"]}

    def render_app_cred(req, c):
        return {"id": c["id"], "name": c["name"], "description": c["description"],
                "user_id": c["user_id"], "project_id": c["project_id"], "system": c["system"],
                "expires_at": isotime(c["expires_at"], micro=True, z=False),
                "unrestricted": c["unrestricted"], "roles": c["roles"],
                "access_rules": c["access_rules"],
                "links": {"self": f"{v3(req)}/users/{c['user_id']}/application_credentials/"
                                  f"{c['id']}"}}

    # -- version discovery -------------------------------------------------

    def version_ref(req):
        return {**VERSION, "links": [{"rel": "self", "href": v3(req) + "/"}]}

    @api.route("/", auth=False)
    def versions(req):
        return JSONResponse({"versions": {"values": [version_ref(req)]}}, status_code=300)

    @api.route("/v3", auth=False)
    def version(req):
        return {"version": version_ref(req)}

    api.route("/v3/", auth=False)(version)

    # -- tokens ------------------------------------------------------------

    async def on_loop_if_cached(handler, req):
        """Run a read-only handler on the event loop when all it needs is in memory
        (the common case for token issue by token and validation); when it would
        block (a cache miss, a password hash) run it in the thread pool instead."""
        try:
            with backends.cache_only():
                return handler(req)
        except backends.CacheMiss:
            return await run_blocking(handler, req)

    def issue(req):
        body = schemas.check(schemas.auth, req.json())
        token, payload, ctx = authn.issue(body["auth"])
        data = authn.token_body(payload, ctx, catalog=not req.flag("nocatalog"))
        return JSONResponse({"token": data}, status_code=201,
                            headers={"X-Subject-Token": token})

    @api.route("/v3/auth/tokens", "POST", auth=False)
    async def issue_token(req):
        return await on_loop_if_cached(issue, req)

    def subject(req) -> tuple[str, object, object]:
        token = req.headers.get("x-subject-token")
        if not token:
            raise errors.BadRequest("X-Subject-Token header is required.")
        try:
            payload = authn.decode(token)
            ctx = service.validator.cached(token) or service.validator.validate(token)
        except errors.Unauthorized:
            raise errors.NotFound(f"Could not find token: {token}.") from None
        enforce(req, "validate_token", token__user_id=payload.user_id)
        return token, payload, ctx

    # Rendered bodies of validated tokens: (token, with catalog) -> (generation,
    # deadline, user id, JSON). Valid while nothing token-relevant changed.
    bodies: dict[tuple[str, bool], tuple[int, float, str, bytes]] = {}
    max_bodies = 20000

    def validated(req):
        token = req.headers.get("x-subject-token") or ""
        catalog = not req.flag("nocatalog")
        generation = service.generation()
        hit = bodies.get((token, catalog))
        if hit is not None and hit[0] == generation and time.monotonic() < hit[1]:
            enforce(req, "validate_token", token__user_id=hit[2])
            body = hit[3]
        else:
            token, payload, ctx = subject(req)
            body = dumps({"token": authn.token_body(payload, ctx, catalog=catalog)})
            if len(bodies) >= max_bodies:
                bodies.clear()
            lifetime = min(service.conf.token.cache_time, payload.expires_at - time.time())
            bodies[(token, catalog)] = (generation, time.monotonic() + lifetime,
                                        payload.user_id, body)
        headers = {"X-Subject-Token": token}
        if req.method == "HEAD":
            return Response(status_code=200, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @api.route("/v3/auth/tokens", "GET")
    async def validate_token(req):
        return await on_loop_if_cached(validated, req)

    @api.route("/v3/auth/tokens", "DELETE", status=204)
    def revoke_token(req):
        _, payload, _ = subject(req)
        authn.revoke_token(payload)

    @api.route("/v3/auth/catalog")
    def auth_catalog(req):
        if not (req.context.project_id or req.context.domain_id or req.context.system_scope):
            raise errors.Forbidden("The service catalog needs a scoped token.")
        return {"catalog": ident.catalog(req.context.project_id),
                "links": {"self": f"{v3(req)}/auth/catalog", "previous": None, "next": None}}

    @api.route("/v3/auth/projects")
    def auth_projects(req):
        refs = [render_project(req, p) for p in ident.projects_for_user(req.context.user_id)]
        return list_response(req, "projects", refs, "auth/projects")

    @api.route("/v3/auth/domains")
    def auth_domains(req):
        refs = [render_domain(req, d) for d in ident.domains_for_user(req.context.user_id)]
        return list_response(req, "domains", refs, "auth/domains")

    @api.route("/v3/auth/system")
    def auth_system(req):
        has = bool(ident.role_ids_for(req.context.user_id, system=True))
        return {"system": [{"all": True}] if has else [],
                "links": {"self": f"{v3(req)}/auth/system", "previous": None, "next": None}}

    # -- domains -----------------------------------------------------------

    def domain_target(req) -> dict:
        return {"domain_id": req.path_params["domain_id"]}

    @api.route("/v3/domains")
    def list_domains(req):
        ctx = req.context
        if not policy.check(ctx, "identity:list_domains", {}):
            # Anyone may see the domains they have a role on (as auth/domains).
            rows = ident.domains_for_user(ctx.user_id)
        else:
            rows = ident.list("domain")
        refs = filtered(req, rows, ("name", "enabled"), lambda d: render_domain(req, d))
        return list_response(req, "domains", refs, "domains")

    @api.route("/v3/domains", "POST", status=201)
    def create_domain(req):
        enforce(req, "create_domain")
        return {"domain": render_domain(req, ident.create_domain(
            body_of(req, schemas.domain_create, "domain")))}

    @api.route("/v3/domains/{domain_id}")
    def get_domain(req):
        enforce(req, "get_domain", **domain_target(req))
        return {"domain": render_domain(req, ident.get("domain", req.path_params["domain_id"]))}

    @api.route("/v3/domains/{domain_id}", "PATCH")
    def update_domain(req):
        enforce(req, "update_domain", **domain_target(req))
        body = body_of(req, schemas.domain_update, "domain")
        return {"domain": render_domain(req, ident.update_domain(
            req.path_params["domain_id"], body))}

    @api.route("/v3/domains/{domain_id}", "DELETE", status=204)
    def delete_domain(req):
        enforce(req, "delete_domain", **domain_target(req))
        ident.delete_domain(req.path_params["domain_id"])

    # -- projects ----------------------------------------------------------

    def project_target(req, project_id: str) -> dict:
        project = ident.get("project", project_id)
        return {"project_id": project_id, "domain_id": project["domain_id"]}

    @api.route("/v3/projects")
    def list_projects(req):
        ctx = req.context
        domain_id = req.query.get("domain_id") or ctx.domain_id
        enforce(req, "list_projects", domain_id=domain_id)
        filters = {}
        if domain_id:
            filters["domain_id"] = domain_id
        if req.query.get("parent_id"):
            filters["parent_id"] = req.query["parent_id"]
        rows = ident.list("project", filters)
        refs = filtered(req, rows, ("name", "enabled", "is_domain"),
                        lambda p: render_project(req, p))
        refs = _tag_filter(req, refs)
        return list_response(req, "projects", refs, "projects")

    @api.route("/v3/projects", "POST", status=201)
    def create_project(req):
        body = body_of(req, schemas.project_create, "project")
        body.pop("is_domain", None)
        if not body.get("domain_id"):
            body["domain_id"] = req.context.domain_id or service.conf.identity.default_domain_id
        enforce(req, "create_project", domain_id=body["domain_id"])
        return {"project": render_project(req, ident.create_project(body))}

    @api.route("/v3/projects/{project_id}")
    def get_project(req):
        project_id = req.path_params["project_id"]
        enforce(req, "get_project", **project_target(req, project_id))
        ref = render_project(req, ident.get("project", project_id))
        if req.flag("parents_as_ids") or req.flag("parents_as_list"):
            ref["parents"] = [{"project": render_project(req, p)}
                              for p in ident.ancestors(ident.get("project", project_id))]
        if req.flag("subtree_as_ids") or req.flag("subtree_as_list"):
            ref["subtree"] = [{"project": render_project(req, p)}
                              for p in ident.subtree(project_id)]
        return {"project": ref}

    @api.route("/v3/projects/{project_id}", "PATCH")
    def update_project(req):
        project_id = req.path_params["project_id"]
        enforce(req, "update_project", **project_target(req, project_id))
        body = body_of(req, schemas.project_update, "project")
        body.pop("is_domain", None)
        return {"project": render_project(req, ident.update_project(project_id, body))}

    @api.route("/v3/projects/{project_id}", "DELETE", status=204)
    def delete_project(req):
        project_id = req.path_params["project_id"]
        enforce(req, "delete_project", **project_target(req, project_id))
        ident.delete_project(project_id)

    @api.route("/v3/projects/{project_id}/tags")
    def list_project_tags(req):
        project_id = req.path_params["project_id"]
        enforce(req, "list_project_tags", **project_target(req, project_id))
        return {"tags": ident.get("project", project_id)["tags"]}

    @api.route("/v3/projects/{project_id}/tags", "PUT")
    def replace_project_tags(req):
        project_id = req.path_params["project_id"]
        enforce(req, "update_project_tags", **project_target(req, project_id))
        tags = schemas.check(schemas.project_tags, req.json())["tags"]
        return {"tags": ident.update_project(project_id, {"tags": tags})["tags"]}

    @api.route("/v3/projects/{project_id}/tags", "DELETE", status=204)
    def delete_project_tags(req):
        project_id = req.path_params["project_id"]
        enforce(req, "delete_project_tags", **project_target(req, project_id))
        ident.update_project(project_id, {"tags": []})

    @api.route("/v3/projects/{project_id}/tags/{tag}")
    def check_project_tag(req):
        project_id = req.path_params["project_id"]
        enforce(req, "get_project_tag", **project_target(req, project_id))
        if req.path_params["tag"] not in ident.get("project", project_id)["tags"]:
            raise errors.NotFound(f"Could not find project tag: {req.path_params['tag']}.")
        return None

    @api.route("/v3/projects/{project_id}/tags/{tag}", "PUT", status=201)
    def add_project_tag(req):
        project_id = req.path_params["project_id"]
        enforce(req, "create_project_tag", **project_target(req, project_id))
        tag = req.path_params["tag"]
        schemas.check(schemas.project_tags, {"tags": [tag]})
        tags = ident.get("project", project_id)["tags"]
        if tag not in tags:
            tags = ident.update_project(project_id, {"tags": [*tags, tag]})["tags"]
        return JSONResponse({"tags": tags}, status_code=201,
                            headers={"Location": f"{v3(req)}/projects/{project_id}/tags/{tag}"})

    @api.route("/v3/projects/{project_id}/tags/{tag}", "DELETE", status=204)
    def delete_project_tag(req):
        project_id = req.path_params["project_id"]
        enforce(req, "delete_project_tag", **project_target(req, project_id))
        tags = ident.get("project", project_id)["tags"]
        tag = req.path_params["tag"]
        if tag not in tags:
            raise errors.NotFound(f"Could not find project tag: {tag}.")
        ident.update_project(project_id, {"tags": [t for t in tags if t != tag]})

    # -- users -------------------------------------------------------------

    def user_target(req, user_id: str) -> dict:
        user = ident.get("user", user_id)
        return {"user_id": user_id, "domain_id": user["domain_id"]}

    @api.route("/v3/users")
    def list_users(req):
        domain_id = req.query.get("domain_id") or req.context.domain_id
        enforce(req, "list_users", domain_id=domain_id)
        filters = {"domain_id": domain_id} if domain_id else {}
        if req.query.get("name") and "__" not in req.query["name"]:
            filters["name"] = req.query["name"]

        def build():
            rows = ident.list("user", filters)
            refs = filtered(req, rows, ("name", "enabled", "id"), lambda u: render_user(req, u))
            return list_response(req, "users", refs, "users")

        return rendered_list(req, "user", build)

    @api.route("/v3/users", "POST", status=201)
    def create_user(req):
        body = body_of(req, schemas.user_create, "user")
        body.setdefault("domain_id", req.context.domain_id
                        or service.conf.identity.default_domain_id)
        enforce(req, "create_user", domain_id=body["domain_id"])
        return {"user": render_user(req, ident.create_user(body))}

    @api.route("/v3/users/{user_id}")
    def get_user(req):
        user_id = req.path_params["user_id"]
        enforce(req, "get_user", **user_target(req, user_id))
        return {"user": render_user(req, ident.get("user", user_id))}

    @api.route("/v3/users/{user_id}", "PATCH")
    def update_user(req):
        user_id = req.path_params["user_id"]
        enforce(req, "update_user", **user_target(req, user_id))
        body = body_of(req, schemas.user_update, "user")
        return {"user": render_user(req, ident.update_user(user_id, body))}

    @api.route("/v3/users/{user_id}", "DELETE", status=204)
    def delete_user(req):
        user_id = req.path_params["user_id"]
        enforce(req, "delete_user", **user_target(req, user_id))
        ident.delete_user(user_id)

    @api.route("/v3/users/{user_id}/password", "POST", status=204, auth=False)
    def change_password(req):
        body = body_of(req, schemas.password_change, "user")
        ident.change_password(req.path_params["user_id"], body["original_password"],
                              body["password"])

    @api.route("/v3/users/{user_id}/groups")
    def list_user_groups(req):
        user_id = req.path_params["user_id"]
        enforce(req, "list_groups_for_user", **user_target(req, user_id))
        ids = ident.group_ids(user_id)
        rows = ident.list("group", {"id": ids}) if ids else []
        refs = [render_group(req, g) for g in rows]
        return list_response(req, "groups", refs, f"users/{user_id}/groups")

    @api.route("/v3/users/{user_id}/projects")
    def list_user_projects(req):
        user_id = req.path_params["user_id"]
        enforce(req, "list_user_projects", **user_target(req, user_id))
        refs = filtered(req, ident.projects_for_user(user_id), ("name", "enabled", "domain_id"),
                        lambda p: render_project(req, p))
        return list_response(req, "projects", refs, f"users/{user_id}/projects")

    # -- groups ------------------------------------------------------------

    def group_target(req, group_id: str) -> dict:
        return {"group_id": group_id, "domain_id": ident.get("group", group_id)["domain_id"]}

    @api.route("/v3/groups")
    def list_groups(req):
        domain_id = req.query.get("domain_id") or req.context.domain_id
        enforce(req, "list_groups", domain_id=domain_id)
        rows = ident.list("group", {"domain_id": domain_id} if domain_id else {})
        refs = filtered(req, rows, ("name",), lambda g: render_group(req, g))
        return list_response(req, "groups", refs, "groups")

    @api.route("/v3/groups", "POST", status=201)
    def create_group(req):
        body = body_of(req, schemas.group_create, "group")
        body.setdefault("domain_id", req.context.domain_id
                        or service.conf.identity.default_domain_id)
        enforce(req, "create_group", domain_id=body["domain_id"])
        return {"group": render_group(req, ident.create_group(body))}

    @api.route("/v3/groups/{group_id}")
    def get_group(req):
        group_id = req.path_params["group_id"]
        enforce(req, "get_group", **group_target(req, group_id))
        return {"group": render_group(req, ident.get("group", group_id))}

    @api.route("/v3/groups/{group_id}", "PATCH")
    def update_group(req):
        group_id = req.path_params["group_id"]
        enforce(req, "update_group", **group_target(req, group_id))
        body = body_of(req, schemas.group_update, "group")
        if "domain_id" in body and body["domain_id"] != ident.get("group", group_id)["domain_id"]:
            raise errors.BadRequest("Update of `domain_id` is not allowed.")
        return {"group": render_group(req, ident.update("group", group_id, body))}

    @api.route("/v3/groups/{group_id}", "DELETE", status=204)
    def delete_group(req):
        group_id = req.path_params["group_id"]
        enforce(req, "delete_group", **group_target(req, group_id))
        ident.delete_group(group_id)

    @api.route("/v3/groups/{group_id}/users")
    def list_group_users(req):
        group_id = req.path_params["group_id"]
        enforce(req, "list_users_in_group", **group_target(req, group_id))
        ids = [m["user_id"] for m in ident.list("membership", {"group_id": group_id})]
        rows = ident.list("user", {"id": ids}) if ids else []
        refs = filtered(req, rows, ("name", "enabled"), lambda u: render_user(req, u))
        return list_response(req, "users", refs, f"groups/{group_id}/users")

    @api.route("/v3/groups/{group_id}/users/{user_id}", "PUT", status=204)
    def add_group_user(req):
        group_id = req.path_params["group_id"]
        enforce(req, "add_user_to_group", **group_target(req, group_id))
        ident.add_user_to_group(req.path_params["user_id"], group_id)

    @api.route("/v3/groups/{group_id}/users/{user_id}", ("GET", "HEAD"), status=204)
    def check_group_user(req):
        group_id, user_id = req.path_params["group_id"], req.path_params["user_id"]
        enforce(req, "check_user_in_group", **group_target(req, group_id))
        ident.get("user", user_id)
        if not ident.list("membership", {"group_id": group_id, "user_id": user_id}):
            raise errors.NotFound(f"{user_id} is not a member of group {group_id}.")

    @api.route("/v3/groups/{group_id}/users/{user_id}", "DELETE", status=204)
    def remove_group_user(req):
        group_id = req.path_params["group_id"]
        enforce(req, "remove_user_from_group", **group_target(req, group_id))
        ident.remove_user_from_group(req.path_params["user_id"], group_id)

    # -- roles -------------------------------------------------------------

    @api.route("/v3/roles")
    def list_roles(req):
        enforce(req, "list_roles", domain_id=req.query.get("domain_id"))
        domain_id = req.query.get("domain_id") or core.GLOBAL
        rows = ident.list("role", {"domain_id": domain_id})
        refs = filtered(req, rows, ("name",), lambda r: render_role(req, r))
        return list_response(req, "roles", refs, "roles")

    @api.route("/v3/roles", "POST", status=201)
    def create_role(req):
        enforce(req, "create_role")
        return {"role": render_role(req, ident.create_role(
            body_of(req, schemas.role_create, "role")))}

    @api.route("/v3/roles/{role_id}")
    def get_role(req):
        enforce(req, "get_role")
        return {"role": render_role(req, ident.get("role", req.path_params["role_id"]))}

    @api.route("/v3/roles/{role_id}", "PATCH")
    def update_role(req):
        enforce(req, "update_role")
        body = body_of(req, schemas.role_update, "role")
        return {"role": render_role(req, ident.update("role", req.path_params["role_id"], body))}

    @api.route("/v3/roles/{role_id}", "DELETE", status=204)
    def delete_role(req):
        enforce(req, "delete_role")
        ident.delete_role(req.path_params["role_id"])

    def brief_role(req, role):
        return {"id": role["id"], "name": role["name"],
                "links": links(req, "roles", role["id"])}

    def inference(req, prior, implied_rows):
        return {"prior_role": brief_role(req, prior),
                "implies": [brief_role(req, r) for r in implied_rows]}

    @api.route("/v3/roles/{prior_id}/implies")
    def list_implied(req):
        enforce(req, "list_implied_roles")
        prior = ident.get("role", req.path_params["prior_id"])
        ids = [r["implied_role_id"] for r in ident.list("implied_role",
                                                        {"prior_role_id": prior["id"]})]
        rows = ident.list("role", {"id": ids}) if ids else []
        return {"role_inference": inference(req, prior, rows),
                "links": {"self": f"{v3(req)}/roles/{prior['id']}/implies"}}

    @api.route("/v3/roles/{prior_id}/implies/{implied_id}", "PUT", status=201)
    def create_implied(req):
        enforce(req, "create_implied_role")
        prior_id, implied_id = req.path_params["prior_id"], req.path_params["implied_id"]
        ident.create_implied_role(prior_id, implied_id)
        return {"role_inference": {"prior_role": brief_role(req, ident.get("role", prior_id)),
                                   "implies": brief_role(req, ident.get("role", implied_id))},
                "links": {"self": f"{v3(req)}/roles/{prior_id}/implies/{implied_id}"}}

    @api.route("/v3/roles/{prior_id}/implies/{implied_id}", ("GET", "HEAD"))
    def get_implied(req):
        enforce(req, "get_implied_role")
        prior_id, implied_id = req.path_params["prior_id"], req.path_params["implied_id"]
        if not ident.list("implied_role", {"prior_role_id": prior_id,
                                           "implied_role_id": implied_id}):
            raise errors.NotFound(f"{prior_id} does not imply {implied_id}.")
        if req.method == "HEAD":
            return Response(status_code=204)
        return {"role_inference": {"prior_role": brief_role(req, ident.get("role", prior_id)),
                                   "implies": brief_role(req, ident.get("role", implied_id))},
                "links": {"self": f"{v3(req)}/roles/{prior_id}/implies/{implied_id}"}}

    @api.route("/v3/roles/{prior_id}/implies/{implied_id}", "DELETE", status=204)
    def delete_implied(req):
        enforce(req, "delete_implied_role")
        ident.delete_implied_role(req.path_params["prior_id"], req.path_params["implied_id"])

    @api.route("/v3/role_inferences")
    def list_inferences(req):
        enforce(req, "list_role_inference_rules")
        by_prior: dict[str, list[str]] = {}
        for row in ident.list("implied_role"):
            by_prior.setdefault(row["prior_role_id"], []).append(row["implied_role_id"])
        result = []
        for prior_id, implied_ids in by_prior.items():
            result.append(inference(req, ident.get("role", prior_id),
                                    ident.list("role", {"id": implied_ids})))
        return {"role_inferences": result, "links": {"self": f"{v3(req)}/role_inferences"}}

    # -- grants ------------------------------------------------------------

    def grant_route(path: str, target_kind: str, actor_kind: str):
        def scope(req) -> dict:
            p = req.path_params
            kw = {f"{actor_kind}_id": p["actor_id"],
                  "inherited": path.startswith("/v3/OS-INHERIT")}
            if target_kind == "system":
                kw["system"] = True
            else:
                kw[f"{target_kind}_id"] = p["target_id"]
            return kw

        def target(req) -> dict:
            p = req.path_params
            if target_kind == "project":
                return project_target(req, p["target_id"])
            if target_kind == "domain":
                return {"domain_id": p["target_id"]}
            return {}

        system_suffix = "system_grant" if target_kind == "system" else "grant"
        tail = "/inherited_to_projects" if path.startswith("/v3/OS-INHERIT") else ""

        @api.route(path + "/{role_id}" + tail, "PUT", status=204)
        def create_grant(req):
            enforce(req, "create_" + system_suffix, **target(req))
            ident.grant(req.path_params["role_id"], **scope(req))

        @api.route(path + "/{role_id}" + tail, ("GET", "HEAD"), status=204)
        def check_grant(req):
            enforce(req, "check_grant", **target(req))
            if not ident.check_grant(req.path_params["role_id"], **scope(req)):
                raise errors.NotFound(f"Could not find role assignment with role: "
                                      f"{req.path_params['role_id']}.")

        @api.route(path + "/{role_id}" + tail, "DELETE", status=204)
        def delete_grant(req):
            enforce(req, "revoke_" + system_suffix, **target(req))
            ident.revoke_grant(req.path_params["role_id"], **scope(req))

        @api.route(path + tail)
        def list_grants(req):
            enforce(req, "list_grants" if target_kind != "system" else "list_system_grants",
                    **target(req), user_id=req.path_params["actor_id"])
            kw = scope(req)
            actor = kw.get("user_id") or kw.get("group_id")
            target_id = "system" if target_kind == "system" else req.path_params["target_id"]
            rows = ident.list("assignment", {"actor_id": actor, "target_id": target_id,
                                             "inherited": kw["inherited"]})
            ids = [r["role_id"] for r in rows]
            roles = ident.list("role", {"id": ids}) if ids else []
            return list_response(req, "roles", [render_role(req, r) for r in roles],
                                 path.format(**req.path_params).removeprefix("/v3/"))

    for target_kind in ("project", "domain"):
        for actor_kind in ("user", "group"):
            base = f"/v3/{target_kind}s/{{target_id}}/{actor_kind}s/{{actor_id}}/roles"
            grant_route(base, target_kind, actor_kind)
            inherit = (f"/v3/OS-INHERIT/{target_kind}s/{{target_id}}/{actor_kind}s/"
                       f"{{actor_id}}/roles")
            grant_route(inherit, target_kind, actor_kind)
    for actor_kind in ("user", "group"):
        grant_route(f"/v3/system/{actor_kind}s/{{actor_id}}/roles", "system", actor_kind)

    @api.route("/v3/role_assignments")
    def list_role_assignments(req):
        q = req.query
        enforce(req, "list_role_assignments", user_id=q.get("user.id"),
                domain_id=q.get("scope.domain.id") or req.context.domain_id)
        from pocketstack.identity.assignments import list_assignments

        refs = list_assignments(ident, req, v3(req))
        return {"role_assignments": refs, "links": {"self": str(req.url), "previous": None,
                                                    "next": None}}

    # -- catalog -----------------------------------------------------------

    def catalog_routes(kind, collection, render, create_schema, update_schema, create,
                       attrs):
        @api.route(f"/v3/{collection}")
        def list_(req):
            enforce(req, f"list_{collection}")
            refs = filtered(req, ident.list(kind), attrs, lambda r: render(req, r))
            return list_response(req, collection, refs, collection)

        @api.route(f"/v3/{collection}", "POST", status=201)
        def create_(req):
            enforce(req, f"create_{kind}")
            body = body_of(req, create_schema, kind)
            if kind == "endpoint" and "region" in body:
                body.setdefault("region_id", body.pop("region"))
            return {kind: render(req, create(body))}

        @api.route(f"/v3/{collection}/{{id}}")
        def get_(req):
            enforce(req, f"get_{kind}")
            return {kind: render(req, ident.get(kind, req.path_params["id"]))}

        @api.route(f"/v3/{collection}/{{id}}", "PATCH")
        def update_(req):
            enforce(req, f"update_{kind}")
            body = body_of(req, update_schema, kind)
            if kind == "endpoint" and "region" in body:
                body.setdefault("region_id", body.pop("region"))
            return {kind: render(req, ident.update(kind, req.path_params["id"], body))}

        @api.route(f"/v3/{collection}/{{id}}", "DELETE", status=204)
        def delete_(req):
            enforce(req, f"delete_{kind}")
            ident.delete(kind, req.path_params["id"])

    catalog_routes("region", "regions", render_region, schemas.region_create,
                   schemas.region_update, ident.create_region, ("parent_region_id",))
    catalog_routes("service", "services", render_service, schemas.service_create,
                   schemas.service_update, ident.create_service, ("type", "name"))
    catalog_routes("endpoint", "endpoints", render_endpoint, schemas.endpoint_create,
                   schemas.endpoint_update, ident.create_endpoint,
                   ("interface", "service_id", "region_id"))

    # -- credentials -------------------------------------------------------

    @api.route("/v3/credentials")
    def list_credentials(req):
        ctx = req.context
        filters = {}
        if not policy.check(ctx, "identity:list_credentials", {"target.user_id": None}):
            filters["user_id"] = ctx.user_id
        for key in ("user_id", "type"):
            if req.query.get(key):
                filters[key] = req.query[key]
        if filters.get("user_id") not in (None, ctx.user_id):
            enforce(req, "list_credentials", user_id=filters["user_id"])
        refs = [render_credential(req, c) for c in ident.list("credential", filters)]
        return list_response(req, "credentials", refs, "credentials")

    @api.route("/v3/credentials", "POST", status=201)
    def create_credential(req):
        body = body_of(req, schemas.credential_create, "credential")
        enforce(req, "create_credential", user_id=body["user_id"])
        ident.get("user", body["user_id"])
        if body.get("project_id"):
            ident.get("project", body["project_id"])
        return {"credential": render_credential(req, ident._create("credential", body))}

    def credential_target(req) -> dict:
        cred = ident.get("credential", req.path_params["id"])
        return {"user_id": cred["user_id"]}

    @api.route("/v3/credentials/{id}")
    def get_credential(req):
        enforce(req, "get_credential", **credential_target(req))
        return {"credential": render_credential(req, ident.get("credential",
                                                               req.path_params["id"]))}

    @api.route("/v3/credentials/{id}", "PATCH")
    def update_credential(req):
        enforce(req, "update_credential", **credential_target(req))
        body = body_of(req, schemas.credential_update, "credential")
        return {"credential": render_credential(
            req, ident.update("credential", req.path_params["id"], body))}

    @api.route("/v3/credentials/{id}", "DELETE", status=204)
    def delete_credential(req):
        enforce(req, "delete_credential", **credential_target(req))
        ident.delete("credential", req.path_params["id"])

    # -- application credentials -------------------------------------------

    @api.route("/v3/users/{user_id}/application_credentials")
    def list_app_creds(req):
        user_id = req.path_params["user_id"]
        enforce(req, "list_application_credentials", user_id=user_id)
        filters = {"user_id": user_id}
        if req.query.get("name"):
            filters["name"] = req.query["name"]
        refs = [render_app_cred(req, c) for c in ident.list("application_credential", filters)]
        return {"application_credentials": refs,
                "links": {"self": f"{v3(req)}/users/{user_id}/application_credentials",
                          "previous": None, "next": None}}

    @api.route("/v3/users/{user_id}/application_credentials", "POST", status=201)
    def create_app_cred(req):
        user_id = req.path_params["user_id"]
        enforce(req, "create_application_credential", user_id=user_id)
        body = body_of(req, schemas.application_credential_create, "application_credential")
        ctx = req.context
        if ctx.user_id != user_id:
            raise errors.Forbidden("Application credentials are created by their own user.")
        if ctx.application_credential_id and not ident.get(
                "application_credential", ctx.application_credential_id)["unrestricted"]:
            raise errors.Forbidden("A restricted application credential cannot create "
                                   "application credentials.")
        if not ctx.project_id:
            raise errors.BadRequest("Application credentials need a project-scoped token.")
        available = {r["id"]: r for r in ctx.role_refs}
        roles = []
        for ref in body.get("roles") or list(available.values()):
            match = next((r for r in available.values()
                          if r["id"] == ref.get("id") or r["name"] == ref.get("name")), None)
            if match is None:
                raise errors.NotFound(f"Could not find role: {ref.get('id') or ref.get('name')}.")
            roles.append({"id": match["id"], "name": match["name"],
                          "domain_id": None})
        secret = body.get("secret") or secrets.token_urlsafe(64)
        expires = body.get("expires_at")
        if expires:
            try:
                expires = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
            except ValueError:
                raise errors.BadRequest(f"Invalid expires_at: {expires}.") from None
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=datetime.UTC)
        row = {"id": core.new_id(), "name": body["name"], "user_id": user_id,
               "project_id": ctx.project_id, "description": body.get("description"),
               "secret_hash": passwords.hash_password(secret,
                                                 service.conf.identity.password_hash_rounds),
               "expires_at": expires, "unrestricted": bool(body.get("unrestricted")),
               "roles": roles, "access_rules": access_rules_for(user_id, body), "extra": {}}
        created = ident.store("application_credential").create("application_credential", row)
        return {"application_credential": {**render_app_cred(req, created), "secret": secret}}

    def user_access_rules(user_id: str) -> dict[str, dict]:
        rules: dict[str, dict] = {}
        for cred in ident.list("application_credential", {"user_id": user_id}):
            for rule in cred["access_rules"] or []:
                rules.setdefault(rule["id"], rule)
        return rules

    def access_rules_for(user_id: str, body: dict) -> list[dict]:
        """Access rules of a new application credential: a known rule by id, or a new one
        (the same service/path/method as a known rule reuses it)."""
        known = user_access_rules(user_id)
        result = []
        for rule in body.get("access_rules") or []:
            if rule.get("id") and set(rule) == {"id"}:
                if rule["id"] not in known:
                    raise errors.NotFound(f"Could not find access rule: {rule['id']}.")
                result.append(known[rule["id"]])
                continue
            for key in ("service", "path", "method"):
                if key not in rule:
                    raise errors.BadRequest(f"Invalid input for field 'access_rules': "
                                            f"'{key}' is a required property")
            same = next((r for r in known.values() if (r["service"], r["path"], r["method"])
                         == (rule["service"], rule["path"], rule["method"])), None)
            result.append(same or {"id": rule.get("id") or core.new_id(),
                                   "service": rule["service"], "path": rule["path"],
                                   "method": rule["method"]})
        return result

    def render_access_rule(req, user_id: str, rule: dict) -> dict:
        return {**rule, "links": {"self": f"{v3(req)}/users/{user_id}/access_rules/"
                                          f"{rule['id']}"}}

    @api.route("/v3/users/{user_id}/access_rules")
    def list_access_rules(req):
        user_id = req.path_params["user_id"]
        enforce(req, "list_access_rules", user_id=user_id)
        ident.get("user", user_id)
        refs = [render_access_rule(req, user_id, r) for r in user_access_rules(user_id).values()]
        for key in ("service", "path", "method"):
            if req.query.get(key):
                refs = [r for r in refs if r[key] == req.query[key]]
        return {"access_rules": refs, "links": {
            "self": f"{v3(req)}/users/{user_id}/access_rules", "previous": None, "next": None}}

    @api.route("/v3/users/{user_id}/access_rules/{rule_id}")
    def get_access_rule(req):
        user_id, rule_id = req.path_params["user_id"], req.path_params["rule_id"]
        enforce(req, "get_access_rule", user_id=user_id)
        rule = user_access_rules(user_id).get(rule_id)
        if rule is None:
            raise errors.NotFound(f"Could not find access rule: {rule_id}.")
        return {"access_rule": render_access_rule(req, user_id, rule)}

    @api.route("/v3/users/{user_id}/access_rules/{rule_id}", "DELETE", status=204)
    def delete_access_rule(req):
        user_id, rule_id = req.path_params["user_id"], req.path_params["rule_id"]
        enforce(req, "delete_access_rule", user_id=user_id)
        if rule_id not in user_access_rules(user_id):
            raise errors.NotFound(f"Could not find access rule: {rule_id}.")
        # Rules live as long as an application credential uses them.
        raise errors.Forbidden(f"Access rule {rule_id} is in use by an application "
                               "credential; delete the application credential first.")

    # -- EC2 credentials (OS-EC2) ------------------------------------------

    def render_ec2(req, c) -> dict:
        blob = json.loads(c["blob"])
        return {"user_id": c["user_id"], "tenant_id": c["project_id"],
                "access": blob["access"], "secret": blob["secret"],
                "trust_id": blob.get("trust_id"),
                "links": {"self": f"{v3(req)}/users/{c['user_id']}/credentials/OS-EC2/"
                                  f"{blob['access']}"}}

    def ec2_credential(user_id: str, access: str) -> dict:
        cred = ident.find("credential", hashlib.sha256(access.encode()).hexdigest())
        if cred is None or cred["user_id"] != user_id or cred["type"] != "ec2":
            raise errors.NotFound(f"Could not find credential: {access}.")
        return cred

    @api.route("/v3/users/{user_id}/credentials/OS-EC2")
    def list_ec2(req):
        user_id = req.path_params["user_id"]
        enforce(req, "ec2_list_credentials", user_id=user_id)
        ident.get("user", user_id)
        refs = [render_ec2(req, c) for c in ident.list("credential", {"user_id": user_id,
                                                                      "type": "ec2"})]
        return {"credentials": refs, "links": {
            "self": f"{v3(req)}/users/{user_id}/credentials/OS-EC2", "previous": None,
            "next": None}}

    @api.route("/v3/users/{user_id}/credentials/OS-EC2", "POST", status=201)
    def create_ec2(req):
        user_id = req.path_params["user_id"]
        enforce(req, "ec2_create_credential", user_id=user_id)
        body = schemas.check(schemas.ec2_create, req.json())
        project_id = body.get("tenant_id") or body.get("project_id")
        if not project_id:
            raise errors.BadRequest("Invalid input for field 'tenant_id': a project is "
                                    "required.")
        ident.get("user", user_id)
        ident.get("project", project_id)
        if not ident.role_ids_for(user_id, project_id=project_id):
            raise errors.Forbidden(f"User {user_id} has no role on project {project_id}.")
        access, secret = secrets.token_hex(16), secrets.token_hex(16)
        blob = {"access": access, "secret": secret, "trust_id": None, "app_cred_id": None,
                "access_token_id": None}
        cred = ident._create("credential", {
            "id": hashlib.sha256(access.encode()).hexdigest(), "user_id": user_id,
            "project_id": project_id, "type": "ec2", "blob": json.dumps(blob)})
        return {"credential": render_ec2(req, cred)}

    @api.route("/v3/users/{user_id}/credentials/OS-EC2/{access}")
    def get_ec2(req):
        user_id = req.path_params["user_id"]
        enforce(req, "ec2_get_credential", user_id=user_id)
        return {"credential": render_ec2(req, ec2_credential(user_id,
                                                             req.path_params["access"]))}

    @api.route("/v3/users/{user_id}/credentials/OS-EC2/{access}", "DELETE", status=204)
    def delete_ec2(req):
        user_id = req.path_params["user_id"]
        enforce(req, "ec2_delete_credential", user_id=user_id)
        cred = ec2_credential(user_id, req.path_params["access"])
        ident.delete("credential", cred["id"])

    @api.route("/v3/users/{user_id}/application_credentials/{id}")
    def get_app_cred(req):
        user_id = req.path_params["user_id"]
        enforce(req, "get_application_credential", user_id=user_id)
        cred = ident.get("application_credential", req.path_params["id"])
        if cred["user_id"] != user_id:
            raise errors.NotFound(f"Could not find application credential: "
                                  f"{req.path_params['id']}.")
        return {"application_credential": render_app_cred(req, cred)}

    @api.route("/v3/users/{user_id}/application_credentials/{id}", "DELETE", status=204)
    def delete_app_cred(req):
        user_id = req.path_params["user_id"]
        enforce(req, "delete_application_credential", user_id=user_id)
        cred = ident.get("application_credential", req.path_params["id"])
        if cred["user_id"] != user_id:
            raise errors.NotFound(f"Could not find application credential: {cred['id']}.")
        ident.store("application_credential").delete("application_credential",
                                                     {"id": cred["id"]})
        ident.bump()

    return api


def _matches(actual, wanted: str, suffix: str) -> bool:
    if isinstance(actual, bool):
        return actual == (wanted.lower() in ("true", "1", "yes"))
    if actual is None:
        return False
    actual = str(actual)
    if suffix.startswith("__i"):
        actual, wanted = actual.lower(), wanted.lower()
        suffix = "__" + suffix[3:]
    if suffix == "__contains":
        return wanted in actual
    if suffix == "__startswith":
        return actual.startswith(wanted)
    if suffix == "__endswith":
        return actual.endswith(wanted)
    return actual == wanted


def _tag_filter(req: Request, refs: list[dict]) -> list[dict]:
    q = req.query
    if q.get("tags"):
        wanted = set(q["tags"].split(","))
        refs = [r for r in refs if wanted <= set(r["tags"])]
    if q.get("tags-any"):
        wanted = set(q["tags-any"].split(","))
        refs = [r for r in refs if wanted & set(r["tags"])]
    if q.get("not-tags"):
        wanted = set(q["not-tags"].split(","))
        refs = [r for r in refs if not wanted <= set(r["tags"])]
    if q.get("not-tags-any"):
        wanted = set(q["not-tags-any"].split(","))
        refs = [r for r in refs if not wanted & set(r["tags"])]
    return refs
