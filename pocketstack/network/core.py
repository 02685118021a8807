"""The networking manager: Neutron's business rules over the network database.

Other services call it in-process with a ``RequestContext``; the API layer
(api.py) is a thin HTTP skin over the same methods. Every method takes and
returns plain dicts shaped exactly as the Networking v2.0 API renders them
(``{"id": ..., "fixed_ips": [...], "binding:host_id": ...}``), without the
``{"port": ...}`` envelope.

How compute uses it (``net = cloud.services["network"].manager``)::

    ctx = request_context_of_the_user            # visibility and quotas apply
    admin = RequestContext.internal_admin()      # for binding (admin-only attrs)

    # networks: auto -> the project's network (created on first use)
    topo = net.get_auto_allocated_topology(ctx, ctx.project_id)
    network_id = topo["id"]

    net.get_network(ctx, network_id)             # 404 NetworkNotFound if not visible
    net.find_network(ctx, "private")             # by name or id
    net.list_networks(ctx, {"shared": True})     # filters: attr -> value or [values]
    net.list_subnets(ctx, {"network_id": [id1, id2]})
    net.find_security_group(ctx, "default")      # by name or id (project's default made)

    port = net.create_port(ctx, {"network_id": network_id,
                                 "security_groups": [sg_id],        # optional
                                 "fixed_ips": [{"ip_address": "10.0.0.5"}]})  # optional
    port = net.update_port(admin, port["id"], {
        "device_id": server_id, "device_owner": "compute:nova",
        "binding:host_id": host})                # -> port["binding:vif_type"/"vif_details"]
    net.list_ports(ctx, {"device_id": server_id})
    net.update_port(admin, port_id, {"device_id": "", "device_owner": "",
                                     "binding:host_id": ""})   # detach, keep the port
    net.delete_port(ctx, port_id)                # also fine for ports compute created
    net.delete_ports_of_device(admin, server_id) # all ports of a deleted server

A ``create_port`` with ``binding:host_id`` in it (admin context) creates and
binds in one call. Errors are ``pocketstack.common.errors.ApiError`` with
Neutron's ``kind`` (``IpAddressGenerationFailure`` 409, ``NetworkNotFound``
404, ``PortNotFound`` 404, ``OverQuota`` 409...).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
import time
import uuid

import sqlalchemy as sa
from sqlalchemy import exc

from pocketstack.common import errors, pagination
from pocketstack.common.context import RequestContext
from pocketstack.common.db import is_retryable, utcnow
from pocketstack.common.groupcommit import GroupCommit
from pocketstack.network import attrs as A
from pocketstack.network import errors as nerr
from pocketstack.network import ipam, models, render
from pocketstack.network.l3 import L3Mixin
from pocketstack.network.quotas import QuotaMixin
from pocketstack.network.secgroups import SecurityGroupMixin
from pocketstack.network.subnetpools import SubnetPoolMixin

LOG = logging.getLogger(__name__)

N, S, P, IPA, SEG = (models.network, models.subnet, models.port, models.ip_allocation,
                     models.segment)

ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
ROUTER_OWNERS = (*ROUTER_INTERFACE_OWNERS, "network:router_gateway")
SERVICE_OWNERS_DELETED_WITH_NETWORK = ("network:dhcp",)
NETWORK_TYPES = ("local", "flat", "vlan", "vxlan", "geneve", "gre")


def new_id() -> str:
    return str(uuid.uuid4())


def _tags(value):
    return A.list_of(A.string(255))(value)


NETWORK_ATTRS = {
    "name": A.Attr(A.string(255), default=""),
    "description": A.Attr(A.string(255), default=""),
    "admin_state_up": A.Attr(A.boolean, default=True),
    "shared": A.Attr(A.boolean, default=False),
    "router:external": A.Attr(A.boolean, default=False),
    "is_default": A.Attr(A.boolean, default=False),
    "mtu": A.Attr(A.integer(68, 65535)),
    "port_security_enabled": A.Attr(A.boolean, default=True),
    "provider:network_type": A.Attr(A.one_of(*NETWORK_TYPES), put=False),
    "provider:physical_network": A.Attr(A.string(64, nullable=True), put=False),
    "provider:segmentation_id": A.Attr(A.integer(0, 2**24 - 1, nullable=True), put=False),
    "availability_zone_hints": A.Attr(A.list_of(A.string(255)), put=False, default=list),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
    "tags": A.Attr(_tags, put=False),
    "vlan_transparent": A.Attr(A.boolean, put=False),
    "qinq": A.Attr(A.boolean, put=False),
}

SUBNET_ATTRS = {
    "name": A.Attr(A.string(255), default=""),
    "description": A.Attr(A.string(255), default=""),
    "network_id": A.Attr(A.uuid_str, put=False, required=True),
    "ip_version": A.Attr(A.one_of(4, 6, "4", "6"), put=False, default=4),
    "cidr": A.Attr(lambda v: v, put=False),
    "prefixlen": A.Attr(A.integer(0, 128), put=False),
    "subnetpool_id": A.Attr(A.nullable(A.uuid_str), put=False),
    "use_default_subnetpool": A.Attr(A.boolean, put=False),
    "gateway_ip": A.Attr(A.nullable(A.ip_address)),
    "enable_dhcp": A.Attr(A.boolean, default=True),
    "ipv6_ra_mode": A.Attr(A.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless",
                                    allow_none=True), put=False, default=None),
    "ipv6_address_mode": A.Attr(A.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless",
                                         allow_none=True), put=False, default=None),
    "allocation_pools": A.Attr(A.list_of(A.dict_value)),
    "dns_nameservers": A.Attr(A.list_of(A.ip_address, unique=True), default=list),
    "host_routes": A.Attr(A.list_of(A.dict_value), default=list),
    "service_types": A.Attr(A.list_of(A.string(255)), default=list),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
    "tags": A.Attr(_tags, put=False),
}

PORT_ATTRS = {
    "name": A.Attr(A.string(255), default=""),
    "description": A.Attr(A.string(255), default=""),
    "network_id": A.Attr(A.uuid_str, put=False, required=True),
    "admin_state_up": A.Attr(A.boolean, default=True),
    "mac_address": A.Attr(A.mac_address),
    "fixed_ips": A.Attr(A.list_of(A.dict_value, nullable_list=False)),
    "device_id": A.Attr(A.string(255), default=""),
    "device_owner": A.Attr(A.string(255), default=""),
    "security_groups": A.Attr(A.list_of(A.uuid_str, unique=False)),
    "port_security_enabled": A.Attr(A.boolean),
    "allowed_address_pairs": A.Attr(A.list_of(A.dict_value), default=list),
    "extra_dhcp_opts": A.Attr(A.list_of(A.dict_value), default=list),
    "binding:host_id": A.Attr(A.string(255), default=""),
    "binding:vnic_type": A.Attr(A.one_of("normal", "direct", "macvtap", "baremetal",
                                         "direct-physical", "virtio-forwarder", "smart-nic",
                                         "remote-managed", "vdpa"), default="normal"),
    "binding:profile": A.Attr(A.dict_value, default=dict),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
    "tags": A.Attr(_tags, put=False),
}

# API filter name -> (table column, converter of a query-string value)
def _bool_filter(v):
    try:
        return A.boolean(v)
    except A.Invalid as e:
        raise errors.BadRequest(str(e), kind="HTTPBadRequest") from None


def _int_filter(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"'{v}' is not an integer", kind="HTTPBadRequest") from None


def _str(v):
    return v if isinstance(v, str) else str(v)


COMMON_FILTERS = {"id": ("id", _str), "name": ("name", _str), "tenant_id": ("project_id", _str),
                  "project_id": ("project_id", _str), "description": ("description", _str),
                  "revision_number": ("revision_number", _int_filter)}
FILTERS = {
    "network": {**COMMON_FILTERS, "admin_state_up": ("admin_state_up", _bool_filter),
                "status": ("status", _str), "shared": ("shared", _bool_filter),
                "router:external": ("external", _bool_filter),
                "is_default": ("is_default", _bool_filter), "mtu": ("mtu", _int_filter),
                "port_security_enabled": ("port_security_enabled", _bool_filter),
                "provider:network_type": ("network_type", _str),
                "provider:physical_network": ("physical_network", _str),
                "provider:segmentation_id": ("segmentation_id", _int_filter)},
    "subnet": {**COMMON_FILTERS, "network_id": ("network_id", _str),
               "ip_version": ("ip_version", _int_filter), "cidr": ("cidr", _str),
               "gateway_ip": ("gateway_ip", _str), "enable_dhcp": ("enable_dhcp", _bool_filter),
               "ipv6_ra_mode": ("ipv6_ra_mode", _str),
               "ipv6_address_mode": ("ipv6_address_mode", _str),
               "subnetpool_id": ("subnetpool_id", _str)},
    "port": {**COMMON_FILTERS, "network_id": ("network_id", _str),
             "mac_address": ("mac_address", _str), "admin_state_up":
             ("admin_state_up", _bool_filter), "status": ("status", _str),
             "device_id": ("device_id", _str), "device_owner": ("device_owner", _str),
             "binding:host_id": ("host_id", _str), "binding:vnic_type": ("vnic_type", _str),
             "port_security_enabled": ("port_security_enabled", _bool_filter)},
}
SORT_KEYS = {
    "network": {"id": "id", "name": "name", "status": "status", "tenant_id": "project_id",
                "project_id": "project_id", "admin_state_up": "admin_state_up",
                "shared": "shared", "mtu": "mtu", "created_at": "created_at",
                "updated_at": "updated_at", "router:external": "external",
                "availability_zone_hints": "id"},
    "subnet": {"id": "id", "name": "name", "network_id": "network_id", "cidr": "cidr",
               "ip_version": "ip_version", "tenant_id": "project_id",
               "project_id": "project_id", "created_at": "created_at",
               "updated_at": "updated_at", "gateway_ip": "gateway_ip"},
    "port": {"id": "id", "name": "name", "network_id": "network_id",
             "mac_address": "mac_address", "status": "status", "device_id": "device_id",
             "device_owner": "device_owner", "tenant_id": "project_id",
             "project_id": "project_id", "created_at": "created_at",
             "updated_at": "updated_at", "admin_state_up": "admin_state_up"},
}


class NetworkManager(SecurityGroupMixin, L3Mixin, QuotaMixin, SubnetPoolMixin):
    """Networks, subnets and ports here; routers/floating IPs, security
    groups, quotas and subnet pools in the mixins."""

    def __init__(self, conf, db, driver, policy):
        self.conf = conf
        self.db = db
        self.driver = driver
        self.policy = policy
        self.base_mac = [int(x, 16) for x in conf.base_mac.split(":")]
        self._default_sg_cache: dict[str, str] = {}
        self._auto_lock = threading.Lock()
        self._group = GroupCommit(db, retries=db.max_retries,
                                  on_conflict=self._default_sg_cache.clear) \
            if db.dialect == "sqlite" else None

    # -- plumbing ----------------------------------------------------------

    def run(self, fn, *args, **kwargs):
        """Run ``fn(session, ...)`` in a write transaction; retried whole on a
        deadlock or a unique-key race (the retry sees the winner and answers
        409 or picks another value)."""
        if self._group is not None:
            return self._group.run(fn, *args, **kwargs)
        retries = self.db.max_retries
        for attempt in range(retries + 1):
            try:
                with self.db.session() as s:
                    return fn(s, *args, **kwargs)
            except exc.IntegrityError as error:
                self._default_sg_cache.clear()
                if attempt >= retries:
                    LOG.warning("giving up after %d integrity conflicts: %s", attempt, error)
                    raise errors.Conflict("The request conflicted with a concurrent change; "
                                          "retry it.", kind="Conflict") from None
            except exc.DBAPIError as error:
                if attempt >= retries or not is_retryable(error):
                    raise
            time.sleep(random.uniform(0, 0.002 * (2 ** min(attempt, 6))))

    def notify(self, hook: str, *args) -> None:
        try:
            getattr(self.driver, hook)(*args)
        except Exception:  # noqa: BLE001 - the data plane converges on resync
            LOG.exception("network driver %s.%s failed", self.driver.name, hook)

    def enforce(self, ctx: RequestContext, action: str, target: dict | None = None) -> None:
        target = dict(target or {})
        target.setdefault("project_id", ctx.project_id)
        target.setdefault("tenant_id", target["project_id"])
        if not self.policy.check(ctx, action, target):
            raise nerr.policy_denied(action)

    def owner_for(self, ctx: RequestContext, data: dict) -> str:
        """The project a new resource belongs to: the caller's unless admin says otherwise."""
        project = data.pop("project_id", None)
        tenant = data.pop("tenant_id", None)
        if project and tenant and project != tenant:
            raise errors.BadRequest("'project_id' and 'tenant_id' do not match",
                                    kind="HTTPBadRequest")
        wanted = project or tenant
        if wanted and wanted != ctx.project_id and not ctx.is_admin:
            raise errors.BadRequest("Specifying 'project_id' or 'tenant_id' other than the "
                                    "authenticated project in request requires admin "
                                    "privileges", kind="HTTPBadRequest")
        owner = wanted or ctx.project_id
        if not owner:
            raise errors.BadRequest("Running without keystone AuthN requires that tenant_id "
                                    "is specified", kind="HTTPBadRequest")
        return owner

    ADMIN_ONLY_FIELDS = {
        "network": ("provider:network_type", "provider:physical_network",
                    "provider:segmentation_id"),
        "port": ("binding:host_id", "binding:profile", "binding:vif_type",
                 "binding:vif_details"),
    }

    def scrub(self, ctx: RequestContext, kind: str, item: dict) -> dict:
        """Drop the attributes only an admin may read (as Neutron's policy does)."""
        if ctx.is_admin or kind not in self.ADMIN_ONLY_FIELDS:
            return item
        for name in self.ADMIN_ONLY_FIELDS[kind]:
            item.pop(name, None)
        return item

    @staticmethod
    def now():
        return utcnow().replace(microsecond=0)

    def visible_clause(self, ctx: RequestContext, kind: str, table):
        """What a non-admin may see; the caller's project is the bind parameter
        ``ctx_project`` (so the statements can be built once and reused)."""
        if ctx.is_admin:
            return None
        mine = table.c.project_id == sa.bindparam("ctx_project")
        if kind == "network":
            return sa.or_(mine, table.c.shared.is_(True), table.c.external.is_(True))
        if kind == "subnet":
            shared = sa.select(N.c.id).where(N.c.shared.is_(True))
            return sa.or_(mine, table.c.network_id.in_(shared))
        if kind == "port":
            owned = sa.select(N.c.id).where(N.c.project_id == sa.bindparam("ctx_project"))
            return sa.or_(mine, table.c.network_id.in_(owned))
        if kind == "subnetpool":
            return sa.or_(mine, table.c.shared.is_(True))
        return mine

    _fetch_statements: dict = {}

    def fetch(self, s, ctx: RequestContext, kind: str, table, id: str, *, lock=False):
        """A row the caller may see, or 404."""
        key = (kind, table.name, ctx.is_admin, lock)
        stmt = self._fetch_statements.get(key)
        if stmt is None:
            stmt = sa.select(table).where(table.c.id == sa.bindparam("row_id"))
            clause = self.visible_clause(ctx, kind, table)
            if clause is not None:
                stmt = stmt.where(clause)
            if lock:
                stmt = stmt.with_for_update()
            self._fetch_statements[key] = stmt
        params = {"row_id": id}
        if not ctx.is_admin:
            params["ctx_project"] = ctx.project_id
        result = s.execute(stmt, params)
        row = result.first()
        if row is None:
            raise nerr.not_found(kind, id)
        return dict(zip(result.keys(), row, strict=True))

    def query(self, ctx: RequestContext, kind: str, table, filters: dict | None, *,
              sorts=None, limit=None, marker=None, page_reverse=False, extra=None,
              renderer=None):
        """Rows of ``table`` the caller may see, filtered, sorted and paged.

        ``filters`` maps API attribute names to a value or a list of values
        (any of them matches). Returns (rows, more) where ``more`` says a
        further page exists."""
        stmt = sa.select(*raw_columns(table))
        clause = self.visible_clause(ctx, kind, table)
        if clause is not None:
            stmt = stmt.where(clause)
        known = FILTERS.get(kind) or self.filters_of(kind)
        for key, value in (filters or {}).items():
            values = value if isinstance(value, (list, tuple, set)) else [value]
            if key in ("tags", "tags-any", "not-tags", "not-tags-any"):
                stmt = stmt.where(self.tag_clause(table, key, values))
                continue
            if key in known:
                column, conv = known[key]
                col = table.c[column]
                converted = [None if v is None or v == "" and column in (
                    "physical_network", "segmentation_id", "gateway_ip", "ipv6_ra_mode",
                    "ipv6_address_mode", "subnetpool_id", "router_id", "port_id",
                    "fixed_ip_address") else conv(v) for v in values]
                non_null = [v for v in converted if v is not None]
                parts = []
                if non_null:
                    parts.append(col.in_(non_null) if len(non_null) > 1 else col == non_null[0])
                if len(non_null) < len(converted):
                    parts.append(col.is_(None))
                stmt = stmt.where(sa.or_(*parts))
            elif extra is not None:
                more = extra(key, values)
                if more is not None:
                    stmt = stmt.where(more)
        sorts = sorts or []
        marker_row = None
        if marker:
            marker_row = sa_row(self, table, marker)
            if marker_row is None:
                raise errors.BadRequest(f"marker {marker} not found", kind="HTTPBadRequest")
        if page_reverse:
            sorts = [(c, "desc" if d == "asc" else "asc") for c, d in (sorts or [("id", "asc")])]
        stmt = pagination.apply(stmt, table.c, sorts, limit=None if limit is None else limit + 1,
                                marker=marker_row)
        with self.db.reader() as s:
            keys, raw = raw_rows(s, stmt, {} if ctx.is_admin else
                                 {"ctx_project": ctx.project_id})
            if kind == "port" and renderer is not None:  # the big lists: one pass
                more = limit is not None and len(raw) > limit
                if more:
                    raw = raw[:limit]
                if page_reverse:
                    raw.reverse()
                return render.port_rows(keys, raw), more
            json_at = [i for i, k in enumerate(keys) if isinstance(table.c[k].type,
                                                                   models.JSONType)]
            bool_at = [i for i, k in enumerate(keys) if isinstance(table.c[k].type, sa.Boolean)]
            rows = []
            for r in raw:
                r = list(r)
                for i in json_at:  # decoded here: cheaper than the types' processors
                    r[i] = models.json_value(r[i])
                for i in bool_at:
                    if r[i] is not None:
                        r[i] = bool(r[i])
                rows.append(dict(zip(keys, r, strict=True)))
            more = limit is not None and len(rows) > limit
            if more:
                rows = rows[:limit]
            if page_reverse:
                rows.reverse()
            if renderer is not None:
                return renderer(s, rows), more
        return rows, more

    def tag_clause(self, table, key: str, values: list[str]):
        tags = [t for v in values for t in str(v).split(",") if t]
        T = models.tag
        if key in ("tags", "not-tags"):
            clauses = [table.c.id.in_(sa.select(T.c.resource_id).where(T.c.tag == t))
                       for t in tags]
            clause = sa.and_(*clauses)
        else:
            clause = table.c.id.in_(sa.select(T.c.resource_id).where(T.c.tag.in_(tags)))
        return sa.not_(clause) if key.startswith("not-") else clause

    def set_tags_rows(self, s, resource_id: str, tags: list[str]) -> None:
        T = models.tag
        s.execute(T.delete().where(T.c.resource_id == resource_id))
        unique = list(dict.fromkeys(tags))
        if unique:
            s.execute(T.insert(), [{"resource_id": resource_id, "tag": t} for t in unique])

    # -- tags (PUT/DELETE /{collection}/{id}/tags) ------------------------

    TAGGABLE = {"networks": ("network", N), "subnets": ("subnet", S), "ports": ("port", P),
                "routers": ("router", models.router),
                "floatingips": ("floatingip", models.floatingip),
                "security-groups": ("security_group", models.security_group),
                "subnetpools": ("subnetpool", models.subnetpool)}

    def get_tags(self, ctx, collection: str, id: str) -> list[str]:
        kind, table = self.TAGGABLE[collection]
        with self.db.reader() as s:
            return list(self.fetch(s, ctx, kind, table, id)["tags"])

    def update_tags(self, ctx, collection: str, id: str, *, replace: list[str] | None = None,
                    add: str | None = None, remove: str | None = None) -> list[str]:
        kind, table = self.TAGGABLE[collection]
        for tag in (replace or []) + [t for t in (add, remove) if t is not None]:
            if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag:
                raise errors.BadRequest(f"Invalid input for operation: '{tag}' is not a "
                                        "valid tag.", kind="InvalidInput")

        def txn(s):
            row = self.fetch(s, ctx, kind, table, id, lock=True)
            if not ctx.is_admin and row.get("project_id") != ctx.project_id:
                raise nerr.policy_denied(f"update_{kind}")
            tags = list(row["tags"])
            if replace is not None:
                tags = list(dict.fromkeys(replace))
            if add is not None and add not in tags:
                tags.append(add)
            if remove is not None:
                if remove not in tags:
                    raise errors.NotFound(f"Tag {remove} could not be found for {kind} {id}.",
                                          kind="TagNotFound")
                tags.remove(remove)
            s.execute(table.update().where(table.c.id == id).values(
                tags=tags, revision_number=row["revision_number"] + 1, updated_at=self.now()))
            self.set_tags_rows(s, id, tags)
            return tags

        return self.run(txn)

    def check_tag(self, ctx, collection: str, id: str, tag: str) -> None:
        if tag not in self.get_tags(ctx, collection, id):
            raise errors.NotFound(f"Tag {tag} could not be found for "
                                  f"{self.TAGGABLE[collection][0]} {id}.", kind="TagNotFound")

    # -- networks ----------------------------------------------------------

    def _check_admin_attrs(self, ctx, action: str, data: dict, names, target) -> None:
        for name in names:
            if name in data:
                self.enforce(ctx, f"{action}:{name}", target)

    def create_network(self, ctx: RequestContext, body: dict) -> dict:
        data = A.convert("network", NETWORK_ATTRS, {"network": body})
        project = self.owner_for(ctx, data)
        target = {"project_id": project}
        self.enforce(ctx, "create_network", target)
        provider = ("provider:network_type", "provider:physical_network",
                    "provider:segmentation_id")
        if data.get("shared"):
            self.enforce(ctx, "create_network:shared", target)
        if data.get("router:external"):
            self.enforce(ctx, "create_network:router:external", target)
        if data.get("is_default"):
            self.enforce(ctx, "create_network:is_default", target)
        self._check_admin_attrs(ctx, "create_network", data, provider, target)
        if data.get("vlan_transparent") or data.get("qinq"):
            raise errors.BadRequest("Backend does not support VLAN Transparency.",
                                    kind="VlanTransparencyDriverError")
        net_id = new_id()
        tags = data.get("tags") or []

        def txn(s):
            self.check_quota(s, project, "network")
            if data.get("is_default") and data.get("router:external"):
                s.execute(N.update().where(N.c.is_default.is_(True)).values(is_default=False))
            ntype, physnet, seg = self.allocate_segment(
                s, net_id, data.get("provider:network_type"),
                data.get("provider:physical_network"), data.get("provider:segmentation_id"))
            max_mtu = self.max_mtu(ntype)
            mtu = data.get("mtu")
            if mtu is not None and mtu > max_mtu:
                raise nerr.invalid_input(f"Requested MTU is too big, maximum is {max_mtu}")
            now = self.now()
            row = {"id": net_id, "project_id": project, "name": data["name"],
                   "description": data["description"], "admin_state_up": data["admin_state_up"],
                   "status": "ACTIVE", "shared": data["shared"],
                   "external": data["router:external"],
                   "is_default": bool(data["is_default"] and data["router:external"]),
                   "mtu": mtu or max_mtu, "port_security_enabled":
                   data["port_security_enabled"], "network_type": ntype,
                   "physical_network": physnet, "segmentation_id": seg,
                   "availability_zone_hints": data["availability_zone_hints"],
                   "tags": tags, "created_at": now, "updated_at": now, "revision_number": 1}
            s.execute(N.insert().values(**row))
            # the segment row references the network: insert it afterwards
            if ntype != "local":
                s.execute(SEG.insert().values(network_type=ntype, physical_network=physnet or "",
                                              segmentation_id=seg or 0, network_id=net_id))
            self.set_tags_rows(s, net_id, tags)
            return row

        row = self.run(txn)
        network = render.network(row, [])
        self.notify("network_created", network)
        return self.scrub(ctx, "network", dict(network))

    def max_mtu(self, ntype: str) -> int:
        mtu = self.conf.global_physnet_mtu
        if self.conf.ml2.path_mtu:
            mtu = min(mtu, self.conf.ml2.path_mtu) if ntype in ("vxlan", "gre", "geneve") \
                else mtu
        return mtu - 50 if ntype == "vxlan" else (mtu - 42 if ntype == "gre" else mtu)

    # segments

    def vlan_ranges(self) -> dict[str, list[tuple[int, int]]]:
        ranges: dict[str, list[tuple[int, int]]] = {}
        for entry in self.conf.ml2_type_vlan.network_vlan_ranges:
            parts = entry.strip().split(":")
            if not parts[0]:
                continue
            ranges.setdefault(parts[0], [])
            if len(parts) == 3:
                ranges[parts[0]].append((int(parts[1]), int(parts[2])))
        return ranges

    def vni_ranges(self) -> list[tuple[int, int]]:
        out = []
        for entry in self.conf.ml2_type_vxlan.vni_ranges:
            if entry.strip():
                lo, _, hi = entry.strip().partition(":")
                out.append((int(lo), int(hi or lo)))
        return out

    def allocate_segment(self, s, net_id: str, ntype: str | None, physnet: str | None,
                         seg: int | None) -> tuple[str, str | None, int | None]:
        """Pick (network_type, physical_network, segmentation_id) for a new network.

        The segment row is unique, so a concurrent request that picked the
        same id fails its insert and is retried (``run``) with a fresh view."""
        if ntype is None:
            if physnet is not None or seg is not None:
                raise nerr.invalid_input("provider:network_type required")
            for candidate in self.conf.ml2.tenant_network_types:
                if candidate == "local":
                    return "local", None, None
                if candidate in ("vxlan", "vlan"):
                    found = self._free_segment(s, candidate)
                    if found is not None:
                        return candidate, found[0], found[1]
            raise errors.ServiceUnavailable("Unable to create the network. No tenant network "
                                            "is available for allocation.",
                                            kind="NoNetworkAvailable")
        if ntype not in self.conf.ml2.type_drivers:
            raise nerr.invalid_input(f"network_type value '{ntype}' not supported")
        if ntype == "local":
            if physnet or seg:
                raise nerr.invalid_input("local networks take no physical_network "
                                         "or segmentation_id")
            return "local", None, None
        if ntype == "flat":
            if seg:
                raise nerr.invalid_input("segmentation_id prohibited for flat provider network")
            if not physnet:
                raise nerr.invalid_input("physical_network required for flat provider network")
            allowed = self.conf.ml2_type_flat.flat_networks
            if "*" not in allowed and physnet not in allowed:
                raise nerr.invalid_input(f"physical_network '{physnet}' unknown for flat "
                                         "provider network")
            if self._segment_taken(s, "flat", physnet, 0):
                raise nerr.conflict("FlatNetworkInUse", "Unable to create the flat network. "
                                    f"Physical network {physnet} is in use.")
            return "flat", physnet, None
        if ntype == "vlan":
            ranges = self.vlan_ranges()
            if not physnet:
                found = self._free_segment(s, "vlan")
                if found is None:
                    raise errors.ServiceUnavailable(
                        "Unable to create the network. No tenant network is available for "
                        "allocation.", kind="NoNetworkAvailable")
                if seg is not None:
                    raise nerr.invalid_input("physical_network required for VLAN provider "
                                             "network")
                return "vlan", found[0], found[1]
            if physnet not in ranges:
                raise nerr.invalid_input(f"physical_network '{physnet}' unknown for VLAN "
                                         "provider network")
            if seg is None:
                found = self._free_segment(s, "vlan", physnet)
                if found is None:
                    raise errors.ServiceUnavailable(
                        "Unable to create the network. No tenant network is available for "
                        "allocation.", kind="NoNetworkAvailable")
                return "vlan", physnet, found[1]
            if not 1 <= seg <= 4094:
                raise nerr.invalid_input("segmentation_id out of range (1 through 4094)")
            if self._segment_taken(s, "vlan", physnet, seg):
                raise nerr.conflict("VlanIdInUse", f"Unable to create the network. The VLAN "
                                    f"{seg} on physical network {physnet} is in use.")
            return "vlan", physnet, seg
        # vxlan (and the other tunnel types)
        if physnet:
            raise nerr.invalid_input(f"provider:physical_network specified for {ntype} network")
        if seg is None:
            found = self._free_segment(s, ntype)
            if found is None:
                raise errors.ServiceUnavailable("Unable to create the network. No tenant "
                                                "network is available for allocation.",
                                                kind="NoNetworkAvailable")
            return ntype, None, found[1]
        if not 1 <= seg <= 2**24 - 1:
            raise nerr.invalid_input(f"segmentation_id out of range (1 through {2**24 - 1})")
        if self._segment_taken(s, ntype, "", seg):
            raise nerr.conflict("TunnelIdInUse", f"Unable to create the network. The tunnel ID "
                                f"{seg} is in use.")
        return ntype, None, seg

    def _segment_taken(self, s, ntype, physnet, seg) -> bool:
        return s.execute(sa.select(SEG.c.network_id).where(
            SEG.c.network_type == ntype, SEG.c.physical_network == (physnet or ""),
            SEG.c.segmentation_id == seg)).first() is not None

    def _free_segment(self, s, ntype: str, only_physnet: str | None = None):
        """A free (physnet, id) from the configured ranges, chosen at random among
        the lowest free ones (fewer collisions between concurrent requests)."""
        if ntype == "vlan":
            pools = [(p, r) for p, rs in self.vlan_ranges().items() for r in rs
                     if only_physnet in (None, p)]
        else:
            pools = [(None, r) for r in self.vni_ranges()]
        for physnet, (lo, hi) in pools:
            taken = set(s.execute(sa.select(SEG.c.segmentation_id).where(
                SEG.c.network_type == ntype, SEG.c.physical_network == (physnet or ""),
                SEG.c.segmentation_id.between(lo, hi))).scalars())
            free = []
            for candidate in range(lo, hi + 1):
                if candidate not in taken:
                    free.append(candidate)
                    if len(free) >= 16:
                        break
            if free:
                return physnet, random.choice(free)
        return None

    def get_network(self, ctx: RequestContext, id: str, fields=None) -> dict:
        with self.db.reader() as s:
            row = self.fetch(s, ctx, "network", N, id)
            return self.scrub(ctx, "network", self.render_networks(s, [row])[0])

    def find_network(self, ctx: RequestContext, name_or_id: str) -> dict:
        try:
            return self.get_network(ctx, name_or_id)
        except errors.NotFound:
            pass
        found = self.list_networks(ctx, {"name": name_or_id})
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise errors.Conflict(f"Multiple networks match name {name_or_id}; use an ID.",
                                  kind="NeutronClientNoUniqueMatch")
        raise nerr.not_found("network", name_or_id)

    def render_networks(self, s, rows: list[dict]) -> list[dict]:
        ids = [r["id"] for r in rows]
        subnets: dict[str, list[str]] = {i: [] for i in ids}
        if ids:
            for i in range(0, len(ids), 500):
                for sid, nid in s.execute(sa.select(S.c.id, S.c.network_id).where(
                        S.c.network_id.in_(ids[i:i + 500])).order_by(S.c.created_at, S.c.id)):
                    subnets[nid].append(sid)
        return [render.network(r, subnets[r["id"]]) for r in rows]

    def list_networks(self, ctx: RequestContext, filters: dict | None = None, **page) -> list:
        return self.list_page(ctx, "network", filters, **page)[0]

    def list_page(self, ctx, kind: str, filters=None, *, sorts=None, limit=None, marker=None,
                  page_reverse=False):
        """The API's list: (items, more)."""
        table, renderer, extra = self.listing(kind, ctx)
        items, more = self.query(ctx, kind, table, filters, sorts=sorts, limit=limit,
                                 marker=marker, page_reverse=page_reverse, extra=extra,
                                 renderer=renderer)
        if not ctx.is_admin and kind in self.ADMIN_ONLY_FIELDS:
            items = [self.scrub(ctx, kind, i) for i in items]
        return items, more

    def listing(self, kind: str, ctx):
        if kind == "network":
            return N, self.render_networks, None
        if kind == "subnet":
            return S, self.render_subnets, None
        if kind == "port":
            return P, lambda s, rows: [render.port(r) for r in rows], self.port_filter
        return self.listing_more(kind, ctx)

    def update_network(self, ctx: RequestContext, id: str, body: dict) -> dict:
        data = A.convert("network", NETWORK_ATTRS, {"network": body}, update=True)

        def txn(s):
            row = self.fetch(s, ctx, "network", N, id, lock=True)
            target = {"project_id": row["project_id"]}
            self.enforce(ctx, "update_network", target)
            if row["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("update_network")
            for name in ("shared", "router:external", "is_default"):
                if name in data:
                    self.enforce(ctx, f"update_network:{name}", target)
            changes = {}
            for key, column in (("name", "name"), ("description", "description"),
                                ("admin_state_up", "admin_state_up"), ("shared", "shared"),
                                ("router:external", "external"), ("is_default", "is_default"),
                                ("port_security_enabled", "port_security_enabled"),
                                ("mtu", "mtu")):
                if key in data and data[key] != row[column]:
                    changes[column] = data[key]
            if "mtu" in changes and changes["mtu"] > self.max_mtu(row["network_type"]):
                raise nerr.invalid_input("Requested MTU is too big, maximum is "
                                         f"{self.max_mtu(row['network_type'])}")
            if changes.get("shared") is False:
                others = s.execute(sa.select(P.c.id).where(
                    P.c.network_id == id, P.c.project_id != row["project_id"],
                    P.c.device_owner.notin_(ROUTER_OWNERS + ("network:dhcp",))).limit(1)).first()
                if others:
                    raise nerr.conflict("InvalidSharedSetting", f"Unable to reconfigure sharing "
                                        f"settings for network {id}. Multiple tenants are "
                                        "using it.")
            if changes.get("is_default"):
                s.execute(N.update().where(N.c.is_default.is_(True)).values(is_default=False))
            if changes:
                changes.update(revision_number=row["revision_number"] + 1,
                               updated_at=self.now())
                s.execute(N.update().where(N.c.id == id).values(**changes))
                row.update(changes)
            return self.render_networks(s, [row])[0]

        network = self.run(txn)
        self.notify("network_updated", network)
        return self.scrub(ctx, "network", dict(network))

    def delete_network(self, ctx: RequestContext, id: str) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "network", N, id, lock=True)
            if row["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("delete_network")
            busy = s.execute(sa.select(P.c.id).where(
                P.c.network_id == id,
                P.c.device_owner.notin_(SERVICE_OWNERS_DELETED_WITH_NETWORK)).limit(1)).first()
            if busy:
                raise nerr.conflict("NetworkInUse", f"Unable to complete operation on network "
                                    f"{id}. There are one or more ports still in use on the "
                                    "network.")
            if row["external"] and s.execute(sa.select(models.router.c.id).where(
                    models.router.c.gw_network_id == id).limit(1)).first():
                raise nerr.conflict("NetworkInUse", f"Unable to complete operation on network "
                                    f"{id}. There are one or more ports still in use on the "
                                    "network.")
            service_ports = [r[0] for r in s.execute(sa.select(P.c.id).where(
                P.c.network_id == id))]
            if service_ports:
                s.execute(IPA.delete().where(IPA.c.port_id.in_(service_ports)))
                s.execute(models.port_security_group.delete().where(
                    models.port_security_group.c.port_id.in_(service_ports)))
                s.execute(P.delete().where(P.c.id.in_(service_ports)))
            subnet_ids = [r[0] for r in s.execute(sa.select(S.c.id).where(S.c.network_id == id))]
            if subnet_ids:
                s.execute(models.ip_range.delete().where(
                    models.ip_range.c.subnet_id.in_(subnet_ids)))
                s.execute(models.tag.delete().where(models.tag.c.resource_id.in_(subnet_ids)))
                s.execute(S.delete().where(S.c.id.in_(subnet_ids)))
            s.execute(SEG.delete().where(SEG.c.network_id == id))
            s.execute(models.tag.delete().where(models.tag.c.resource_id == id))
            s.execute(models.auto_allocated_topology.delete().where(
                models.auto_allocated_topology.c.network_id == id))
            s.execute(N.delete().where(N.c.id == id))
            return render.network(row, subnet_ids)

        network = self.run(txn)
        self.notify("network_deleted", network)

    # -- subnets -----------------------------------------------------------

    def render_subnets(self, s, rows: list[dict]) -> list[dict]:
        net_ids = list({r["network_id"] for r in rows})
        external = set()
        if net_ids:
            external = set(s.execute(sa.select(N.c.id).where(
                N.c.id.in_(net_ids), N.c.external.is_(True))).scalars())
        return [render.subnet(r, r["network_id"] in external) for r in rows]

    def get_subnet(self, ctx: RequestContext, id: str) -> dict:
        with self.db.reader() as s:
            return self.render_subnets(s, [self.fetch(s, ctx, "subnet", S, id)])[0]

    def list_subnets(self, ctx: RequestContext, filters: dict | None = None, **page) -> list:
        return self.list_page(ctx, "subnet", filters, **page)[0]

    def find_subnet(self, ctx, name_or_id: str) -> dict:
        try:
            return self.get_subnet(ctx, name_or_id)
        except errors.NotFound:
            found = self.list_subnets(ctx, {"name": name_or_id})
            if len(found) == 1:
                return found[0]
            raise

    def _validate_subnet(self, data: dict, net, *, existing: dict | None = None) -> dict:
        """Check gateway, pools, DNS and routes of a subnet; returns columns."""
        version = net.version
        out = {}
        gateway = data.get("gateway_ip", A.MISSING)
        if gateway is A.MISSING:
            gateway = existing["gateway_ip"] if existing else (
                str(net.network_address + 1) if net.num_addresses > 2 or version == 6
                else None)
        if gateway is not None:
            gw = ipaddress.ip_address(gateway)
            if gw.version != version or gw not in net:
                raise nerr.invalid_input("Gateway is not valid on subnet")
            if gw == net.network_address and version == 4 and net.prefixlen < 31:
                raise nerr.invalid_input("Gateway is not valid on subnet")
            if version == 4 and net.prefixlen < 31 and gw == net.broadcast_address:
                raise nerr.invalid_input("Gateway is not valid on subnet")
        out["gateway_ip"] = gateway
        pools = data.get("allocation_pools")
        if pools is None:
            if existing and "gateway_ip" not in data:
                pools = existing["allocation_pools"]
            elif existing:
                pools = existing["allocation_pools"]
            else:
                pools = [{"start": str(ipaddress.ip_address(a)),
                          "end": str(ipaddress.ip_address(b))}
                         for a, b in ipam.default_pools(net, gateway)]
        else:
            checked = []
            for pool in pools:
                if set(pool) - {"start", "end"} or "start" not in pool or "end" not in pool:
                    raise errors.BadRequest("Invalid input for allocation_pools. Reason: "
                                            f"Invalid data format for IP pool: '{pool}'.",
                                            kind="HTTPBadRequest")
                try:
                    start = ipaddress.ip_address(pool["start"])
                    end = ipaddress.ip_address(pool["end"])
                except (ValueError, TypeError):
                    raise errors.BadRequest("Invalid input for allocation_pools. Reason: "
                                            f"Invalid data format for IP pool: '{pool}'.",
                                            kind="HTTPBadRequest") from None
                if start.version != version or end.version != version or start > end:
                    raise nerr.bad_request("InvalidAllocationPool",
                                           f"The allocation pool {start}-{end} spans beyond "
                                           f"the subnet cidr {net}.")
                if start not in net or end not in net or (
                        version == 4 and net.prefixlen < 31 and (
                            start == net.network_address or end == net.broadcast_address)) or (
                        version == 6 and start == net.network_address):
                    raise nerr.bad_request("OutOfBoundsAllocationPool",
                                           f"The allocation pool {start}-{end} spans beyond "
                                           f"the subnet cidr {net}.")
                checked.append((int(start), int(end)))
            checked.sort()
            for (a1, b1), (a2, b2) in zip(checked, checked[1:], strict=False):
                if a2 <= b1:
                    raise nerr.bad_request("OverlappingAllocationPools",
                                           "Found overlapping allocation pools: "
                                           f"{ipaddress.ip_address(a1)}-{ipaddress.ip_address(b1)} "
                                           f"and {ipaddress.ip_address(a2)}-"
                                           f"{ipaddress.ip_address(b2)} for subnet {net}.")
            pools = [{"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))}
                     for a, b in checked]
        if gateway is not None and ipam.in_pools(pools, int(ipaddress.ip_address(gateway))):
            pool = next(p for p in pools if ipam.in_pools([p], int(ipaddress.ip_address(
                gateway))))
            raise nerr.conflict("GatewayConflictWithAllocationPools",
                                f"Gateway ip {gateway} conflicts with allocation pool "
                                f"{pool['start']}-{pool['end']}")
        out["allocation_pools"] = pools
        if "dns_nameservers" in data:
            out["dns_nameservers"] = data["dns_nameservers"]
        if "host_routes" in data:
            routes = []
            for route in data["host_routes"]:
                if set(route) != {"destination", "nexthop"}:
                    raise errors.BadRequest("Invalid input for host_routes. Reason: Invalid "
                                            f"data format for hostroute: '{route}'.",
                                            kind="HTTPBadRequest")
                try:
                    dest = A.cidr(route["destination"])
                    hop = A.ip_address(route["nexthop"])
                except A.Invalid as e:
                    raise A.bad_input("host_routes", str(e)) from None
                if ipaddress.ip_network(dest).version != version or \
                        ipaddress.ip_address(hop).version != version:
                    raise nerr.invalid_input(f"Host route {route} does not match the subnet's "
                                             "IP version")
                routes.append({"destination": dest, "nexthop": hop})
            out["host_routes"] = routes
        return out

    def create_subnet(self, ctx: RequestContext, body: dict) -> dict:
        data = A.convert("subnet", SUBNET_ATTRS, {"subnet": body})
        project = self.owner_for(ctx, data)
        version = int(data["ip_version"])
        subnet_id = new_id()
        if data.get("ipv6_ra_mode") or data.get("ipv6_address_mode"):
            if version != 6:
                raise nerr.invalid_input("ipv6_ra_mode or ipv6_address_mode cannot be set when "
                                         "enable_dhcp is set to False / ip_version is 4")
            ra, am = data.get("ipv6_ra_mode"), data.get("ipv6_address_mode")
            if ra and am and ra != am:
                raise nerr.invalid_input(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode "
                                         f"set to '{am}' is not valid. If both attributes "
                                         "are set, they must be the same value")
        cidr_text = data.get("cidr")
        pool_id = data.get("subnetpool_id")
        if cidr_text is None and pool_id is None and not data.get("use_default_subnetpool"):
            raise errors.BadRequest("Bad subnets request: a subnetpool must be specified in "
                                    "the absence of a cidr.", kind="BadRequest")
        if cidr_text is not None:
            try:
                cidr_text = A.cidr(cidr_text, strict=False)
            except A.Invalid:
                raise nerr.invalid_input(f"{data.get('cidr')} is not in a CIDR format.") \
                    from None
            parsed = ipaddress.ip_interface(str(data["cidr"]).strip())
            if parsed.ip != parsed.network.network_address:
                raise errors.BadRequest(
                    f"Invalid input for cidr. Reason: '{data['cidr']}' isn't a recognized IP "
                    f"subnet cidr, '{parsed.network}' is recommended.", kind="HTTPBadRequest")
            if ipaddress.ip_network(cidr_text).version != version:
                raise nerr.invalid_input(f"Cidr {cidr_text} does not match the IP version "
                                         f"{version}")
            if ipaddress.ip_network(cidr_text).prefixlen == 0 and version == 4 or \
                    ipaddress.ip_network(cidr_text).prefixlen > (32 if version == 4 else 128):
                raise nerr.invalid_input(f"{cidr_text} is not in a CIDR format.")

        def txn(s):
            net_row = self.fetch(s, ctx, "network", N, data["network_id"], lock=True)
            if net_row["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("create_subnet")
            if net_row["project_id"] != project and not ctx.is_admin:
                raise nerr.policy_denied("create_subnet")
            self.check_quota(s, project, "subnet")
            cidr_value, pool = cidr_text, None
            if cidr_value is None or pool_id or data.get("use_default_subnetpool"):
                cidr_value, pool = self.allocate_prefix(s, ctx, data, version, cidr_value)
            net = ipaddress.ip_network(cidr_value)
            cols = self._validate_subnet(data, net)
            for other in s.execute(sa.select(S.c.id, S.c.cidr).where(
                    S.c.network_id == net_row["id"])):
                if ipaddress.ip_network(other.cidr).overlaps(net):
                    raise nerr.invalid_input(f"Requested subnet with cidr: {cidr_value} for "
                                             f"network: {net_row['id']} overlaps with another "
                                             "subnet")
            now = self.now()
            row = {"id": subnet_id, "network_id": net_row["id"], "project_id": project,
                   "name": data["name"], "description": data["description"],
                   "ip_version": version, "cidr": cidr_value,
                   "gateway_ip": cols["gateway_ip"], "enable_dhcp": data["enable_dhcp"],
                   "ipv6_ra_mode": data.get("ipv6_ra_mode"),
                   "ipv6_address_mode": data.get("ipv6_address_mode"),
                   "allocation_pools": cols["allocation_pools"],
                   "dns_nameservers": cols.get("dns_nameservers", []),
                   "host_routes": cols.get("host_routes", []),
                   "service_types": data["service_types"],
                   "subnetpool_id": pool["id"] if pool else None,
                   "tags": data.get("tags") or [], "created_at": now, "updated_at": now,
                   "revision_number": 0}
            s.execute(S.insert().values(**row))
            if not ipam.is_auto_address(row):
                ipam.rebuild_ranges(s, row)
            self.set_tags_rows(s, subnet_id, row["tags"])
            return row, net_row

        row, net_row = self.run(txn)
        subnet = render.subnet(row, net_row["external"])
        self.notify("subnet_created", subnet, render.network(net_row, []))
        return subnet

    def update_subnet(self, ctx: RequestContext, id: str, body: dict) -> dict:
        data = A.convert("subnet", SUBNET_ATTRS, {"subnet": body}, update=True)
        for key in ("dns_nameservers", "host_routes", "allocation_pools", "service_types"):
            if key in data and data[key] is None:
                data[key] = []

        def txn(s):
            row = self.fetch(s, ctx, "subnet", S, id, lock=True)
            if row["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("update_subnet")
            net = ipaddress.ip_network(row["cidr"])
            changes = {k: data[k] for k in ("name", "description", "enable_dhcp",
                                             "service_types") if k in data}
            if {"gateway_ip", "allocation_pools", "dns_nameservers", "host_routes"} & set(data):
                cols = self._validate_subnet(data, net, existing=row)
                if "gateway_ip" in data and data["gateway_ip"] is not None and \
                        data["gateway_ip"] != row["gateway_ip"]:
                    used = s.execute(sa.select(IPA.c.port_id).where(
                        IPA.c.subnet_id == id, IPA.c.ip_address == data["gateway_ip"])).first()
                    if used:
                        port = s.execute(sa.select(P.c.device_owner).where(
                            P.c.id == used.port_id)).scalar()
                        if port not in ROUTER_INTERFACE_OWNERS:
                            raise nerr.conflict("IpAddressInUse",
                                                f"Unable to complete operation for network "
                                                f"{row['network_id']}. The IP address "
                                                f"{data['gateway_ip']} is in use.")
                changes.update(cols)
            if changes:
                changes.update(revision_number=row["revision_number"] + 1,
                               updated_at=self.now())
                s.execute(S.update().where(S.c.id == id).values(**changes))
                row.update(changes)
                if "allocation_pools" in data and not ipam.is_auto_address(row):
                    ipam.rebuild_ranges(s, row)
            return row, self.fetch(s, RequestContext.internal_admin(), "network", N,
                                   row["network_id"])

        row, net_row = self.run(txn)
        subnet = render.subnet(row, net_row["external"])
        self.notify("subnet_updated", subnet, render.network(net_row, []))
        return subnet

    def delete_subnet(self, ctx: RequestContext, id: str) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "subnet", S, id, lock=True)
            if row["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("delete_subnet")
            users = s.execute(sa.select(P.c.id, P.c.device_owner, P.c.fixed_ips).join(
                IPA, IPA.c.port_id == P.c.id).where(IPA.c.subnet_id == id)).all()
            if any(u.device_owner not in SERVICE_OWNERS_DELETED_WITH_NETWORK for u in users):
                raise nerr.conflict("SubnetInUse", f"Unable to complete operation on subnet "
                                    f"{id}: One or more ports have an IP allocation from this "
                                    "subnet.")
            for u in users:  # dhcp ports lose their address on this subnet
                s.execute(P.update().where(P.c.id == u.id).values(
                    fixed_ips=[f for f in u.fixed_ips if f["subnet_id"] != id]))
            s.execute(IPA.delete().where(IPA.c.subnet_id == id))
            s.execute(models.ip_range.delete().where(models.ip_range.c.subnet_id == id))
            s.execute(models.tag.delete().where(models.tag.c.resource_id == id))
            s.execute(S.delete().where(S.c.id == id))
            net_row = self.fetch(s, RequestContext.internal_admin(), "network", N,
                                 row["network_id"])
            return row, net_row

        row, net_row = self.run(txn)
        self.notify("subnet_deleted", render.subnet(row, net_row["external"]),
                    render.network(net_row, []))

    # -- ports -------------------------------------------------------------

    _SUBNETS_OF = sa.select(S).where(S.c.network_id == sa.bindparam("network_id")).order_by(
        S.c.created_at, S.c.id)

    def subnets_of(self, s, network_id: str) -> list[dict]:
        result = s.execute(self._SUBNETS_OF, {"network_id": network_id})
        keys = list(result.keys())
        return [dict(zip(keys, r, strict=True)) for r in result]

    def port_filter(self, key: str, values: list):
        if key == "fixed_ips":
            clauses = []
            for value in values:
                if isinstance(value, dict):
                    items = list(value.items())
                else:
                    items = [tuple(part.split("=", 1)) for part in str(value).split("&")
                             if "=" in part]
                sub = sa.select(IPA.c.port_id)
                for k, v in items:
                    if k == "ip_address":
                        sub = sub.where(IPA.c.ip_address == v)
                    elif k == "subnet_id":
                        sub = sub.where(IPA.c.subnet_id == v)
                    elif k == "ip_address_substr":
                        sub = sub.where(IPA.c.ip_address.contains(v))
                clauses.append(P.c.id.in_(sub))
            return sa.and_(*clauses) if clauses else None
        if key == "security_groups":
            PSG = models.port_security_group
            return P.c.id.in_(sa.select(PSG.c.port_id).where(
                PSG.c.security_group_id.in_(values)))
        if key == "device_owner__startswith":
            return sa.or_(*[P.c.device_owner.startswith(v) for v in values])
        return None

    def generate_mac(self) -> str:
        base = self.base_mac
        fixed = 4 if base[3] else 3
        octets = base[:fixed] + [random.randint(0, 255) for _ in range(6 - fixed)]
        return ":".join(f"{o:02x}" for o in octets)

    def get_port(self, ctx: RequestContext, id: str) -> dict:
        with self.db.reader() as s:
            return self.scrub(ctx, "port", render.port(self.fetch(s, ctx, "port", P, id)))

    def list_ports(self, ctx: RequestContext, filters: dict | None = None, **page) -> list:
        return self.list_page(ctx, "port", filters, **page)[0]

    def _network_for_port(self, s, ctx: RequestContext, network_id: str, project: str) -> dict:
        net = self.fetch(s, ctx, "network", N, network_id)
        if not ctx.is_admin and net["project_id"] != ctx.project_id and not net["shared"]:
            # external networks are visible, but only the cloud makes ports on them
            raise nerr.policy_denied("create_port")
        return net

    def _security_groups_for(self, s, ctx, project: str, wanted: list[str] | None,
                             port_security: bool) -> list[str]:
        if wanted is None:
            if not port_security:
                return []
            return [self.default_security_group_id(s, project)]
        wanted = list(dict.fromkeys(wanted))
        if wanted and not port_security:
            raise nerr.bad_request("PortSecurityAndIPRequiredForSecurityGroups",
                                   "Port security must be enabled and port must have an IP "
                                   "address in order to use security groups.")
        if wanted:
            SG = models.security_group
            stmt = sa.select(SG.c.id).where(SG.c.id.in_(wanted))
            if not ctx.is_admin:
                stmt = stmt.where(SG.c.project_id == project)
            found = set(s.execute(stmt).scalars())
            for sg in wanted:
                if sg not in found:
                    raise nerr.not_found("security_group", sg)
        return wanted

    def _requested_ips(self, s, ctx, net: dict, fixed_ips: list[dict], device_owner: str,
                       subnets: list[dict]) -> list[tuple[dict, str | None]]:
        """Resolve fixed_ips entries to (subnet, ip or None)."""
        by_id = {sub["id"]: sub for sub in subnets}
        out = []
        for entry in fixed_ips:
            unknown = set(entry) - {"subnet_id", "ip_address"}
            if unknown:
                raise nerr.invalid_input(f"Invalid fixed_ips entry {entry}")
            ip = entry.get("ip_address")
            sid = entry.get("subnet_id")
            if ip is not None:
                try:
                    ip = A.ip_address(ip)
                except A.Invalid:
                    raise nerr.invalid_input(f"{entry['ip_address']} is not a valid IP "
                                             "address") from None
            if sid is not None:
                sub = by_id.get(sid)
                if sub is None:
                    exists = s.execute(sa.select(S.c.id).where(S.c.id == sid)).first()
                    if exists is None:
                        raise nerr.not_found("subnet", sid)
                    raise nerr.invalid_input(f"Failed to create port on network {net['id']}, "
                                             f"because fixed_ips included invalid subnet {sid}.")
            elif ip is not None:
                addr = ipaddress.ip_address(ip)
                sub = next((x for x in subnets if addr in ipaddress.ip_network(x["cidr"])), None)
                if sub is None:
                    raise nerr.invalid_input(f"IP address {ip} is not a valid IP for the "
                                             "specified network.")
            else:
                raise nerr.invalid_input("IP allocation requires subnet_id or ip_address")
            if ip is not None:
                cidr = ipaddress.ip_network(sub["cidr"])
                addr = ipaddress.ip_address(ip)
                if addr not in cidr or (cidr.version == 4 and cidr.prefixlen < 31 and addr in (
                        cidr.network_address, cidr.broadcast_address)) or (
                        cidr.version == 6 and addr == cidr.network_address and
                        device_owner not in ROUTER_OWNERS):
                    raise nerr.invalid_input(f"IP address {ip} is not a valid IP for the "
                                             "specified subnet.")
                if ip == sub["gateway_ip"] and device_owner not in ROUTER_INTERFACE_OWNERS:
                    raise nerr.conflict("IpAddressAlreadyAllocated",
                                        f"IP address {ip} already allocated in subnet "
                                        f"{sub['id']}")
            out.append((sub, ip))
        if len(out) > self.conf.max_fixed_ips_per_port:
            raise nerr.invalid_input("Exceeded maximum amount of fixed ips per port.")
        return out

    def _allocate(self, s, net: dict, port_id: str, mac: str, requested, subnets,
                  device_owner: str) -> list[dict]:
        """Take the port's addresses (requested ones, or one per IP family) and
        record them; raises IpAddressGenerationFailure / IpAddressAlreadyAllocated."""
        fixed = []
        if requested is None:
            # subnet-service-types: subnets reserved for this device_owner first,
            # else the subnets reserved for nobody
            eligible = [x for x in subnets if device_owner and
                        device_owner in x["service_types"]] or \
                [x for x in subnets if not x["service_types"]]
            v4 = [x for x in eligible if x["ip_version"] == 4]
            v6 = [x for x in eligible if x["ip_version"] == 6]
            for family in (v4, [x for x in v6 if not ipam.is_auto_address(x)]):
                if not family:
                    continue
                for sub in family:
                    ip = ipam.take_any(s, sub["id"])
                    if ip is not None:
                        fixed.append((sub, str(ipaddress.ip_address(ip))))
                        break
                else:
                    raise nerr.ip_exhausted(net["id"])
            for sub in v6:
                if ipam.is_auto_address(sub) and device_owner not in ROUTER_INTERFACE_OWNERS:
                    fixed.append((sub, ipam.eui64(sub["cidr"], mac)))
        else:
            for sub, ip in requested:
                if ip is None:
                    if ipam.is_auto_address(sub):
                        ip = ipam.eui64(sub["cidr"], mac)
                    else:
                        taken = ipam.take_any(s, sub["id"])
                        if taken is None:
                            raise nerr.ip_exhausted(net["id"])
                        ip = str(ipaddress.ip_address(taken))
                else:
                    if s.execute(sa.select(IPA.c.port_id).where(
                            IPA.c.subnet_id == sub["id"], IPA.c.ip_address == ip)).first():
                        raise nerr.conflict("IpAddressAlreadyAllocated",
                                            f"IP address {ip} already allocated in subnet "
                                            f"{sub['id']}")
                    ipam.take_specific(s, sub["id"], int(ipaddress.ip_address(ip)))
                fixed.append((sub, ip))
        seen = set()
        rows = []
        result = []
        for sub, ip in fixed:
            if (sub["id"], ip) in seen:
                raise nerr.conflict("IpAddressAlreadyAllocated",
                                    f"IP address {ip} already allocated in subnet {sub['id']}")
            seen.add((sub["id"], ip))
            rows.append({"subnet_id": sub["id"], "ip_address": ip, "port_id": port_id,
                         "network_id": net["id"]})
            result.append({"subnet_id": sub["id"], "ip_address": ip})
        return rows, result

    def _release(self, s, subnets_by_id: dict, fixed_ips: list[dict]) -> None:
        for entry in fixed_ips:
            sub = subnets_by_id.get(entry["subnet_id"])
            s.execute(IPA.delete().where(IPA.c.subnet_id == entry["subnet_id"],
                                         IPA.c.ip_address == entry["ip_address"]))
            if sub is not None and not ipam.is_auto_address(sub):
                ipam.give_back(s, sub, int(ipaddress.ip_address(entry["ip_address"])))

    def _check_pairs(self, pairs: list[dict]) -> list[dict]:
        out = []
        for pair in pairs:
            if "ip_address" not in pair or set(pair) - {"ip_address", "mac_address"}:
                raise errors.BadRequest("Invalid input for allowed_address_pairs. Reason: "
                                        f"Unrecognized attribute(s) or missing ip_address in "
                                        f"{pair}.", kind="HTTPBadRequest")
            try:
                ip = A.cidr(pair["ip_address"], strict=False) if "/" in str(
                    pair["ip_address"]) else A.ip_address(pair["ip_address"])
                mac = A.mac_address(pair["mac_address"]) if pair.get("mac_address") else None
            except A.Invalid as e:
                raise A.bad_input("allowed_address_pairs", str(e)) from None
            item = {"ip_address": ip}
            if mac:
                item["mac_address"] = mac
            if item in out:
                raise nerr.bad_request("DuplicateAddressPairInRequest",
                                       "Request contains duplicate address pair: "
                                       f"mac_address {mac} ip_address {ip}.")
            out.append(item)
        return out

    def _check_dhcp_opts(self, opts: list[dict]) -> list[dict]:
        out = []
        for opt in opts:
            if "opt_name" not in opt or set(opt) - {"opt_name", "opt_value", "ip_version"}:
                raise errors.BadRequest(f"Invalid input for extra_dhcp_opts. Reason: Invalid "
                                        f"data format for extra-dhcp-opt: {opt}.",
                                        kind="HTTPBadRequest")
            out.append({"opt_name": str(opt["opt_name"]), "opt_value": opt.get("opt_value"),
                        "ip_version": int(opt.get("ip_version") or 4)})
        return out

    def _bind(self, port: dict, net_row: dict, host: str) -> tuple[str, dict, str]:
        if not host:
            return "unbound", {}, "DOWN"
        binding = None
        try:
            binding = self.driver.bind_port(port, render.network(net_row, []), host)
        except Exception:  # noqa: BLE001
            LOG.exception("binding port %s to %s failed", port.get("id"), host)
        if binding is None:
            return "binding_failed", {}, "DOWN"
        return binding.vif_type, dict(binding.vif_details), binding.status

    def create_port(self, ctx: RequestContext, body: dict) -> dict:
        """Create a port (Neutron's POST /v2.0/ports body, without the envelope)."""
        data = A.convert("port", PORT_ATTRS, {"port": body})
        project = self.owner_for(ctx, data)
        target = {"project_id": project}
        for name in ("binding:host_id", "binding:profile", "binding:vnic_type"):
            if name in body:
                self.enforce(ctx, f"create_port:{name}", target)
        pairs = self._check_pairs(data["allowed_address_pairs"])
        dhcp_opts = self._check_dhcp_opts(data["extra_dhcp_opts"])
        port_id = new_id()
        seen: dict = {}

        def txn(s):
            net = self._network_for_port(s, ctx, data["network_id"], project)
            owner_or_admin = ctx.is_admin or net["project_id"] == ctx.project_id
            if "mac_address" in data and not owner_or_admin:
                raise nerr.policy_denied("create_port:mac_address")
            if data["device_owner"].startswith("network:") and not owner_or_admin:
                raise nerr.policy_denied("create_port:device_owner")
            self.check_quota(s, project, "port")
            port_security = data.get("port_security_enabled", net["port_security_enabled"])
            if pairs and not port_security:
                raise nerr.conflict("AddressPairAndPortSecurityRequired",
                                    "Port Security must be enabled in order to have allowed "
                                    "address pairs on a port.")
            subnets = self.subnets_of(s, net["id"])
            requested = None
            if "fixed_ips" in data:
                requested = self._requested_ips(s, ctx, net, data["fixed_ips"],
                                                data["device_owner"], subnets)
                if any(ip is not None for _, ip in requested) and not owner_or_admin:
                    raise nerr.policy_denied("create_port:fixed_ips:ip_address")
            groups = self._security_groups_for(s, ctx, project, data.get("security_groups"),
                                               port_security)
            mac = data.get("mac_address")
            if mac is not None:
                if s.execute(sa.select(P.c.id).where(P.c.network_id == net["id"],
                                                     P.c.mac_address == mac)).first():
                    raise nerr.conflict("MacAddressInUse", f"Unable to complete operation for "
                                        f"network {net['id']}. The mac address {mac} is in use.")
            else:
                mac = self.generate_mac()
            alloc_rows, fixed_ips = self._allocate(s, net, port_id, mac, requested, subnets,
                                                   data["device_owner"])
            now = self.now()
            port = {"id": port_id, "network_id": net["id"], "project_id": project,
                    "name": data["name"], "description": data["description"],
                    "mac_address": mac, "admin_state_up": data["admin_state_up"],
                    "status": "DOWN", "device_id": data["device_id"],
                    "device_owner": data["device_owner"],
                    "port_security_enabled": port_security, "security_groups": groups,
                    "allowed_address_pairs": pairs, "extra_dhcp_opts": dhcp_opts,
                    "host_id": data["binding:host_id"], "vnic_type": data["binding:vnic_type"],
                    "profile": data["binding:profile"], "vif_type": "unbound",
                    "vif_details": {}, "fixed_ips": fixed_ips, "tags": data.get("tags") or [],
                    "created_at": now, "updated_at": now, "revision_number": 1}
            if port["host_id"]:
                vif_type, vif_details, status = self._bind(render.port(port), net,
                                                           port["host_id"])
                # Neutron counts the binding as two more revisions
                port.update(vif_type=vif_type, vif_details=vif_details, status=status,
                            revision_number=3)
            s.execute(P.insert(), port)
            if alloc_rows:
                s.execute(IPA.insert(), alloc_rows)
            if groups:
                s.execute(models.port_security_group.insert(),
                          [{"port_id": port_id, "security_group_id": g} for g in groups])
            if port["tags"]:
                self.set_tags_rows(s, port_id, port["tags"])
            seen["net"] = net
            return port

        row = self.run(txn)
        port = render.port(row)
        net = seen["net"]
        self.notify("port_created", port, render.network(net, []))
        return self.scrub(ctx, "port", dict(port))

    def update_port(self, ctx: RequestContext, id: str, body: dict) -> dict:
        data = A.convert("port", PORT_ATTRS, {"port": body}, update=True)
        for name in ("binding:host_id", "binding:profile", "binding:vnic_type"):
            if name in body:
                self.enforce(ctx, f"update_port:{name}", {})
        pairs = self._check_pairs(data["allowed_address_pairs"]) \
            if "allowed_address_pairs" in data else None
        dhcp_opts = self._check_dhcp_opts(data["extra_dhcp_opts"]) \
            if "extra_dhcp_opts" in data else None
        events = {}

        def txn(s):
            row = self.fetch(s, ctx, "port", P, id, lock=True)
            net = self.fetch(s, RequestContext.internal_admin(), "network", N, row["network_id"])
            owner_or_admin = ctx.is_admin or net["project_id"] == ctx.project_id
            if row["project_id"] != ctx.project_id and not owner_or_admin:
                raise nerr.policy_denied("update_port")
            if "mac_address" in data and data["mac_address"] != row["mac_address"]:
                if not ctx.is_admin:
                    raise nerr.policy_denied("update_port:mac_address")
                if row["vif_type"] not in ("unbound", "binding_failed"):
                    raise nerr.conflict("PortBound", f"Unable to complete operation on port "
                                        f"{id}, port is already bound.")
                if s.execute(sa.select(P.c.id).where(P.c.network_id == row["network_id"],
                                                     P.c.mac_address == data["mac_address"])
                             ).first():
                    raise nerr.conflict("MacAddressInUse", "Unable to complete operation for "
                                        f"network {row['network_id']}. The mac address "
                                        f"{data['mac_address']} is in use.")
            if data.get("device_owner", "").startswith("network:") and not owner_or_admin:
                raise nerr.policy_denied("update_port:device_owner")
            changes = {}
            for key, column in (("name", "name"), ("description", "description"),
                                ("admin_state_up", "admin_state_up"),
                                ("device_id", "device_id"), ("device_owner", "device_owner"),
                                ("mac_address", "mac_address"),
                                ("binding:vnic_type", "vnic_type"),
                                ("binding:profile", "profile")):
                if key in data and data[key] != row[column]:
                    changes[column] = data[key]
            port_security = data.get("port_security_enabled", row["port_security_enabled"])
            if "port_security_enabled" in data:
                changes["port_security_enabled"] = port_security
            groups = row["security_groups"]
            if "security_groups" in data:
                groups = self._security_groups_for(s, ctx, row["project_id"],
                                                   data["security_groups"] or [], port_security)
            elif not port_security and groups:
                raise nerr.conflict("PortSecurityPortHasSecurityGroup",
                                    "Port has security group associated. Cannot disable port "
                                    "security or ip address until security group is removed")
            if groups != row["security_groups"]:
                changes["security_groups"] = groups
                PSG = models.port_security_group
                s.execute(PSG.delete().where(PSG.c.port_id == id))
                if groups:
                    s.execute(PSG.insert(), [{"port_id": id, "security_group_id": g}
                                             for g in groups])
            if pairs is not None:
                if pairs and not port_security:
                    raise nerr.conflict("AddressPairAndPortSecurityRequired",
                                        "Port Security must be enabled in order to have "
                                        "allowed address pairs on a port.")
                changes["allowed_address_pairs"] = pairs
            elif not port_security and row["allowed_address_pairs"]:
                raise nerr.conflict("AddressPairAndPortSecurityRequired",
                                    "Port Security must be enabled in order to have allowed "
                                    "address pairs on a port.")
            if dhcp_opts is not None:
                changes["extra_dhcp_opts"] = dhcp_opts
            if "fixed_ips" in data:
                if any(e.get("ip_address") for e in data["fixed_ips"]) and not owner_or_admin:
                    raise nerr.policy_denied("update_port:fixed_ips:ip_address")
                subnets = [dict(r) for r in s.execute(sa.select(S).where(
                    S.c.network_id == row["network_id"]).order_by(S.c.created_at,
                                                                  S.c.id)).mappings()]
                by_id = {x["id"]: x for x in subnets}
                current = {(f["subnet_id"], f["ip_address"]) for f in row["fixed_ips"]}
                keep, wanted = [], []
                for entry in data["fixed_ips"]:
                    if entry.get("ip_address") and (entry.get("subnet_id") or next(
                            (f["subnet_id"] for f in row["fixed_ips"]
                             if f["ip_address"] == entry["ip_address"]), None),
                            entry["ip_address"]) in current:
                        sid = entry.get("subnet_id") or next(
                            f["subnet_id"] for f in row["fixed_ips"]
                            if f["ip_address"] == entry["ip_address"])
                        keep.append({"subnet_id": sid, "ip_address": entry["ip_address"]})
                    else:
                        wanted.append(entry)
                removed = [f for f in row["fixed_ips"] if f not in keep]
                self._release(s, by_id, removed)
                new_fixed = []
                if wanted:
                    requested = self._requested_ips(s, ctx, net, wanted,
                                                    changes.get("device_owner",
                                                                row["device_owner"]), subnets)
                    alloc_rows, new_fixed = self._allocate(
                        s, net, id, row["mac_address"], requested, subnets,
                        row["device_owner"])
                    if alloc_rows:
                        s.execute(IPA.insert(), alloc_rows)
                changes["fixed_ips"] = keep + new_fixed
                if len(changes["fixed_ips"]) > self.conf.max_fixed_ips_per_port:
                    raise nerr.invalid_input("Exceeded maximum amount of fixed ips per port.")
            if "binding:host_id" in data and data["binding:host_id"] != row["host_id"]:
                host = data["binding:host_id"]
                merged = {**row, **changes, "host_id": host}
                vif_type, vif_details, status = self._bind(render.port(merged), net, host)
                changes.update(host_id=host, vif_type=vif_type, vif_details=vif_details,
                               status=status)
                if row["host_id"]:
                    events["unbound"] = row["host_id"]
            if changes:
                changes.update(revision_number=row["revision_number"] + 1,
                               updated_at=self.now())
                s.execute(P.update().where(P.c.id == id).values(**changes))
                row.update(changes)
            events["net"] = net
            return row

        row = self.run(txn)
        port = render.port(row)
        net = render.network(events["net"], [])
        if "unbound" in events:
            self.notify("port_unbound", port, events["unbound"])
        self.notify("port_updated", port, net)
        return self.scrub(ctx, "port", dict(port))

    def delete_port(self, ctx: RequestContext, id: str, *, l3_port_check: bool = True) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "port", P, id, lock=True)
            net = self.fetch(s, RequestContext.internal_admin(), "network", N, row["network_id"])
            if row["project_id"] != ctx.project_id and not ctx.is_admin and \
                    net["project_id"] != ctx.project_id:
                raise nerr.policy_denied("delete_port")
            if l3_port_check and row["device_owner"] in ROUTER_OWNERS + (
                    "network:floatingip",):
                raise nerr.conflict("ServicePortInUse", f"Port {id} cannot be deleted directly "
                                    "via the port API: has device owner "
                                    f"{row['device_owner']}.")
            self.disassociate_port_floatingips(s, id)
            subnets = {x["id"]: dict(x) for x in s.execute(sa.select(S).where(
                S.c.network_id == row["network_id"])).mappings()}
            self._release(s, subnets, row["fixed_ips"])
            s.execute(models.port_security_group.delete().where(
                models.port_security_group.c.port_id == id))
            s.execute(models.tag.delete().where(models.tag.c.resource_id == id))
            s.execute(P.delete().where(P.c.id == id))
            return row, net

        row, net = self.run(txn)
        self.notify("port_deleted", render.port(row), render.network(net, []))

    def delete_ports_of_device(self, ctx: RequestContext, device_id: str) -> int:
        """Delete every port whose device_id is ``device_id`` (a deleted server's)."""
        count = 0
        for port in self.list_ports(ctx, {"device_id": device_id}):
            try:
                self.delete_port(ctx, port["id"], l3_port_check=False)
                count += 1
            except errors.NotFound:
                pass
        return count

    # -- network IP availability (admin) ----------------------------------

    def ip_availabilities(self, ctx: RequestContext, filters: dict | None = None) -> list:
        """Totals and use of each network's subnets (``network-ip-availability``)."""
        if not ctx.is_admin:
            raise nerr.policy_denied("get_network_ip_availability")
        filters = dict(filters or {})
        net_filters = {}
        for key, name in (("network_id", "id"), ("network_name", "name"),
                          ("project_id", "project_id"), ("tenant_id", "project_id")):
            if key in filters:
                net_filters[name] = filters[key]
        networks = self.list_networks(ctx, net_filters)
        ip_version = filters.get("ip_version")
        if isinstance(ip_version, list):
            ip_version = ip_version[0]
        out = []
        with self.db.reader() as s:
            for net in networks:
                subs = []
                for row in self.subnets_of(s, net["id"]):
                    if ip_version is not None and str(row["ip_version"]) != str(ip_version):
                        continue
                    total = sum(b - a + 1 for a, b in ipam.pools_to_ints(
                        row["allocation_pools"]))
                    used = s.execute(sa.select(sa.func.count()).select_from(IPA).where(
                        IPA.c.subnet_id == row["id"])).scalar_one()
                    subs.append({"subnet_id": row["id"], "subnet_name": row["name"],
                                 "cidr": row["cidr"], "ip_version": row["ip_version"],
                                 "total_ips": total, "used_ips": used})
                if ip_version is not None and not subs:
                    continue
                out.append({"network_id": net["id"], "network_name": net["name"],
                            "tenant_id": net["project_id"], "project_id": net["project_id"],
                            "total_ips": sum(x["total_ips"] for x in subs),
                            "used_ips": sum(x["used_ips"] for x in subs),
                            "subnet_ip_availability": subs})
        return out

    def full_state(self) -> dict:
        """Everything a data-plane driver should contain (``NetworkDriver.resync``)."""
        admin = RequestContext.internal_admin()
        return {"networks": self.list_networks(admin), "subnets": self.list_subnets(admin),
                "ports": self.list_ports(admin), "routers": self.list_routers(admin),
                "floatingips": self.list_floatingips(admin),
                "security_groups": self.list_page(admin, "security_group")[0]}

    # -- auto-allocated topology -------------------------------------------

    def get_auto_allocated_topology(self, ctx: RequestContext, project_id: str | None = None,
                                    *, dry_run: bool = False) -> dict:
        """The project's network for ``networks: auto``, created on first use:
        a network and subnet (from the default subnet pool, else
        ``[network] auto_allocated_cidr``), and when a default external network
        exists a router with its gateway there and an interface on the subnet."""
        project = project_id or ctx.project_id
        if project != ctx.project_id and not ctx.is_admin:
            raise nerr.policy_denied("get_auto_allocated_topology")
        T = models.auto_allocated_topology
        with self.db.reader() as s:
            found = s.execute(sa.select(T).where(T.c.project_id == project)).first()
        if found is not None:
            return {"id": found.network_id, "tenant_id": project, "project_id": project}
        if dry_run:
            return {"id": "dry-run=pass", "tenant_id": project, "project_id": project}
        with self._auto_lock:
            with self.db.reader() as s:
                found = s.execute(sa.select(T).where(T.c.project_id == project)).first()
            if found is not None:
                return {"id": found.network_id, "tenant_id": project, "project_id": project}
            admin = RequestContext.internal_admin()
            net = self.create_network(admin, {"name": "auto_allocated_network",
                                              "project_id": project})
            try:
                subnet_body = {"network_id": net["id"], "name": "auto_allocated_subnet_v4",
                               "ip_version": 4, "project_id": project}
                if self.default_subnetpool_id(4):
                    subnet_body["use_default_subnetpool"] = True
                else:
                    subnet_body["cidr"] = self.conf.network.auto_allocated_cidr
                subnet = self.create_subnet(admin, subnet_body)
                router_id = None
                external = self.default_external_network()
                if external is not None:
                    router = self.create_router(admin, {
                        "name": "auto_allocated_router", "project_id": project,
                        "external_gateway_info": {"network_id": external["id"]}})
                    router_id = router["id"]
                    self.add_router_interface(admin, router_id, {"subnet_id": subnet["id"]})

                def txn(s):
                    s.execute(T.insert().values(project_id=project, network_id=net["id"],
                                                router_id=router_id))
                self.run(txn)
            except Exception:
                LOG.exception("auto-allocation for %s failed; cleaning up", project)
                raise
        return {"id": net["id"], "tenant_id": project, "project_id": project}

    def delete_auto_allocated_topology(self, ctx: RequestContext, project_id: str) -> None:
        if project_id != ctx.project_id and not ctx.is_admin:
            raise nerr.policy_denied("delete_auto_allocated_topology")
        T = models.auto_allocated_topology
        with self.db.reader() as s:
            found = s.execute(sa.select(T).where(T.c.project_id == project_id)).first()
        if found is None:
            raise errors.NotFound(f"Auto allocated topology for project {project_id} not "
                                  "found", kind="HTTPNotFound")
        admin = RequestContext.internal_admin()
        if found.router_id:
            for port in self.list_ports(admin, {"device_id": found.router_id,
                                                "device_owner": "network:router_interface"}):
                for fixed in port["fixed_ips"]:
                    self.remove_router_interface(admin, found.router_id,
                                                 {"subnet_id": fixed["subnet_id"]})
            self.delete_router(admin, found.router_id)
        self.delete_network(admin, found.network_id)

    def default_external_network(self) -> dict | None:
        admin = RequestContext.internal_admin()
        wanted = self.conf.network.default_external_network
        if wanted:
            try:
                return self.find_network(admin, wanted)
            except errors.ApiError:
                return None
        found = self.list_networks(admin, {"router:external": True, "is_default": True})
        return found[0] if found else None


def raw_columns(table) -> list:
    """The table's columns, with JSON and timestamps read as stored (decoded by
    ``query``/``render``, which is much cheaper for a page of 1000 rows)."""
    from pocketstack.common.db import UTCDateTime

    return [sa.type_coerce(c, sa.Text).label(c.name)
            if isinstance(c.type, (models.JSONType, UTCDateTime)) else c for c in table.c]


def raw_rows(s, stmt, params: dict) -> tuple[list[str], list]:
    """Run a SELECT through the DB-API cursor, skipping SQLAlchemy's per-value
    result processing (a list page has 1000 rows of 25 columns); callers turn
    JSON and booleans into Python values themselves."""
    conn = s.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params(params)
    if compiled.positional:
        args = tuple(values[name] for name in compiled.positiontup)
    else:
        args = values
    result = conn.exec_driver_sql(str(compiled), args)
    return list(result.keys()), result.fetchall()


def sa_row(manager: NetworkManager, table, id: str):
    with manager.db.reader() as s:
        return s.execute(sa.select(table).where(table.c.id == id)).first()
