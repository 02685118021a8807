"""Compute v2.1 API: flavors, keypairs, zones, aggregates, services, hypervisors,
quotas and limits, server groups, usage."""

from __future__ import annotations

import base64
import datetime
import hashlib
import uuid as uuidlib

import sqlalchemy as sa
from starlette.responses import Response

from pocketstack.common import errors
from pocketstack.common.db import isotime, utcnow
from pocketstack.common.http import JSONResponse, Request
from pocketstack.common.validation import validate
from pocketstack.compute import models as m
from pocketstack.compute import schemas, views
from pocketstack.compute.conductor import row
from pocketstack.compute.options import default_zone

BINARY = "pocketstack-compute"
# What a client sees as the compute service binary (Nova's name).
SHOWN_BINARY = {"pocketstack-compute": "nova-compute"}


def _int(value, name: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"Invalid input for field/attribute {name}. Value: {value}."
                                ) from None
    if number < minimum:
        raise errors.BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. "
                                f"{value} is less than the minimum of {minimum}")
    return number


def fingerprint(public_key: str) -> str:
    try:
        blob = base64.b64decode(public_key.split()[1])
    except (IndexError, ValueError):
        raise errors.BadRequest("Keypair data is invalid: failed to generate fingerprint"
                                ) from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def generate_keypair(name: str) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} Generated-by-Nova"


class Resources:
    def __init__(self, service):
        self.service = service
        self.db = service.db
        self.conf = service.conf

    def zone_names(self) -> set[str]:
        with self.db.reader() as s:
            zones = {md.get("availability_zone") for md in
                     s.execute(sa.select(m.aggregate.c.meta)).scalars()}
        zones.discard(None)
        zones.add(default_zone(self.conf))
        return zones


def register(api, service, helpers) -> None:
    db = service.db
    conf = service.conf
    conductor = service.conductor
    policy = service.policy
    service.resources = Resources(service)

    def admin(req: Request, action: str) -> None:
        policy.enforce(req.context, action)

    def v(req: Request) -> tuple[int, int]:
        return req.state["version"]

    # == flavors ==============================================================

    def flavor_rows(req: Request) -> list[dict]:
        ctx = req.context
        q = req.query
        t = m.flavor
        stmt = sa.select(t).order_by(t.c.flavorid.asc())
        is_public = q.get("is_public")
        if ctx.is_admin:
            if is_public is None or is_public.lower() in ("true", "1", "t", "yes"):
                stmt = stmt.where(t.c.is_public.is_(True))
            elif is_public.lower() in ("false", "0", "f", "no"):
                stmt = stmt.where(t.c.is_public.is_(False))
        else:
            access = sa.select(m.flavor_access.c.flavorid).where(
                m.flavor_access.c.project_id == ctx.project_id)
            stmt = stmt.where(sa.or_(t.c.is_public.is_(True), t.c.flavorid.in_(access)))
        if "minRam" in q:
            stmt = stmt.where(t.c.memory_mb >= _int(q["minRam"], "minRam"))
        if "minDisk" in q:
            stmt = stmt.where(t.c.root_gb >= _int(q["minDisk"], "minDisk"))
        sort_key = q.get("sort_key", "flavorid")
        columns = {"flavorid": t.c.flavorid, "name": t.c.name, "memory_mb": t.c.memory_mb,
                   "vcpus": t.c.vcpus, "root_gb": t.c.root_gb, "id": t.c.id,
                   "created_at": t.c.created_at, "ephemeral_gb": t.c.ephemeral_gb,
                   "swap": t.c.swap, "rxtx_factor": t.c.rxtx_factor,
                   "disabled": t.c.disabled, "is_public": t.c.is_public,
                   "description": t.c.description}
        if sort_key not in columns:
            raise errors.BadRequest(f"Invalid sort key {sort_key}")
        col = columns[sort_key]
        stmt = stmt.order_by(None).order_by(col.desc() if q.get("sort_dir") == "desc"
                                            else col.asc(), t.c.flavorid.asc())
        with db.reader() as s:
            rows = [row(r) for r in s.execute(stmt).all()]
        if q.get("marker"):
            ids = [r["flavorid"] for r in rows]
            if q["marker"] not in ids:
                raise errors.BadRequest(f"marker [{q['marker']}] not found")
            rows = rows[ids.index(q["marker"]) + 1:]
        limit = q.get("limit")
        if limit is not None:
            rows = rows[:_int(limit, "limit")]
        return rows

    @api.route("/v2.1/flavors", "GET")
    def flavor_index(req: Request):
        return {"flavors": [views.flavor(req.base_url, f, v(req), brief=True)
                            for f in flavor_rows(req)]}

    @api.route("/v2.1/flavors/detail", "GET")
    def flavor_detail(req: Request):
        return {"flavors": [views.flavor(req.base_url, f, v(req))
                            for f in flavor_rows(req)]}

    @api.route("/v2.1/flavors/{flavor_id}", "GET")
    def flavor_show(req: Request):
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        return {"flavor": views.flavor(req.base_url, f, v(req))}

    @api.route("/v2.1/flavors", "POST")
    def flavor_create(req: Request):
        admin(req, "os_compute_api:os-flavor-manage:create")
        body = validate(schemas.flavor_create, req.json())["flavor"]
        if "description" in body and v(req) < (2, 55):
            raise errors.BadRequest("Additional properties are not allowed ('description' "
                                    "was unexpected)")
        flavorid = body.get("id") or str(uuidlib.uuid4())
        public = body.get("os-flavor-access:is_public", True)
        if isinstance(public, str):
            public = public.lower() in ("true", "1", "t", "yes", "on")
        values = dict(flavorid=str(flavorid), name=body["name"],
                      memory_mb=_int(body["ram"], "ram", 1),
                      vcpus=_int(body["vcpus"], "vcpus", 1),
                      root_gb=_int(body["disk"], "disk"),
                      ephemeral_gb=_int(body.get("OS-FLV-EXT-DATA:ephemeral") or 0,
                                        "OS-FLV-EXT-DATA:ephemeral"),
                      swap=_int(body.get("swap") or 0, "swap"),
                      rxtx_factor=float(body.get("rxtx_factor", 1.0)), is_public=public,
                      disabled=False, description=body.get("description"), extra_specs={},
                      created_at=utcnow())

        def txn(s):
            if s.execute(sa.select(m.flavor.c.id).where(
                    m.flavor.c.flavorid == values["flavorid"])).first():
                raise errors.Conflict(f"Flavor with ID {values['flavorid']} already exists.")
            if s.execute(sa.select(m.flavor.c.id).where(
                    m.flavor.c.name == values["name"])).first():
                raise errors.Conflict(f"Flavor with name {values['name']} already exists.")
            s.execute(m.flavor.insert().values(**values))
        db.transaction(txn)
        helpers.flavor_cache.clear()
        return {"flavor": views.flavor(req.base_url, values, v(req))}

    @api.route("/v2.1/flavors/{flavor_id}", "PUT")
    def flavor_update(req: Request):
        admin(req, "os_compute_api:os-flavor-manage:update")
        if v(req) < (2, 55):
            raise errors.MethodNotAllowed("The method PUT is not allowed for this resource.")
        body = validate({"type": "object", "properties": {"flavor": {
            "type": "object", "properties": {"description": {"type": ["string", "null"],
                                                             "maxLength": 65535}},
            "required": ["description"], "additionalProperties": False}},
            "required": ["flavor"], "additionalProperties": False}, req.json())
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        db.transaction(lambda s: s.execute(m.flavor.update().where(
            m.flavor.c.id == f["id"]).values(description=body["flavor"]["description"])))
        helpers.flavor_cache.clear()
        f["description"] = body["flavor"]["description"]
        return {"flavor": views.flavor(req.base_url, f, v(req))}

    @api.route("/v2.1/flavors/{flavor_id}", "DELETE", status=202)
    def flavor_delete(req: Request):
        admin(req, "os_compute_api:os-flavor-manage:delete")
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])

        def txn(s):
            s.execute(m.flavor_access.delete().where(
                m.flavor_access.c.flavorid == f["flavorid"]))
            s.execute(m.flavor.delete().where(m.flavor.c.id == f["id"]))
        db.transaction(txn)
        helpers.flavor_cache.clear()

    @api.route("/v2.1/flavors/{flavor_id}/os-extra_specs", "GET")
    def specs_index(req: Request):
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        return {"extra_specs": f["extra_specs"]}

    @api.route("/v2.1/flavors/{flavor_id}/os-extra_specs", "POST")
    def specs_create(req: Request):
        admin(req, "os_compute_api:os-flavor-extra-specs:manage")
        body = validate(schemas.extra_specs, req.json())
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        specs = {k: str(val) if not isinstance(val, bool) else str(val)
                 for k, val in body["extra_specs"].items()}
        merged = {**f["extra_specs"], **specs}
        db.transaction(lambda s: s.execute(m.flavor.update().where(
            m.flavor.c.id == f["id"]).values(extra_specs=merged)))
        helpers.flavor_cache.clear()
        return {"extra_specs": specs}

    @api.route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "GET")
    def specs_show(req: Request):
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        key = req.path_params["key"]
        if key not in f["extra_specs"]:
            raise errors.NotFound(f"Flavor {f['flavorid']} has no extra specs with key {key}.")
        return {key: f["extra_specs"][key]}

    @api.route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "PUT")
    def specs_update(req: Request):
        admin(req, "os_compute_api:os-flavor-extra-specs:manage")
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        key = req.path_params["key"]
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1 or key not in body:
            raise errors.BadRequest("Request body and URI mismatch")
        merged = {**f["extra_specs"], key: str(body[key])}
        db.transaction(lambda s: s.execute(m.flavor.update().where(
            m.flavor.c.id == f["id"]).values(extra_specs=merged)))
        helpers.flavor_cache.clear()
        return {key: str(body[key])}

    @api.route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "DELETE")
    def specs_delete(req: Request):
        admin(req, "os_compute_api:os-flavor-extra-specs:manage")
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        key = req.path_params["key"]
        if key not in f["extra_specs"]:
            raise errors.NotFound(f"Flavor {f['flavorid']} has no extra specs with key {key}.")
        specs = {k: val for k, val in f["extra_specs"].items() if k != key}
        db.transaction(lambda s: s.execute(m.flavor.update().where(
            m.flavor.c.id == f["id"]).values(extra_specs=specs)))
        helpers.flavor_cache.clear()
        return Response(status_code=200)

    def access_list(flavorid: str) -> dict:
        with db.reader() as s:
            projects = s.execute(sa.select(m.flavor_access.c.project_id).where(
                m.flavor_access.c.flavorid == flavorid)).scalars().all()
        return {"flavor_access": [{"flavor_id": flavorid, "tenant_id": p} for p in projects]}

    @api.route("/v2.1/flavors/{flavor_id}/os-flavor-access", "GET")
    def access_index(req: Request):
        admin(req, "os_compute_api:os-flavor-access")
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        if f["is_public"]:
            raise errors.NotFound("Access list not available for public flavors.")
        return access_list(f["flavorid"])

    @api.route("/v2.1/flavors/{flavor_id}/action", "POST")
    def flavor_action(req: Request):
        admin(req, "os_compute_api:os-flavor-access")
        f = helpers.find_flavor(req.context, req.path_params["flavor_id"])
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Invalid action")
        name, args = next(iter(body.items()))
        tenant = (args or {}).get("tenant") if isinstance(args, dict) else None
        if name not in ("addTenantAccess", "removeTenantAccess") or not tenant:
            raise errors.BadRequest("Invalid input for field/attribute tenant.")
        if f["is_public"]:
            raise errors.Conflict("Can not add access to a public flavor.")

        def txn(s):
            found = s.execute(sa.select(m.flavor_access).where(
                m.flavor_access.c.flavorid == f["flavorid"],
                m.flavor_access.c.project_id == tenant)).first()
            if name == "addTenantAccess":
                if found:
                    raise errors.Conflict(f"Flavor access already exists for flavor "
                                          f"{f['flavorid']} and project {tenant} combination.")
                s.execute(m.flavor_access.insert().values(flavorid=f["flavorid"],
                                                          project_id=tenant))
            else:
                if not found:
                    raise errors.NotFound(f"Flavor access not found for {f['flavorid']} / "
                                          f"{tenant} combination.")
                s.execute(m.flavor_access.delete().where(
                    m.flavor_access.c.flavorid == f["flavorid"],
                    m.flavor_access.c.project_id == tenant))
        db.transaction(txn)
        return access_list(f["flavorid"])

    # == keypairs =============================================================

    def keypair_view(req: Request, k: dict, *, full: bool) -> dict:
        out = {"name": k["name"], "public_key": k["public_key"],
               "fingerprint": k["fingerprint"]}
        if v(req) >= (2, 2):
            out["type"] = k["type"]
        if full:
            out.update({"user_id": k["user_id"], "created_at": isotime(
                k["created_at"], micro=True, z=False), "deleted": False, "deleted_at": None,
                "updated_at": None, "id": k["id"]})
        return out

    def keypair_user(req: Request) -> str:
        user = req.query.get("user_id")
        if user and v(req) >= (2, 10) and user != req.context.user_id:
            admin(req, "os_compute_api:os-keypairs:other_user")
            return user
        return req.context.user_id

    @api.route("/v2.1/os-keypairs", "GET")
    def keypair_index(req: Request):
        user = keypair_user(req)
        with db.reader() as s:
            rows = [row(r) for r in s.execute(sa.select(m.keypair).where(
                m.keypair.c.user_id == user).order_by(m.keypair.c.name)).all()]
        out: dict = {}
        if v(req) >= (2, 35):
            q = req.query
            if q.get("marker"):
                names = [k["name"] for k in rows]
                if q["marker"] not in names:
                    raise errors.BadRequest(f"marker [{q['marker']}] not found")
                rows = rows[names.index(q["marker"]) + 1:]
            if q.get("limit"):
                limit = _int(q["limit"], "limit")
                if len(rows) > limit:
                    rows = rows[:limit]
                    out["keypairs_links"] = [{"rel": "next", "href": (
                        f"{req.base_url}/v2.1/os-keypairs?limit={limit}"
                        f"&marker={rows[-1]['name']}")}]
        out["keypairs"] = [{"keypair": keypair_view(req, k, full=False)} for k in rows]
        return out

    @api.route("/v2.1/os-keypairs", "POST")
    def keypair_create(req: Request):
        body = validate(schemas.keypair_create, req.json())["keypair"]
        user = req.context.user_id
        if body.get("user_id") and v(req) >= (2, 10) and body["user_id"] != user:
            admin(req, "os_compute_api:os-keypairs:other_user")
            user = body["user_id"]
        private = None
        public = body.get("public_key")
        if public is None:
            if v(req) >= (2, 92):
                raise errors.BadRequest("'public_key' is a required property")
            private, public = generate_keypair(body["name"])
        fp = fingerprint(public)
        values = dict(name=body["name"], user_id=user, fingerprint=fp, public_key=public,
                      type=body.get("type", "ssh") if v(req) >= (2, 2) else "ssh",
                      created_at=utcnow())

        def txn(s):
            if s.execute(sa.select(m.keypair.c.id).where(
                    m.keypair.c.user_id == user, m.keypair.c.name == body["name"])).first():
                raise errors.Conflict(f"Key pair '{body['name']}' already exists.")
            limit = conductor.quota_limits(req.context.project_id, s)["key_pairs"]
            count = s.execute(sa.select(sa.func.count()).select_from(m.keypair).where(
                m.keypair.c.user_id == user)).scalar()
            if limit >= 0 and count + 1 > limit:
                raise errors.Forbidden("Quota exceeded, too many key pairs.")
            values["id"] = s.execute(m.keypair.insert().values(**values)).inserted_primary_key[0]
        db.transaction(txn)
        out = {"name": values["name"], "public_key": public, "fingerprint": fp,
               "user_id": user}
        if private is not None:
            out["private_key"] = private
        if v(req) >= (2, 2):
            out["type"] = values["type"]
        return JSONResponse({"keypair": out}, status_code=201 if v(req) >= (2, 2) else 200)

    def find_keypair(req: Request) -> dict:
        user = keypair_user(req)
        with db.reader() as s:
            k = row(s.execute(sa.select(m.keypair).where(
                m.keypair.c.user_id == user,
                m.keypair.c.name == req.path_params["name"])).first())
        if k is None:
            raise errors.NotFound(f"Keypair {req.path_params['name']} not found for user "
                                  f"{user}")
        return k

    @api.route("/v2.1/os-keypairs/{name}", "GET")
    def keypair_show(req: Request):
        return {"keypair": keypair_view(req, find_keypair(req), full=True)}

    @api.route("/v2.1/os-keypairs/{name}", "DELETE")
    def keypair_delete(req: Request):
        k = find_keypair(req)
        db.transaction(lambda s: s.execute(m.keypair.delete().where(m.keypair.c.id == k["id"])))
        return Response(status_code=204 if v(req) >= (2, 2) else 202)

    # == availability zones ====================================================

    @api.route("/v2.1/os-availability-zone", "GET")
    def az_index(req: Request):
        return {"availabilityZoneInfo": [
            {"zoneName": z, "zoneState": {"available": True}, "hosts": None}
            for z in sorted(zone_hosts(up_only=True))]}

    def zone_hosts(up_only: bool = False) -> dict[str, list[dict]]:
        now = utcnow()
        with db.reader() as s:
            services = [row(r) for r in s.execute(sa.select(m.service)).all()]
            host_zone = {}
            for meta, host in s.execute(sa.select(m.aggregate.c.meta, m.aggregate_host.c.host)
                                        .join(m.aggregate_host)).all():
                if meta.get("availability_zone") and host not in host_zone:
                    host_zone[host] = meta["availability_zone"]
        zones: dict[str, list[dict]] = {}
        for svc in services:
            up = conductor.service_up(svc, now)
            if up_only and (not up or svc["disabled"]):
                continue
            zone = host_zone.get(svc["host"], default_zone(conf))
            zones.setdefault(zone, []).append({**svc, "up": up})
        return zones

    @api.route("/v2.1/os-availability-zone/detail", "GET")
    def az_detail(req: Request):
        admin(req, "os_compute_api:os-availability-zone:detail")
        out = []
        internal = {"nova-conductor": True, "nova-scheduler": True}
        for zone, svcs in sorted(zone_hosts().items()):
            hosts: dict[str, dict] = {}
            for svc in svcs:
                hosts.setdefault(svc["host"], {})[SHOWN_BINARY.get(svc["binary"],
                                                                   svc["binary"])] = {
                    "available": svc["up"], "active": not svc["disabled"],
                    "updated_at": isotime(svc["last_seen_at"], micro=True, z=False)}
            out.append({"zoneName": zone, "zoneState": {"available": True}, "hosts": hosts})
        del internal
        return {"availabilityZoneInfo": out}

    # == aggregates ============================================================

    def aggregate_view(req: Request, a: dict, hosts: list[str]) -> dict:
        out = {"id": a["id"], "name": a["name"],
               "availability_zone": a["meta"].get("availability_zone"),
               "hosts": hosts, "metadata": a["meta"],
               "created_at": isotime(a["created_at"], micro=True, z=False),
               "updated_at": isotime(a["updated_at"], micro=True, z=False),
               "deleted_at": None, "deleted": False}
        if v(req) >= (2, 41):
            out["uuid"] = a["uuid"]
        return out

    def load_aggregate(s, agg_id: str) -> tuple[dict, list[str]]:
        try:
            key = int(agg_id)
            cond = m.aggregate.c.id == key
        except ValueError:
            cond = m.aggregate.c.uuid == agg_id
        a = row(s.execute(sa.select(m.aggregate).where(cond)).first())
        if a is None:
            raise errors.NotFound(f"Aggregate {agg_id} could not be found.")
        hosts = s.execute(sa.select(m.aggregate_host.c.host).where(
            m.aggregate_host.c.aggregate_id == a["id"]).order_by(
            m.aggregate_host.c.host)).scalars().all()
        return a, list(hosts)

    def check_zone_conflict(s, host: str, agg: dict, zone: str | None) -> None:
        if not zone:
            return
        for other_meta in s.execute(sa.select(m.aggregate.c.meta).join(
                m.aggregate_host).where(m.aggregate_host.c.host == host,
                                        m.aggregate.c.id != agg["id"])).scalars():
            other = other_meta.get("availability_zone")
            if other and other != zone:
                raise errors.Conflict(
                    f"Cannot add host to aggregate {agg['id']}. Reason: One or more hosts "
                    f"already in availability zone(s) ['{other}'].")

    @api.route("/v2.1/os-aggregates", "GET")
    def agg_index(req: Request):
        admin(req, "os_compute_api:os-aggregates")
        with db.reader() as s:
            aggs = [row(r) for r in s.execute(sa.select(m.aggregate).order_by(
                m.aggregate.c.id)).all()]
            hosts: dict[int, list[str]] = {}
            for agg_id, host in s.execute(sa.select(m.aggregate_host)).all():
                hosts.setdefault(agg_id, []).append(host)
        return {"aggregates": [aggregate_view(req, a, sorted(hosts.get(a["id"], [])))
                               for a in aggs]}

    @api.route("/v2.1/os-aggregates", "POST")
    def agg_create(req: Request):
        admin(req, "os_compute_api:os-aggregates")
        body = validate(schemas.aggregate_create, req.json())["aggregate"]
        zone = body.get("availability_zone")
        if zone == conf.internal_service_availability_zone:
            raise errors.BadRequest("Aggregates cannot be placed in the internal zone.")
        now = utcnow()
        meta = {"availability_zone": zone} if zone else {}

        def txn(s):
            if s.execute(sa.select(m.aggregate.c.id).where(
                    m.aggregate.c.name == body["name"])).first():
                raise errors.Conflict(f"Aggregate {body['name']} already exists.")
            new_id = s.execute(m.aggregate.insert().values(
                uuid=str(uuidlib.uuid4()), name=body["name"], meta=meta, created_at=now,
                updated_at=None)).inserted_primary_key[0]
            return load_aggregate(s, str(new_id))
        a, hosts = db.transaction(txn)
        out = aggregate_view(req, a, hosts)
        for key in ("hosts", "metadata"):
            out.pop(key)
        return {"aggregate": out}

    @api.route("/v2.1/os-aggregates/{agg_id}", "GET")
    def agg_show(req: Request):
        admin(req, "os_compute_api:os-aggregates")
        with db.reader() as s:
            a, hosts = load_aggregate(s, req.path_params["agg_id"])
        return {"aggregate": aggregate_view(req, a, hosts)}

    @api.route("/v2.1/os-aggregates/{agg_id}", "PUT")
    def agg_update(req: Request):
        admin(req, "os_compute_api:os-aggregates")
        body = validate(schemas.aggregate_update, req.json())["aggregate"]

        def txn(s):
            a, hosts = load_aggregate(s, req.path_params["agg_id"])
            values = {"updated_at": utcnow()}
            if "name" in body and body["name"] != a["name"]:
                if s.execute(sa.select(m.aggregate.c.id).where(
                        m.aggregate.c.name == body["name"])).first():
                    raise errors.Conflict(f"Aggregate {body['name']} already exists.")
                values["name"] = body["name"]
            if "availability_zone" in body:
                meta = dict(a["meta"])
                zone = body["availability_zone"]
                for h in hosts:
                    check_zone_conflict(s, h, a, zone)
                if zone:
                    meta["availability_zone"] = zone
                else:
                    meta.pop("availability_zone", None)
                values["meta"] = meta
            s.execute(m.aggregate.update().where(m.aggregate.c.id == a["id"]).values(**values))
            return load_aggregate(s, str(a["id"]))
        a, hosts = db.transaction(txn)
        return {"aggregate": aggregate_view(req, a, hosts)}

    @api.route("/v2.1/os-aggregates/{agg_id}", "DELETE")
    def agg_delete(req: Request):
        admin(req, "os_compute_api:os-aggregates")

        def txn(s):
            a, hosts = load_aggregate(s, req.path_params["agg_id"])
            if hosts:
                raise errors.BadRequest(f"Cannot remove aggregate {a['id']}: it has hosts "
                                        f"{hosts}")
            s.execute(m.aggregate.delete().where(m.aggregate.c.id == a["id"]))
        db.transaction(txn)
        return Response(status_code=200)

    @api.route("/v2.1/os-aggregates/{agg_id}/action", "POST")
    def agg_action(req: Request):
        admin(req, "os_compute_api:os-aggregates")
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Invalid aggregate action")
        name, args = next(iter(body.items()))
        if name not in ("add_host", "remove_host", "set_metadata") or not isinstance(args, dict):
            raise errors.BadRequest(f"Invalid aggregate action {name}")

        def txn(s):
            a, hosts = load_aggregate(s, req.path_params["agg_id"])
            if name in ("add_host", "remove_host"):
                host = args.get("host")
                if not isinstance(host, str) or not host:
                    raise errors.BadRequest("Invalid input for field/attribute host.")
                known = s.execute(sa.select(m.service.c.id).where(
                    m.service.c.host == host)).first()
                if known is None:
                    raise errors.NotFound(f"Compute host {host} could not be found.")
                if name == "add_host":
                    if host in hosts:
                        raise errors.Conflict(f"Aggregate {a['id']} already has host {host}.")
                    check_zone_conflict(s, host, a, a["meta"].get("availability_zone"))
                    s.execute(m.aggregate_host.insert().values(aggregate_id=a["id"],
                                                               host=host))
                else:
                    if host not in hosts:
                        raise errors.NotFound(f"Cannot remove host {host} in aggregate "
                                              f"{a['id']}")
                    s.execute(m.aggregate_host.delete().where(
                        m.aggregate_host.c.aggregate_id == a["id"],
                        m.aggregate_host.c.host == host))
            else:
                meta = args.get("metadata")
                if not isinstance(meta, dict):
                    raise errors.BadRequest("Invalid input for field/attribute metadata.")
                merged = dict(a["meta"])
                for key, value in meta.items():
                    if not isinstance(key, str) or not 1 <= len(key) <= 255:
                        raise errors.BadRequest("Invalid metadata key")
                    if value is None:
                        merged.pop(key, None)
                    else:
                        if key == "availability_zone":
                            for h in hosts:
                                check_zone_conflict(s, h, a, str(value))
                        merged[key] = str(value)
                s.execute(m.aggregate.update().where(m.aggregate.c.id == a["id"]).values(
                    meta=merged, updated_at=utcnow()))
            return load_aggregate(s, str(a["id"]))
        a, hosts = db.transaction(txn)
        return {"aggregate": aggregate_view(req, a, hosts)}

    # == services ==============================================================

    def service_view(req: Request, svc: dict, now) -> dict:
        up = conductor.service_up(svc, now)
        out = {"id": svc["uuid"] if v(req) >= (2, 53) else svc["id"],
               "binary": SHOWN_BINARY.get(svc["binary"], svc["binary"]), "host": svc["host"],
               "zone": svc["zone"], "status": "disabled" if svc["disabled"] else "enabled",
               "state": "up" if up else "down",
               "updated_at": isotime(svc["last_seen_at"] or svc["updated_at"], micro=True,
                                     z=False),
               "disabled_reason": svc["disabled_reason"]}
        if v(req) >= (2, 11):
            out["forced_down"] = bool(svc["forced_down"])
        return out

    def all_services() -> list[dict]:
        with db.reader() as s:
            svcs = [row(r) for r in s.execute(sa.select(m.service).order_by(
                m.service.c.id)).all()]
            host_zone = {}
            for meta, host in s.execute(sa.select(m.aggregate.c.meta, m.aggregate_host.c.host)
                                        .join(m.aggregate_host)).all():
                if meta.get("availability_zone"):
                    host_zone.setdefault(host, meta["availability_zone"])
        for svc in svcs:
            svc["zone"] = host_zone.get(svc["host"], default_zone(conf)) \
                if svc["binary"] == BINARY else conf.internal_service_availability_zone
        return svcs

    @api.route("/v2.1/os-services", "GET")
    def service_index(req: Request):
        admin(req, "os_compute_api:os-services")
        svcs = all_services()
        q = req.query
        if q.get("host"):
            svcs = [s for s in svcs if s["host"] == q["host"]]
        if q.get("binary"):
            svcs = [s for s in svcs if SHOWN_BINARY.get(s["binary"], s["binary"])
                    == q["binary"]]
        now = utcnow()
        return {"services": [service_view(req, s, now) for s in svcs]}

    @api.route("/v2.1/os-services/{service_id}", "PUT")
    def service_update(req: Request):
        admin(req, "os_compute_api:os-services")
        key = req.path_params["service_id"]
        body = req.json()
        if not isinstance(body, dict):
            raise errors.BadRequest("Invalid body")
        if v(req) < (2, 53):
            action = key
            host = body.get("host")
            binary = body.get("binary")
            if action not in ("enable", "disable", "disable-log-reason", "force-down"):
                raise errors.NotFound("Unknown action")
            values = {}
            if action == "enable":
                values = {"disabled": False, "disabled_reason": None}
            elif action in ("disable", "disable-log-reason"):
                values = {"disabled": True,
                          "disabled_reason": body.get("disabled_reason")}
            else:
                values = {"forced_down": bool(body.get("forced_down"))}
            cond = sa.and_(m.service.c.host == host, m.service.c.binary.in_(
                [binary, BINARY] if binary == "nova-compute" else [binary]))
        else:
            allowed = {"status", "disabled_reason", "forced_down"}
            if not body or set(body) - allowed:
                raise errors.BadRequest("Invalid input for service update")
            values = {}
            if "status" in body:
                if body["status"] not in ("enabled", "disabled"):
                    raise errors.BadRequest("Invalid input for field/attribute status.")
                values["disabled"] = body["status"] == "disabled"
                values["disabled_reason"] = body.get("disabled_reason") \
                    if values["disabled"] else None
            elif "disabled_reason" in body:
                raise errors.BadRequest("Specifying 'disabled_reason' with status "
                                        "'enabled' is invalid.")
            if "forced_down" in body:
                values["forced_down"] = bool(body["forced_down"])
            cond = m.service.c.uuid == key
        now = utcnow()

        def txn(s):
            found = row(s.execute(sa.select(m.service).where(cond)).first())
            if found is None:
                raise errors.NotFound(f"Service {key} could not be found.")
            s.execute(m.service.update().where(m.service.c.id == found["id"]).values(
                updated_at=now, **values))
            return found["id"]
        sid = db.transaction(txn)
        svc = next(s for s in all_services() if s["id"] == sid)
        if v(req) < (2, 53):
            out = {"host": svc["host"], "binary": SHOWN_BINARY.get(svc["binary"],
                                                                    svc["binary"])}
            if "disabled" in values:
                out["status"] = "disabled" if svc["disabled"] else "enabled"
                if svc["disabled_reason"]:
                    out["disabled_reason"] = svc["disabled_reason"]
            if "forced_down" in values:
                out["forced_down"] = svc["forced_down"]
            return {"service": out}
        return {"service": service_view(req, svc, now)}

    @api.route("/v2.1/os-services/{service_id}", "DELETE", status=204)
    def service_delete(req: Request):
        admin(req, "os_compute_api:os-services")
        key = req.path_params["service_id"]
        cond = m.service.c.uuid == key if v(req) >= (2, 53) else m.service.c.id == (
            int(key) if key.isdigit() else -1)

        def txn(s):
            found = row(s.execute(sa.select(m.service).where(cond)).first())
            if found is None:
                raise errors.NotFound(f"Service {key} could not be found.")
            busy = s.execute(sa.select(sa.func.count()).select_from(m.instance).where(
                m.instance.c.host == found["host"], m.instance.c.deleted.is_(False))).scalar()
            if busy:
                raise errors.Conflict("Unable to delete compute service that is hosting "
                                      "instances. Migrate or delete the instances first and "
                                      "try again.")
            s.execute(m.service.delete().where(m.service.c.id == found["id"]))
            s.execute(m.compute_node.delete().where(m.compute_node.c.host == found["host"]))
            s.execute(m.aggregate_host.delete().where(m.aggregate_host.c.host == found["host"]))
        db.transaction(txn)

    # == hypervisors ===========================================================

    def hypervisor_rows() -> list[tuple[dict, dict]]:
        with db.reader() as s:
            nodes = [row(r) for r in s.execute(sa.select(m.compute_node).order_by(
                m.compute_node.c.id)).all()]
            svcs = {r.host: row(r) for r in s.execute(sa.select(m.service).where(
                m.service.c.binary == BINARY)).all()}
        return [(n, svcs[n["host"]]) for n in nodes if n["host"] in svcs]

    def hypervisor_view(req: Request, node: dict, svc: dict, *, detail: bool,
                        servers: list | None = None) -> dict:
        now = utcnow()
        ver = v(req)
        out = {"id": node["uuid"] if ver >= (2, 53) else node["id"],
               "hypervisor_hostname": node["hypervisor_hostname"],
               "state": "up" if conductor.service_up(svc, now) else "down",
               "status": "disabled" if svc["disabled"] else "enabled"}
        if detail:
            out.update({"hypervisor_type": node["hypervisor_type"],
                        "hypervisor_version": node["hypervisor_version"],
                        "host_ip": node["host_ip"],
                        "service": {"host": svc["host"],
                                    "id": svc["uuid"] if ver >= (2, 53) else svc["id"],
                                    "disabled_reason": svc["disabled_reason"]}})
            if ver < (2, 88):
                out.update({"vcpus": node["vcpus"], "memory_mb": node["memory_mb"],
                            "local_gb": node["local_gb"], "vcpus_used": node["vcpus_used"],
                            "memory_mb_used": node["memory_mb_used"],
                            "local_gb_used": node["local_gb_used"],
                            "free_ram_mb": node["memory_mb"] - node["memory_mb_used"],
                            "free_disk_gb": node["local_gb"] - node["local_gb_used"],
                            "current_workload": 0, "running_vms": node["running_vms"],
                            "disk_available_least": node["local_gb"] - node["local_gb_used"],
                            "cpu_info": node["cpu_info"] if ver >= (2, 28)
                            else __import__("json").dumps(node["cpu_info"])})
            else:
                out["uptime"] = None
        if servers is not None:
            out["servers"] = servers
        return out

    def hypervisor_servers(host: str) -> list[dict]:
        with db.reader() as s:
            return [{"uuid": r.uuid, "name": f"instance-{r.id:08x}"} for r in s.execute(
                sa.select(m.instance.c.uuid, m.instance.c.id).where(
                    m.instance.c.host == host, m.instance.c.deleted.is_(False))).all()]

    def hypervisor_list(req: Request, detail: bool) -> dict:
        admin(req, "os_compute_api:os-hypervisors")
        q = req.query
        rows = hypervisor_rows()
        if q.get("hypervisor_hostname_pattern"):
            rows = [(n, s) for n, s in rows if q["hypervisor_hostname_pattern"]
                    in n["hypervisor_hostname"]]
            if not rows:
                raise errors.NotFound("No hypervisor matching "
                                      f"'{q['hypervisor_hostname_pattern']}' could be found.")
        with_servers = v(req) >= (2, 53) and req.flag("with_servers")
        if q.get("marker"):
            ids = [str(n["uuid"] if v(req) >= (2, 53) else n["id"]) for n, _ in rows]
            if q["marker"] not in ids:
                raise errors.BadRequest(f"marker [{q['marker']}] not found")
            rows = rows[ids.index(q["marker"]) + 1:]
        if q.get("limit"):
            rows = rows[:_int(q["limit"], "limit")]
        return {"hypervisors": [hypervisor_view(
            req, n, s, detail=detail,
            servers=hypervisor_servers(n["host"]) if with_servers else None)
            for n, s in rows]}

    @api.route("/v2.1/os-hypervisors", "GET")
    def hyp_index(req: Request):
        return hypervisor_list(req, False)

    @api.route("/v2.1/os-hypervisors/detail", "GET")
    def hyp_detail(req: Request):
        return hypervisor_list(req, True)

    @api.route("/v2.1/os-hypervisors/statistics", "GET")
    def hyp_stats(req: Request):
        admin(req, "os_compute_api:os-hypervisors")
        if v(req) >= (2, 88):
            raise errors.NotFound("The resource could not be found.")
        rows = hypervisor_rows()
        keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
                "local_gb_used", "running_vms")
        stats = {k: sum(n[k] for n, _ in rows) for k in keys}
        stats.update(count=len(rows), free_ram_mb=stats["memory_mb"] - stats["memory_mb_used"],
                     free_disk_gb=stats["local_gb"] - stats["local_gb_used"],
                     current_workload=0,
                     disk_available_least=stats["local_gb"] - stats["local_gb_used"])
        return {"hypervisor_statistics": stats}

    @api.route("/v2.1/os-hypervisors/{hyp_id}", "GET")
    def hyp_show(req: Request):
        admin(req, "os_compute_api:os-hypervisors")
        key = req.path_params["hyp_id"]
        for n, s in hypervisor_rows():
            if str(n["uuid"] if v(req) >= (2, 53) else n["id"]) == key:
                servers = hypervisor_servers(n["host"]) if v(req) >= (2, 53) and \
                    req.flag("with_servers") else None
                return {"hypervisor": hypervisor_view(req, n, s, detail=True,
                                                      servers=servers)}
        raise errors.NotFound(f"Hypervisor with ID '{key}' could not be found.")

    @api.route("/v2.1/os-hypervisors/{pattern}/search", "GET")
    def hyp_search(req: Request):
        admin(req, "os_compute_api:os-hypervisors")
        rows = [(n, s) for n, s in hypervisor_rows()
                if req.path_params["pattern"] in n["hypervisor_hostname"]]
        if not rows:
            raise errors.NotFound("No hypervisor matching "
                                  f"'{req.path_params['pattern']}' could be found.")
        return {"hypervisors": [hypervisor_view(req, n, s, detail=False) for n, s in rows]}

    @api.route("/v2.1/os-hypervisors/{pattern}/servers", "GET")
    def hyp_servers(req: Request):
        admin(req, "os_compute_api:os-hypervisors")
        rows = [(n, s) for n, s in hypervisor_rows()
                if req.path_params["pattern"] in n["hypervisor_hostname"]]
        if not rows:
            raise errors.NotFound("No hypervisor matching "
                                  f"'{req.path_params['pattern']}' could be found.")
        return {"hypervisors": [hypervisor_view(req, n, s, detail=False,
                                                servers=hypervisor_servers(n["host"]))
                                for n, s in rows]}

    # == quotas and limits =====================================================

    def shown_resources(req: Request) -> list[str]:
        names = ["instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups",
                 "server_group_members"]
        if v(req) < (2, 57):
            names += ["injected_files", "injected_file_content_bytes",
                      "injected_file_path_length"]
        if v(req) < (2, 36):
            names += ["floating_ips", "fixed_ips", "security_groups", "security_group_rules"]
        return names

    LEGACY = {"floating_ips": 10, "fixed_ips": -1, "security_groups": 10,
              "security_group_rules": 20}

    def quota_target(req: Request) -> str:
        project = req.path_params["project_id"]
        if project != req.context.project_id:
            admin(req, "os_compute_api:os-quota-sets:update")
        return project

    @api.route("/v2.1/os-quota-sets/{project_id}", "GET")
    def quota_show(req: Request):
        project = quota_target(req)
        limits = conductor.quota_limits(project)
        out = {"id": project}
        for r in shown_resources(req):
            out[r] = limits.get(r, LEGACY.get(r, -1))
        return {"quota_set": out}

    @api.route("/v2.1/os-quota-sets/{project_id}/detail", "GET")
    def quota_detail(req: Request):
        project = quota_target(req)
        limits = conductor.quota_limits(project)
        with db.reader() as s:
            used = conductor.usage(s, project)
            used["key_pairs"] = 0
        out = {"id": project}
        for r in shown_resources(req):
            out[r] = {"limit": limits.get(r, LEGACY.get(r, -1)), "in_use": used.get(r, 0),
                      "reserved": 0}
        return {"quota_set": out}

    @api.route("/v2.1/os-quota-sets/{project_id}/defaults", "GET")
    def quota_defaults(req: Request):
        project = req.path_params["project_id"]
        out = {"id": project}
        defaults = conductor.quota_classes.defaults()
        for r in shown_resources(req):
            out[r] = defaults.get(r, LEGACY.get(r, -1))
        return {"quota_set": out}

    @api.route("/v2.1/os-quota-sets/{project_id}", "PUT")
    def quota_update(req: Request):
        admin(req, "os_compute_api:os-quota-sets:update")
        project = req.path_params["project_id"]
        body = validate(schemas.quota_update, req.json())["quota_set"]
        force = str(body.pop("force", False)).lower() == "true"
        allowed = set(shown_resources(req))
        values = {}
        for key, value in body.items():
            if key not in allowed or key in LEGACY:
                raise errors.BadRequest(f"Bad key(s) {key} in quota_set")
            values[key] = _int(value, key, -1)
        with db.reader() as s:
            used = conductor.usage(s, project)
        for key, limit in values.items():
            if not force and limit >= 0 and used.get(key, 0) > limit:
                raise errors.BadRequest(f"Quota limit {limit} for {key} must be greater than "
                                        f"or equal to already used and reserved "
                                        f"{used.get(key, 0)}.")

        def txn(s):
            for key, limit in values.items():
                updated = s.execute(m.quota.update().where(
                    m.quota.c.project_id == project, m.quota.c.resource == key).values(
                    hard_limit=limit)).rowcount
                if not updated:
                    s.execute(m.quota.insert().values(project_id=project, resource=key,
                                                      hard_limit=limit))
        db.transaction(txn)
        limits = conductor.quota_limits(project)
        return {"quota_set": {r: limits.get(r, LEGACY.get(r, -1))
                              for r in shown_resources(req)}}

    @api.route("/v2.1/os-quota-sets/{project_id}", "DELETE", status=202)
    def quota_delete(req: Request):
        admin(req, "os_compute_api:os-quota-sets:update")
        project = req.path_params["project_id"]
        db.transaction(lambda s: s.execute(m.quota.delete().where(
            m.quota.c.project_id == project)))

    @api.route("/v2.1/limits", "GET")
    def limits(req: Request):
        project = req.query.get("tenant_id") or req.context.project_id
        if project != req.context.project_id:
            admin(req, "os_compute_api:os-quota-sets:update")
        lim = conductor.quota_limits(project)
        with db.reader() as s:
            used = conductor.usage(s, project)
        absolute = {"maxTotalInstances": lim["instances"], "maxTotalCores": lim["cores"],
                    "maxTotalRAMSize": lim["ram"], "maxServerMeta": lim["metadata_items"],
                    "maxTotalKeypairs": lim["key_pairs"], "maxServerGroups": lim["server_groups"],
                    "maxServerGroupMembers": lim["server_group_members"],
                    "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"],
                    "totalRAMUsed": used["ram"], "totalServerGroupsUsed": used["server_groups"]}
        if v(req) < (2, 57):
            absolute.update({"maxPersonality": lim["injected_files"],
                             "maxPersonalitySize": lim["injected_file_content_bytes"],
                             "maxImageMeta": lim["metadata_items"]})
        if v(req) < (2, 36):
            absolute.update({"maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
                             "maxTotalFloatingIps": 10, "totalSecurityGroupsUsed": 0,
                             "totalFloatingIpsUsed": 0})
        return {"limits": {"rate": [], "absolute": absolute}}

    # == server groups =========================================================

    def group_view(req: Request, g: dict, members: list[str]) -> dict:
        out = {"id": g["uuid"], "name": g["name"], "members": members}
        if v(req) >= (2, 64):
            out["policy"] = g["policy"]
            out["rules"] = g["rules"] or {}
        else:
            out["policies"] = [g["policy"]]
            out["metadata"] = {}
        if v(req) >= (2, 13):
            out["project_id"] = g["project_id"]
            out["user_id"] = g["user_id"]
        return out

    def group_members(s, ids: list[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        if not ids:
            return out
        for gid, iu in s.execute(sa.select(m.server_group_member.c.group_id,
                                           m.server_group_member.c.instance_uuid).where(
                m.server_group_member.c.group_id.in_(ids))).all():
            out.setdefault(gid, []).append(iu)
        return out

    @api.route("/v2.1/os-server-groups", "GET")
    def group_index(req: Request):
        stmt = sa.select(m.server_group).order_by(m.server_group.c.id)
        if "all_projects" in req.query and req.flag("all_projects"):
            admin(req, "os_compute_api:os-server-groups:index:all_projects")
        else:
            stmt = stmt.where(m.server_group.c.project_id == req.context.project_id)
        with db.reader() as s:
            groups = [row(r) for r in s.execute(stmt).all()]
            members = group_members(s, [g["id"] for g in groups])
        offset = _int(req.query.get("offset", 0), "offset")
        groups = groups[offset:]
        if req.query.get("limit"):
            groups = groups[:_int(req.query["limit"], "limit")]
        return {"server_groups": [group_view(req, g, members.get(g["id"], []))
                                  for g in groups]}

    @api.route("/v2.1/os-server-groups", "POST")
    def group_create(req: Request):
        body = validate(schemas.server_group_create, req.json())["server_group"]
        if v(req) >= (2, 64):
            if "policies" in body or "policy" not in body:
                raise errors.BadRequest("Invalid input for field/attribute server_group. "
                                        "'policy' is a required property")
            policy_name = body["policy"]
            rules = body.get("rules") or {}
            if rules and policy_name != "anti-affinity":
                raise errors.BadRequest("Only anti-affinity policy supports rules.")
            if "max_server_per_host" in rules:
                rules = {"max_server_per_host": int(rules["max_server_per_host"])}
        else:
            if "policy" in body or "rules" in body or "policies" not in body:
                raise errors.BadRequest("Invalid input for field/attribute server_group. "
                                        "'policies' is a required property")
            policy_name = body["policies"][0]
            if policy_name.startswith("soft-") and v(req) < (2, 15):
                raise errors.BadRequest("Invalid input for field/attribute policies.")
            rules = {}
        ctx = req.context

        conductor.ensure_project_lock(ctx.project_id)

        def txn(s):
            conductor.lock_project(s, ctx.project_id)
            conductor.check_quota(s, ctx.project_id, {"server_groups": 1})
            values = dict(uuid=str(uuidlib.uuid4()), name=body["name"],
                          project_id=ctx.project_id, user_id=ctx.user_id,
                          policy=policy_name, rules=rules, created_at=utcnow())
            values["id"] = s.execute(m.server_group.insert().values(
                **values)).inserted_primary_key[0]
            return values
        g = db.transaction(txn)
        return {"server_group": group_view(req, g, [])}

    def find_group(req: Request) -> tuple[dict, list[str]]:
        with db.reader() as s:
            g = row(s.execute(sa.select(m.server_group).where(
                m.server_group.c.uuid == req.path_params["group_id"])).first())
            if g is None or (g["project_id"] != req.context.project_id
                             and not req.context.is_admin):
                raise errors.NotFound(f"Instance group {req.path_params['group_id']} could "
                                      "not be found.")
            return g, group_members(s, [g["id"]]).get(g["id"], [])

    @api.route("/v2.1/os-server-groups/{group_id}", "GET")
    def group_show(req: Request):
        g, members = find_group(req)
        return {"server_group": group_view(req, g, members)}

    @api.route("/v2.1/os-server-groups/{group_id}", "DELETE", status=204)
    def group_delete(req: Request):
        g, _ = find_group(req)

        def txn(s):
            s.execute(m.server_group_member.delete().where(
                m.server_group_member.c.group_id == g["id"]))
            s.execute(m.server_group.delete().where(m.server_group.c.id == g["id"]))
        db.transaction(txn)

    # == usage =================================================================

    def usage_for(req: Request, project: str | None) -> list[dict]:
        q = req.query
        now = utcnow()
        start = _time(q.get("start")) or now - datetime.timedelta(days=1)
        end = _time(q.get("end")) or now
        stmt = sa.select(m.instance).where(
            m.instance.c.created_at < end,
            sa.or_(m.instance.c.terminated_at.is_(None), m.instance.c.terminated_at > start))
        if project:
            stmt = stmt.where(m.instance.c.project_id == project)
        with db.reader() as s:
            rows = [row(r) for r in s.execute(stmt).all()]
        by_project: dict[str, dict] = {}
        for inst in rows:
            begin = max(inst["launched_at"] or inst["created_at"], start)
            finish = min(inst["terminated_at"] or end, end)
            hours = max((finish - begin).total_seconds(), 0) / 3600.0
            f = inst["flavor"]
            p = by_project.setdefault(inst["project_id"], {
                "tenant_id": inst["project_id"], "total_local_gb_usage": 0.0,
                "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0, "total_hours": 0.0,
                "start": isotime(start, micro=True, z=False),
                "stop": isotime(end, micro=True, z=False), "server_usages": []})
            p["total_hours"] += hours
            p["total_vcpus_usage"] += hours * f["vcpus"]
            p["total_memory_mb_usage"] += hours * f["ram"]
            p["total_local_gb_usage"] += hours * f["disk"]
            p["server_usages"].append({
                "instance_id": inst["uuid"], "name": inst["display_name"], "hours": hours,
                "memory_mb": f["ram"], "local_gb": f["disk"], "vcpus": f["vcpus"],
                "tenant_id": inst["project_id"], "flavor": f["name"],
                "started_at": isotime(inst["launched_at"] or inst["created_at"], micro=True,
                                      z=False),
                "ended_at": isotime(inst["terminated_at"], micro=True, z=False),
                "state": "terminated" if inst["deleted"] else inst["vm_state"],
                "uptime": int(hours * 3600)})
        return list(by_project.values())

    @api.route("/v2.1/os-simple-tenant-usage", "GET")
    def usage_index(req: Request):
        admin(req, "os_compute_api:os-simple-tenant-usage:list")
        usages = usage_for(req, None)
        if not req.flag("detailed"):
            for u in usages:
                u.pop("server_usages")
        return {"tenant_usages": usages}

    @api.route("/v2.1/os-simple-tenant-usage/{tenant_id}", "GET")
    def usage_show(req: Request):
        project = req.path_params["tenant_id"]
        if project != req.context.project_id:
            admin(req, "os_compute_api:os-simple-tenant-usage:list")
        usages = usage_for(req, project)
        return {"tenant_usage": usages[0] if usages else {}}

    # == migrations ============================================================

    def migration_view(req: Request, mig: dict, *, server: bool = False) -> dict:
        ver = v(req)
        out = {"id": mig["id"], "instance_uuid": mig["instance_uuid"],
               "source_compute": mig["source_compute"], "dest_compute": mig["dest_compute"],
               "source_node": mig["source_compute"], "dest_node": mig["dest_compute"],
               "dest_host": "127.0.0.1", "status": mig["status"],
               "created_at": isotime(mig["created_at"], micro=True, z=False),
               "updated_at": isotime(mig["updated_at"], micro=True, z=False)}
        if server:
            out.pop("instance_uuid")
            out["server_uuid"] = mig["instance_uuid"]
            out.pop("status")
            out.update({"status": mig["status"], "memory_total_bytes": None,
                        "memory_processed_bytes": None, "memory_remaining_bytes": None,
                        "disk_total_bytes": None, "disk_processed_bytes": None,
                        "disk_remaining_bytes": None})
        else:
            out["old_instance_type_id"] = mig["old_flavor_id"]
            out["new_instance_type_id"] = mig["new_flavor_id"]
        if ver >= (2, 23) and not server:
            out["migration_type"] = mig["migration_type"]
            if mig["migration_type"] == "live-migration" and mig["status"] in (
                    "migrating", "running", "preparing", "queued"):
                out["links"] = [{"rel": "self", "href": (
                    f"{req.base_url}/v2.1/servers/{mig['instance_uuid']}/migrations/"
                    f"{mig['id']}")}]
        if ver >= (2, 59):
            out["uuid"] = mig["uuid"]
        if ver >= (2, 80):
            out["project_id"] = mig["project_id"]
            out["user_id"] = mig["user_id"]
        return out

    @api.route("/v2.1/os-migrations", "GET")
    def migrations_index(req: Request):
        admin(req, "os_compute_api:os-migrations:index")
        q = req.query
        stmt = sa.select(m.migration).order_by(m.migration.c.created_at.desc(),
                                               m.migration.c.id.desc())
        for key, col in (("instance_uuid", m.migration.c.instance_uuid),
                         ("status", m.migration.c.status),
                         ("migration_type", m.migration.c.migration_type),
                         ("source_compute", m.migration.c.source_compute),
                         ("project_id", m.migration.c.project_id),
                         ("user_id", m.migration.c.user_id)):
            if q.get(key):
                stmt = stmt.where(col == q[key])
        if q.get("host"):
            stmt = stmt.where(sa.or_(m.migration.c.source_compute == q["host"],
                                     m.migration.c.dest_compute == q["host"]))
        with db.reader() as s:
            rows = [row(r) for r in s.execute(stmt).all()]
        if v(req) >= (2, 59):
            if q.get("marker"):
                ids = [r["uuid"] for r in rows]
                if q["marker"] not in ids:
                    raise errors.BadRequest(f"Marker {q['marker']} could not be found.")
                rows = rows[ids.index(q["marker"]) + 1:]
            if q.get("limit"):
                rows = rows[:_int(q["limit"], "limit")]
        return {"migrations": [migration_view(req, r) for r in rows]}

    @api.route("/v2.1/servers/{server_id}/migrations", "GET")
    def server_migrations(req: Request):
        admin(req, "os_compute_api:os-migrations:index")
        if v(req) < (2, 23):
            raise errors.NotFound("The resource could not be found.")
        inst = helpers.instance(req)
        with db.reader() as s:
            rows = [row(r) for r in s.execute(sa.select(m.migration).where(
                m.migration.c.instance_uuid == inst["uuid"],
                m.migration.c.migration_type == "live-migration",
                m.migration.c.status.in_(("migrating", "running", "preparing", "queued"))
            )).all()]
        return {"migrations": [migration_view(req, r, server=True) for r in rows]}

    @api.route("/v2.1/extensions", "GET")
    def extensions(req: Request):
        return {"extensions": []}


def _time(value: str | None):
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(f"Invalid time format {value}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
