"""Security groups and their rules; each project's ``default`` group."""

from __future__ import annotations

import ipaddress
import uuid

import sqlalchemy as sa

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.network import attrs as A
from pocketstack.network import errors as nerr
from pocketstack.network import models, render

SG, RULE, DSG, PSG = (models.security_group, models.security_group_rule,
                      models.default_security_group, models.port_security_group)

PROTOCOLS = {"hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17,
             "ipv6-encap": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47,
             "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
             "ipv6-opts": 60, "ospf": 89, "pgm": 113, "vrrp": 112, "sctp": 132,
             "dccp": 33, "udplite": 136}
PORT_PROTOCOLS = {6, 17, 33, 132, 136}
ICMP = {1, 58}

GROUP_ATTRS = {
    "name": A.Attr(A.string(255), default=""),
    "description": A.Attr(A.string(255), default=""),
    "stateful": A.Attr(A.boolean, default=True),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
    "tags": A.Attr(A.list_of(A.string(255)), put=False),
}
RULE_ATTRS = {
    "security_group_id": A.Attr(A.uuid_str, put=False, required=True),
    "direction": A.Attr(A.one_of("ingress", "egress"), put=False, required=True),
    "ethertype": A.Attr(A.one_of("IPv4", "IPv6", "ipv4", "ipv6"), put=False, default="IPv4"),
    "protocol": A.Attr(lambda v: v, put=False, default=None),
    "port_range_min": A.Attr(A.integer(0, 65535, nullable=True), put=False, default=None),
    "port_range_max": A.Attr(A.integer(0, 65535, nullable=True), put=False, default=None),
    "remote_ip_prefix": A.Attr(A.nullable(A.loose_cidr), put=False, default=None),
    "remote_group_id": A.Attr(A.nullable(A.uuid_str), put=False, default=None),
    "remote_address_group_id": A.Attr(lambda v: v, put=False, default=None),
    "description": A.Attr(A.string(255), default=""),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
}

SG_FILTERS = {"id": ("id", str), "name": ("name", str), "tenant_id": ("project_id", str),
              "project_id": ("project_id", str), "description": ("description", str),
              "stateful": ("stateful", lambda v: A.boolean(v))}
RULE_FILTERS = {"id": ("id", str), "tenant_id": ("project_id", str),
                "project_id": ("project_id", str), "security_group_id":
                ("security_group_id", str), "direction": ("direction", str),
                "ethertype": ("ethertype", str), "protocol": ("protocol", str),
                "port_range_min": ("port_range_min", int), "port_range_max":
                ("port_range_max", int), "remote_ip_prefix": ("remote_ip_prefix", str),
                "remote_group_id": ("remote_group_id", str), "description":
                ("description", str)}


def _protocol(value):
    """(stored protocol, number or None)."""
    if value is None or value == "" or (isinstance(value, str) and value.lower() == "any"):
        return None, None
    if isinstance(value, bool):
        raise A.Invalid(f"Security group rule protocol {value} not supported")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if not 0 <= number <= 255:
            raise A.Invalid(f"Security group rule protocol {value} not supported")
        return str(number), number
    if isinstance(value, str) and value.lower() in PROTOCOLS:
        return value.lower(), PROTOCOLS[value.lower()]
    raise A.Invalid(f"Security group rule protocol {value} not supported")


_DEFAULT_OF = sa.select(DSG.c.security_group_id).where(
    DSG.c.project_id == sa.bindparam("project_id"))


class SecurityGroupMixin:
    def filters_of(self, kind):
        return {"security_group": SG_FILTERS, "security_group_rule": RULE_FILTERS}.get(kind) \
            or self.l3_filters(kind)

    def default_security_group_id(self, s, project_id: str) -> str:
        """The project's ``default`` group, created (with Neutron's default rules)
        in the caller's transaction if the project has none yet."""
        cached = self._default_sg_cache.get(project_id)
        if cached:
            return cached
        found = s.execute(_DEFAULT_OF, {"project_id": project_id}).scalar()
        if found is None:
            # not cached: the transaction that creates it may still roll back
            found = self._create_group_rows(s, project_id, "default",
                                            "Default security group", default=True)
            s.execute(DSG.insert().values(project_id=project_id, security_group_id=found))
            return found
        self._default_sg_cache[project_id] = found
        return found

    def ensure_default_security_group(self, project_id: str) -> str:
        if not project_id:
            return ""
        cached = self._default_sg_cache.get(project_id)
        if cached:
            return cached
        return self.run(self.default_security_group_id, project_id)

    def _create_group_rows(self, s, project_id: str, name: str, description: str, *,
                           default: bool = False, stateful: bool = True, tags=None) -> str:
        sg_id = str(uuid.uuid4())
        now = self.now()
        s.execute(SG.insert().values(id=sg_id, project_id=project_id, name=name,
                                     description=description, stateful=stateful,
                                     tags=tags or [], created_at=now, updated_at=now,
                                     revision_number=1))
        rules = [("egress", "IPv4", None), ("egress", "IPv6", None)]
        if default:
            rules = [("ingress", "IPv4", sg_id), ("ingress", "IPv6", sg_id)] + rules
        s.execute(RULE.insert(), [{
            "id": str(uuid.uuid4()), "security_group_id": sg_id, "project_id": project_id,
            "direction": d, "ethertype": e, "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": rg,
            "fingerprint": f"{d}|{e}|||||{rg or ''}", "description": "", "tags": [],
            "created_at": now, "updated_at": now, "revision_number": 0} for d, e, rg in rules])
        if tags:
            self.set_tags_rows(s, sg_id, tags)
        return sg_id

    def render_groups(self, s, rows: list[dict]) -> list[dict]:
        ids = [r["id"] for r in rows]
        rules: dict[str, list] = {i: [] for i in ids}
        defaults = set()
        if ids:
            defaults = set(s.execute(sa.select(DSG.c.security_group_id).where(
                DSG.c.security_group_id.in_(ids))).scalars())
            for rule in s.execute(sa.select(RULE).where(RULE.c.security_group_id.in_(ids))
                                  .order_by(RULE.c.created_at, RULE.c.id)).mappings():
                rule = dict(rule)
                rule["belongs_to_default_sg"] = rule["security_group_id"] in defaults
                rules[rule["security_group_id"]].append(render.security_group_rule(rule))
        return [render.security_group(r, rules[r["id"]]) for r in rows]

    def render_rules(self, s, rows: list[dict]) -> list[dict]:
        ids = list({r["security_group_id"] for r in rows})
        defaults = set(s.execute(sa.select(DSG.c.security_group_id).where(
            DSG.c.security_group_id.in_(ids))).scalars()) if ids else set()
        return [render.security_group_rule({**r, "belongs_to_default_sg":
                                            r["security_group_id"] in defaults}) for r in rows]

    def create_security_group(self, ctx: RequestContext, body: dict) -> dict:
        data = A.convert("security_group", GROUP_ATTRS, {"security_group": body})
        project = self.owner_for(ctx, data)
        if data["name"] == "default":
            existing = self.ensure_default_security_group(project)
            if existing:
                raise nerr.conflict("SecurityGroupDefaultAlreadyExists",
                                    "Default security group already exists.")

        def txn(s):
            self.default_security_group_id(s, project)
            self.check_quota(s, project, "security_group")
            sg_id = self._create_group_rows(s, project, data["name"], data["description"],
                                            stateful=data["stateful"], tags=data.get("tags"))
            return self.render_groups(s, [dict(s.execute(sa.select(SG).where(
                SG.c.id == sg_id)).mappings().one())])[0]

        group = self.run(txn)
        self.notify("security_group_created", group)
        return group

    def get_security_group(self, ctx: RequestContext, id: str) -> dict:
        with self.db.reader() as s:
            return self.render_groups(s, [self.fetch(s, ctx, "security_group", SG, id)])[0]

    def list_security_groups(self, ctx: RequestContext, filters: dict | None = None,
                             **page) -> list:
        return self.list_page(ctx, "security_group", filters, **page)[0]

    def find_security_group(self, ctx: RequestContext, name_or_id: str) -> dict:
        """A group by id or by name among the caller's project's groups."""
        if ctx.project_id:
            self.ensure_default_security_group(ctx.project_id)
        try:
            return self.get_security_group(ctx, name_or_id)
        except errors.NotFound:
            pass
        filters = {"name": name_or_id}
        if ctx.project_id:
            filters["project_id"] = ctx.project_id
        found = self.list_security_groups(ctx, filters)
        if not found and ctx.is_admin:
            found = self.list_security_groups(ctx, {"name": name_or_id})
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise errors.Conflict(f"Multiple security groups match name {name_or_id}; use an "
                                  "ID.", kind="NeutronClientNoUniqueMatch")
        raise nerr.not_found("security_group", name_or_id)

    def update_security_group(self, ctx: RequestContext, id: str, body: dict) -> dict:
        data = A.convert("security_group", GROUP_ATTRS, {"security_group": body}, update=True)

        def txn(s):
            row = self.fetch(s, ctx, "security_group", SG, id, lock=True)
            is_default = s.execute(sa.select(DSG.c.project_id).where(
                DSG.c.security_group_id == id)).first() is not None
            if is_default and "name" in data and data["name"] != "default":
                raise nerr.conflict("SecurityGroupCannotUpdateDefault",
                                    "Updating default security group not allowed.")
            changes = {k: data[k] for k in ("name", "description", "stateful") if k in data}
            if "stateful" in changes and changes["stateful"] != row["stateful"] and \
                    s.execute(sa.select(PSG.c.port_id).where(
                        PSG.c.security_group_id == id).limit(1)).first():
                raise nerr.conflict("SecurityGroupInUse", f"Security Group {id} in use.")
            if changes:
                changes.update(revision_number=row["revision_number"] + 1,
                               updated_at=self.now())
                s.execute(SG.update().where(SG.c.id == id).values(**changes))
                row.update(changes)
            return self.render_groups(s, [row])[0]

        group = self.run(txn)
        self.notify("security_group_updated", group)
        return group

    def delete_security_group(self, ctx: RequestContext, id: str) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "security_group", SG, id, lock=True)
            is_default = s.execute(sa.select(DSG.c.project_id).where(
                DSG.c.security_group_id == id)).first() is not None
            if is_default and not ctx.is_admin:
                raise nerr.conflict("SecurityGroupCannotRemoveDefault",
                                    "Insufficient rights for removing default security group.")
            if s.execute(sa.select(PSG.c.port_id).where(
                    PSG.c.security_group_id == id).limit(1)).first():
                raise nerr.conflict("SecurityGroupInUse", f"Security Group {id} in use.")
            s.execute(RULE.delete().where(sa.or_(RULE.c.security_group_id == id,
                                                 RULE.c.remote_group_id == id)))
            s.execute(DSG.delete().where(DSG.c.security_group_id == id))
            s.execute(models.tag.delete().where(models.tag.c.resource_id == id))
            s.execute(SG.delete().where(SG.c.id == id))
            return render.security_group(row, [])

        group = self.run(txn)
        self._default_sg_cache.pop(group["project_id"], None)
        self.notify("security_group_deleted", group)

    # -- rules -------------------------------------------------------------

    def _rule_row(self, s, ctx, data: dict, project: str) -> dict:
        try:
            protocol, number = _protocol(data.get("protocol"))
        except A.Invalid as e:
            raise nerr.bad_request("SecurityGroupRuleInvalidProtocol", str(e) + ". Only "
                                   "protocol values [None, 'ah', 'dccp', 'egp', 'esp', 'gre', "
                                   "'icmp', 'icmpv6', 'igmp', 'ipip', 'ipv6-encap', "
                                   "'ipv6-frag', 'ipv6-icmp', 'ipv6-nonxt', 'ipv6-opts', "
                                   "'ipv6-route', 'ospf', 'pgm', 'rsvp', 'sctp', 'tcp', "
                                   "'udp', 'udplite', 'vrrp'] and integer representations "
                                   "[0 to 255] are supported.") from None
        ethertype = "IPv4" if data["ethertype"].lower() == "ipv4" else "IPv6"
        if ethertype == "IPv4" and number == 58:
            raise nerr.bad_request("SecurityGroupEthertypeConflictWithProtocol",
                                   f"Ethertype IPv4 is not supported for protocol {protocol}.")
        lo, hi = data.get("port_range_min"), data.get("port_range_max")
        if (lo is not None or hi is not None) and number is None:
            raise nerr.bad_request("SecurityGroupProtocolRequiredWithPorts",
                                   "Must also specify protocol if port range is given.")
        if number in PORT_PROTOCOLS:
            if lo is not None and hi is None:
                hi = lo
            if hi is not None and lo is None:
                raise nerr.bad_request("SecurityGroupInvalidPortRange",
                                       "For TCP/UDP protocols, port_range_min must be <= "
                                       "port_range_max")
            if lo is not None and (lo < 1 or hi < lo):
                if lo == 0:
                    raise nerr.bad_request("SecurityGroupInvalidPortValue",
                                           "Invalid value for port 0.")
                raise nerr.bad_request("SecurityGroupInvalidPortRange",
                                       "For TCP/UDP protocols, port_range_min must be <= "
                                       "port_range_max")
            if lo == 1 and hi == 65535:
                lo = hi = None
        elif number in ICMP:
            if lo is not None and lo > 255:
                raise nerr.bad_request("SecurityGroupInvalidIcmpValue",
                                       f"Invalid value for ICMP field (port_range_min): {lo}. "
                                       "It must be 0 to 255.")
            if hi is not None and hi > 255:
                raise nerr.bad_request("SecurityGroupInvalidIcmpValue",
                                       f"Invalid value for ICMP field (port_range_max): {hi}. "
                                       "It must be 0 to 255.")
            if hi is not None and lo is None:
                raise nerr.bad_request("SecurityGroupMissingIcmpType",
                                       f"ICMP code (port-range-max) {hi} is provided but ICMP "
                                       "type (port-range-min) is missing.")
        elif lo is not None or hi is not None:
            raise nerr.bad_request("SecurityGroupInvalidProtocolForPort",
                                   f"Ports are not supported for protocol {protocol}.")
        prefix = data.get("remote_ip_prefix")
        remote_group = data.get("remote_group_id")
        if prefix and remote_group:
            raise nerr.bad_request("SecurityGroupRemoteGroupAndRemoteIpPrefix",
                                   "Only remote_ip_prefix or remote_group_id may be provided.")
        normalized = None
        if prefix:
            net = ipaddress.ip_network(prefix, strict=False)
            if (net.version == 4) != (ethertype == "IPv4"):
                raise nerr.bad_request("SecurityGroupRuleParameterConflict",
                                       f"Conflicting value ethertype {ethertype} for CIDR "
                                       f"{prefix}")
            normalized = str(net)
            if net.prefixlen == 0:
                normalized = None  # 0.0.0.0/0 matches what "any" does
        if remote_group:
            stmt = sa.select(SG.c.id).where(SG.c.id == remote_group)
            if not ctx.is_admin:
                stmt = stmt.where(SG.c.project_id == project)
            if s.execute(stmt).first() is None:
                raise nerr.not_found("security_group", remote_group)
        fingerprint = "|".join(str(x) if x is not None else "" for x in (
            data["direction"], ethertype, number, lo, hi, normalized, remote_group))
        now = self.now()
        return {"id": str(uuid.uuid4()), "security_group_id": data["security_group_id"],
                "project_id": project, "direction": data["direction"], "ethertype": ethertype,
                "protocol": protocol, "port_range_min": lo, "port_range_max": hi,
                "remote_ip_prefix": prefix if prefix is None else str(
                    ipaddress.ip_network(prefix, strict=False)),
                "remote_group_id": remote_group, "fingerprint": fingerprint,
                "description": data.get("description") or "", "tags": [],
                "created_at": now, "updated_at": now, "revision_number": 0}

    def create_security_group_rule(self, ctx: RequestContext, body: dict) -> dict:
        data = A.convert("security_group_rule", RULE_ATTRS, {"security_group_rule": body})
        address_group = data.pop("remote_address_group_id", None)
        if address_group is not None:  # no address groups here: none can be found
            raise errors.NotFound(f"Address group {address_group} could not be found.",
                                  kind="AddressGroupNotFound")
        owner = self.owner_for(ctx, dict(data))

        def txn(s):
            group = self.fetch(s, ctx, "security_group", SG, data["security_group_id"],
                               lock=True)
            if group["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("create_security_group_rule")
            project = group["project_id"] if ctx.is_admin and owner == ctx.project_id \
                else owner
            row = self._rule_row(s, ctx, data, project)
            dup = s.execute(sa.select(RULE.c.id).where(
                RULE.c.security_group_id == group["id"],
                RULE.c.fingerprint == row["fingerprint"])).scalar()
            if dup:
                raise nerr.conflict("SecurityGroupRuleExists",
                                    f"Security group rule already exists. Rule id is {dup}.")
            self.check_quota(s, project, "security_group_rule")
            s.execute(RULE.insert().values(**row))
            s.execute(SG.update().where(SG.c.id == group["id"]).values(
                revision_number=group["revision_number"] + 1, updated_at=self.now()))
            rendered = self.render_rules(s, [row])[0]
            group_now = self.render_groups(s, [dict(s.execute(sa.select(SG).where(
                SG.c.id == group["id"])).mappings().one())])[0]
            return rendered, group_now

        rule, group = self.run(txn)
        self.notify("security_group_updated", group)
        return rule

    def get_security_group_rule(self, ctx: RequestContext, id: str) -> dict:
        with self.db.reader() as s:
            return self.render_rules(s, [self.fetch(s, ctx, "security_group_rule", RULE, id)])[0]

    def list_security_group_rules(self, ctx, filters=None, **page) -> list:
        return self.list_page(ctx, "security_group_rule", filters, **page)[0]

    def delete_security_group_rule(self, ctx: RequestContext, id: str) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "security_group_rule", RULE, id, lock=True)
            s.execute(RULE.delete().where(RULE.c.id == id))
            group = s.execute(sa.select(SG).where(
                SG.c.id == row["security_group_id"])).mappings().first()
            if group is None:
                return None
            s.execute(SG.update().where(SG.c.id == group["id"]).values(
                revision_number=group["revision_number"] + 1, updated_at=self.now()))
            return self.render_groups(s, [dict(group)])[0]

        group = self.run(txn)
        if group is not None:
            self.notify("security_group_updated", group)
