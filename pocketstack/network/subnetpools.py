"""Subnet pools: prefixes subnets get their CIDR from (``subnet_allocation``)."""

from __future__ import annotations

import ipaddress
import uuid

import sqlalchemy as sa

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.network import attrs as A
from pocketstack.network import errors as nerr
from pocketstack.network import models, render

SP, S = models.subnetpool, models.subnet

POOL_ATTRS = {
    "name": A.Attr(A.string(255), default=""),
    "description": A.Attr(A.string(255), default=""),
    "prefixes": A.Attr(A.list_of(A.loose_cidr), required=True),
    "default_prefixlen": A.Attr(A.integer(0, 128)),
    "min_prefixlen": A.Attr(A.integer(0, 128)),
    "max_prefixlen": A.Attr(A.integer(0, 128)),
    "shared": A.Attr(A.boolean, default=False, put=False),
    "is_default": A.Attr(A.boolean, default=False),
    "default_quota": A.Attr(A.integer(0, nullable=True), default=None),
    "address_scope_id": A.Attr(A.nullable(A.uuid_str), default=None),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
    "tags": A.Attr(A.list_of(A.string(255)), put=False),
}
POOL_FILTERS = {"id": ("id", str), "name": ("name", str), "tenant_id": ("project_id", str),
                "project_id": ("project_id", str), "ip_version": ("ip_version", int),
                "shared": ("shared", lambda v: A.boolean(v)),
                "is_default": ("is_default", lambda v: A.boolean(v)),
                "description": ("description", str)}


def _collapse(prefixes: list[str]) -> list[str]:
    nets = [ipaddress.ip_network(p) for p in prefixes]
    return [str(n) for n in ipaddress.collapse_addresses(nets)]


class SubnetPoolMixin:
    def _pool_columns(self, data: dict, existing: dict | None = None) -> dict:
        prefixes = data.get("prefixes", existing["prefixes"] if existing else [])
        versions = {ipaddress.ip_network(p).version for p in prefixes}
        if len(versions) != 1:
            raise nerr.invalid_input("Illegal subnetpool: prefixes must be of one IP version")
        version = versions.pop()
        if existing and version != existing["ip_version"]:
            raise nerr.invalid_input("Illegal subnetpool: IP version cannot change")
        if existing and not set(ipaddress.ip_network(p) for p in existing["prefixes"]) <= set(
                n for p in prefixes for n in [ipaddress.ip_network(p)]) and not all(
                any(ipaddress.ip_network(o).subnet_of(ipaddress.ip_network(p))
                    for p in prefixes) for o in existing["prefixes"]):
            raise nerr.bad_request("IllegalSubnetPoolPrefixUpdate",
                                   "Illegal update to prefixes: existing prefixes must stay.")
        top = 32 if version == 4 else 128
        smallest = min(ipaddress.ip_network(p).prefixlen for p in prefixes)

        def pick(name, fallback):
            if name in data and data[name] is not None:
                return data[name]
            return existing[name] if existing else fallback

        min_len = pick("min_prefixlen", 8 if version == 4 else 64)
        min_len = max(min_len, smallest) if "min_prefixlen" not in data else min_len
        max_len = pick("max_prefixlen", top)
        default_len = pick("default_prefixlen", min_len)
        if not (0 <= min_len <= default_len <= max_len <= top) or min_len < smallest:
            raise nerr.bad_request("IllegalSubnetPoolPrefixBounds",
                                   f"Illegal prefix bounds: min_prefixlen={min_len}, "
                                   f"default_prefixlen={default_len}, max_prefixlen={max_len} "
                                   f"(prefixes as short as /{smallest}).")
        return {"prefixes": _collapse(prefixes), "ip_version": version,
                "min_prefixlen": min_len, "max_prefixlen": max_len,
                "default_prefixlen": default_len}

    def create_subnetpool(self, ctx: RequestContext, body: dict) -> dict:
        data = A.convert("subnetpool", POOL_ATTRS, {"subnetpool": body})
        project = self.owner_for(ctx, data)
        if data["shared"]:
            self.enforce(ctx, "create_subnetpool:shared", {"project_id": project})
        if data["is_default"]:
            self.enforce(ctx, "create_subnetpool:is_default", {"project_id": project})
        cols = self._pool_columns(data)
        pool_id = str(uuid.uuid4())

        def txn(s):
            self.check_quota(s, project, "subnetpool")
            if data["is_default"]:
                s.execute(SP.update().where(SP.c.is_default.is_(True),
                                            SP.c.ip_version == cols["ip_version"])
                          .values(is_default=False))
            now = self.now()
            row = {"id": pool_id, "project_id": project, "name": data["name"],
                   "description": data["description"], **cols, "shared": data["shared"],
                   "is_default": data["is_default"], "default_quota": data["default_quota"],
                   "address_scope_id": data["address_scope_id"],
                   "tags": data.get("tags") or [], "created_at": now, "updated_at": now,
                   "revision_number": 0}
            s.execute(SP.insert().values(**row))
            self.set_tags_rows(s, pool_id, row["tags"])
            return row

        return render.subnetpool(self.run(txn))

    def get_subnetpool(self, ctx, id: str) -> dict:
        with self.db.reader() as s:
            return render.subnetpool(self.fetch(s, ctx, "subnetpool", SP, id))

    def list_subnetpools(self, ctx, filters=None, **page) -> list:
        return self.list_page(ctx, "subnetpool", filters, **page)[0]

    def update_subnetpool(self, ctx, id: str, body: dict) -> dict:
        data = A.convert("subnetpool", POOL_ATTRS, {"subnetpool": body}, update=True)

        def txn(s):
            row = self.fetch(s, ctx, "subnetpool", SP, id, lock=True)
            if row["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("update_subnetpool")
            if "is_default" in data:
                self.enforce(ctx, "update_subnetpool:is_default", {"project_id":
                                                                   row["project_id"]})
            changes = {k: data[k] for k in ("name", "description", "is_default",
                                             "default_quota", "address_scope_id") if k in data}
            if {"prefixes", "min_prefixlen", "max_prefixlen", "default_prefixlen"} & set(data):
                changes.update(self._pool_columns(data, row))
            if changes.get("is_default"):
                s.execute(SP.update().where(SP.c.is_default.is_(True),
                                            SP.c.ip_version == row["ip_version"])
                          .values(is_default=False))
            if changes:
                changes.update(revision_number=row["revision_number"] + 1,
                               updated_at=self.now())
                s.execute(SP.update().where(SP.c.id == id).values(**changes))
                row.update(changes)
            return row

        return render.subnetpool(self.run(txn))

    def delete_subnetpool(self, ctx, id: str) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "subnetpool", SP, id, lock=True)
            if row["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("delete_subnetpool")
            if s.execute(sa.select(S.c.id).where(S.c.subnetpool_id == id).limit(1)).first():
                raise nerr.conflict("SubnetPoolInUse", f"Unable to complete operation on "
                                    f"subnetpool {id}. Subnets are still allocated.")
            s.execute(models.tag.delete().where(models.tag.c.resource_id == id))
            s.execute(SP.delete().where(SP.c.id == id))

        self.run(txn)

    def default_subnetpool_id(self, version: int) -> str | None:
        with self.db.reader() as s:
            return s.execute(sa.select(SP.c.id).where(SP.c.is_default.is_(True),
                                                      SP.c.ip_version == version)).scalar()

    def allocate_prefix(self, s, ctx, data: dict, version: int, cidr: str | None):
        """(cidr, pool row) for a subnet asking a pool for its prefix. The pool
        row is locked so two subnets never get the same prefix."""
        pool_id = data.get("subnetpool_id")
        if pool_id is None:
            pool_id = s.execute(sa.select(SP.c.id).where(
                SP.c.is_default.is_(True), SP.c.ip_version == version)).scalar()
            if pool_id is None:
                if cidr is not None:
                    return cidr, None
                raise errors.BadRequest("Bad subnets request: No default subnetpool found for "
                                        f"IPv{version}", kind="BadRequest")
        pool = self.fetch(s, ctx, "subnetpool", SP, pool_id, lock=True)
        if pool["ip_version"] != version:
            raise nerr.invalid_input(f"Cannot allocate IPv{version} subnet from IPv"
                                     f"{pool['ip_version']} subnet pool")
        used = [ipaddress.ip_network(c) for c in s.execute(sa.select(S.c.cidr).where(
            S.c.subnetpool_id == pool_id)).scalars()]
        if pool["default_quota"] is not None:
            size = sum(u.num_addresses for u in used)
            if size >= pool["default_quota"] * (1 if version == 4 else 2**64):
                raise nerr.conflict("SubnetPoolQuotaExceeded",
                                    "Per-tenant subnet pool prefix quota exceeded.")
        prefixes = [ipaddress.ip_network(p) for p in pool["prefixes"]]
        if cidr is not None:
            net = ipaddress.ip_network(cidr)
            if not any(net.subnet_of(p) for p in prefixes):
                raise nerr.bad_request("SubnetAllocationError",
                                       f"Unable to allocate subnet with prefix {cidr}: "
                                       "it is not in the pool's prefixes.")
            if any(net.overlaps(u) for u in used):
                raise nerr.conflict("SubnetAllocationError",
                                    f"Unable to allocate subnet with prefix {cidr}: it "
                                    "overlaps an allocated prefix.")
            if not pool["min_prefixlen"] <= net.prefixlen <= pool["max_prefixlen"]:
                raise nerr.bad_request("SubnetAllocationError",
                                       f"Unable to allocate subnet with prefix length "
                                       f"{net.prefixlen}, allowed {pool['min_prefixlen']}-"
                                       f"{pool['max_prefixlen']}.")
            return cidr, pool
        length = data.get("prefixlen") or pool["default_prefixlen"]
        if not pool["min_prefixlen"] <= length <= pool["max_prefixlen"]:
            raise nerr.bad_request("SubnetAllocationError",
                                   f"Unable to allocate subnet with prefix length {length}, "
                                   f"allowed {pool['min_prefixlen']}-{pool['max_prefixlen']}.")
        for prefix in prefixes:
            if prefix.prefixlen > length:
                continue
            free = [prefix]
            for u in used:
                nxt = []
                for f in free:
                    if u.subnet_of(f):
                        nxt.extend(f.address_exclude(u))
                    elif not f.subnet_of(u):
                        nxt.append(f)
                free = nxt
            candidates = sorted((f for f in free if f.prefixlen <= length),
                                key=lambda n: int(n.network_address))
            if candidates:
                first = candidates[0]
                return str(next(first.subnets(new_prefix=length)) if first.prefixlen < length
                           else first), pool
        raise nerr.conflict("SubnetAllocationError", "Unable to allocate subnet with prefix "
                            f"length {length}, no prefix available in subnet pool.")
