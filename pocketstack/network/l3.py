"""Routers (gateway, interfaces, extra routes) and floating IPs.

A router's gateway and interfaces are ports (device_owner
``network:router_gateway`` / ``network:router_interface``, device_id = the
router); a floating IP owns a port on the external network
(``network:floatingip``). Gateway and floating IP ports belong to no project
(``project_id`` ""), as in Neutron, so they count against no tenant quota.
"""

from __future__ import annotations

import ipaddress
import uuid

import sqlalchemy as sa

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.network import attrs as A
from pocketstack.network import errors as nerr
from pocketstack.network import models, render

R, FIP, P, S, N, IPA = (models.router, models.floatingip, models.port, models.subnet,
                        models.network, models.ip_allocation)
INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"
FIP_OWNER = "network:floatingip"

ROUTER_ATTRS = {
    "name": A.Attr(A.string(255), default=""),
    "description": A.Attr(A.string(255), default=""),
    "admin_state_up": A.Attr(A.boolean, default=True),
    "external_gateway_info": A.Attr(lambda v: v, default=None),
    "routes": A.Attr(A.list_of(A.dict_value)),
    "availability_zone_hints": A.Attr(A.list_of(A.string(255)), put=False),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
    "tags": A.Attr(A.list_of(A.string(255)), put=False),
}
FIP_ATTRS = {
    "floating_network_id": A.Attr(A.uuid_str, put=False, required=True),
    "floating_ip_address": A.Attr(A.nullable(A.ip_address), put=False),
    "subnet_id": A.Attr(A.nullable(A.uuid_str), put=False),
    "port_id": A.Attr(A.nullable(A.uuid_str), default=None),
    "fixed_ip_address": A.Attr(A.nullable(A.ip_address), default=None),
    "description": A.Attr(A.string(255), default=""),
    "tenant_id": A.Attr(A.string(255), put=False),
    "project_id": A.Attr(A.string(255), put=False),
    "tags": A.Attr(A.list_of(A.string(255)), put=False),
}
ROUTER_FILTERS = {"id": ("id", str), "name": ("name", str), "tenant_id": ("project_id", str),
                  "project_id": ("project_id", str), "description": ("description", str),
                  "status": ("status", str), "admin_state_up": ("admin_state_up",
                                                                 lambda v: A.boolean(v))}
FIP_FILTERS = {"id": ("id", str), "tenant_id": ("project_id", str),
               "project_id": ("project_id", str), "description": ("description", str),
               "status": ("status", str), "floating_network_id": ("floating_network_id", str),
               "floating_ip_address": ("floating_ip_address", str),
               "port_id": ("port_id", str), "fixed_ip_address": ("fixed_ip_address", str),
               "router_id": ("router_id", str)}
SORTS = {
    "router": {"id": "id", "name": "name", "status": "status", "tenant_id": "project_id",
               "project_id": "project_id", "created_at": "created_at",
               "updated_at": "updated_at", "admin_state_up": "admin_state_up"},
    "floatingip": {"id": "id", "tenant_id": "project_id", "project_id": "project_id",
                   "floating_ip_address": "floating_ip_address", "status": "status",
                   "created_at": "created_at", "updated_at": "updated_at",
                   "floating_network_id": "floating_network_id", "router_id": "router_id",
                   "port_id": "port_id", "fixed_ip_address": "fixed_ip_address"},
    "security_group": {"id": "id", "name": "name", "tenant_id": "project_id",
                       "project_id": "project_id", "created_at": "created_at",
                       "updated_at": "updated_at"},
    "security_group_rule": {"id": "id", "tenant_id": "project_id", "project_id": "project_id",
                            "direction": "direction", "ethertype": "ethertype",
                            "protocol": "protocol", "created_at": "created_at",
                            "security_group_id": "security_group_id",
                            "port_range_min": "port_range_min"},
    "subnetpool": {"id": "id", "name": "name", "tenant_id": "project_id",
                   "project_id": "project_id", "created_at": "created_at",
                   "ip_version": "ip_version"},
}


class L3Mixin:
    def l3_filters(self, kind):
        from pocketstack.network.subnetpools import POOL_FILTERS

        return {"router": ROUTER_FILTERS, "floatingip": FIP_FILTERS,
                "subnetpool": POOL_FILTERS}[kind]

    def sort_keys_of(self, kind: str) -> dict:
        from pocketstack.network.core import SORT_KEYS

        return SORT_KEYS.get(kind) or SORTS[kind]

    def listing_more(self, kind: str, ctx):
        if kind == "router":
            return R, self.render_routers, None
        if kind == "floatingip":
            return FIP, self.render_floatingips, None
        if kind == "security_group":
            if ctx.project_id:
                self.ensure_default_security_group(ctx.project_id)
            return models.security_group, self.render_groups, None
        if kind == "security_group_rule":
            if ctx.project_id:
                self.ensure_default_security_group(ctx.project_id)
            return models.security_group_rule, self.render_rules, None
        if kind == "subnetpool":
            return models.subnetpool, lambda s, rows: [render.subnetpool(r) for r in rows], None
        raise KeyError(kind)

    # -- routers -----------------------------------------------------------

    def render_routers(self, s, rows: list[dict]) -> list[dict]:
        gw_ports = [r["gw_port_id"] for r in rows if r["gw_port_id"]]
        fixed = {}
        if gw_ports:
            fixed = dict(s.execute(sa.select(P.c.id, P.c.fixed_ips).where(
                P.c.id.in_(gw_ports))).all())
        return [render.router(r, fixed.get(r["gw_port_id"])) for r in rows]

    def get_router(self, ctx: RequestContext, id: str) -> dict:
        with self.db.reader() as s:
            return self.render_routers(s, [self.fetch(s, ctx, "router", R, id)])[0]

    def list_routers(self, ctx, filters=None, **page) -> list:
        return self.list_page(ctx, "router", filters, **page)[0]

    def _gateway_info(self, ctx, info) -> dict | None:
        if info is None or info == {}:
            return None
        if not isinstance(info, dict) or "network_id" not in info or \
                set(info) - {"network_id", "enable_snat", "external_fixed_ips"}:
            raise errors.BadRequest("Invalid input for external_gateway_info. Reason: "
                                    "Validation of dictionary's keys failed.",
                                    kind="HTTPBadRequest")
        try:
            out = {"network_id": A.uuid_str(info["network_id"])}
            if "enable_snat" in info:
                out["enable_snat"] = A.boolean(info["enable_snat"])
            if info.get("external_fixed_ips"):
                out["external_fixed_ips"] = A.list_of(A.dict_value)(info["external_fixed_ips"])
        except A.Invalid as e:
            raise A.bad_input("external_gateway_info", str(e)) from None
        if "enable_snat" in out and not ctx.is_admin and out["enable_snat"] is False:
            raise nerr.policy_denied("create_router:external_gateway_info:enable_snat")
        if "external_fixed_ips" in out and not ctx.is_admin:
            raise nerr.policy_denied("create_router:external_gateway_info:external_fixed_ips")
        return out

    def _set_gateway(self, s, ctx, router: dict, info: dict | None) -> dict:
        """Change a router's gateway in the transaction; returns column changes."""
        changes = {}
        old_port = router.get("gw_port_id")
        if info is not None and old_port and info["network_id"] == router["gw_network_id"]:
            if "enable_snat" in info:
                changes["enable_snat"] = info["enable_snat"]
            if "external_fixed_ips" not in info:
                return changes
        if old_port:
            if info is None or info["network_id"] != router["gw_network_id"]:
                if s.execute(sa.select(FIP.c.id).where(FIP.c.router_id == router["id"])
                             .limit(1)).first():
                    raise nerr.conflict("RouterExternalGatewayInUseByFloatingIp",
                                        f"Gateway cannot be updated for router {router['id']}, "
                                        "since a gateway to external network "
                                        f"{router['gw_network_id']} is required by one or "
                                        "more floating IPs.")
            self._delete_port_rows(s, old_port)
            changes.update(gw_port_id=None, gw_network_id=None)
        if info is None:
            changes["enable_snat"] = True
            return changes
        net = s.execute(sa.select(N).where(N.c.id == info["network_id"])).mappings().first()
        if net is None:
            raise nerr.not_found("network", info["network_id"])
        if not net["external"]:
            raise errors.BadRequest(f"Bad router request: Network {net['id']} is not an "
                                    "external network.", kind="BadRequest")
        port = self._service_port(s, ctx, dict(net), "", GATEWAY, router["id"],
                                  info.get("external_fixed_ips"))
        changes.update(gw_port_id=port["id"], gw_network_id=net["id"],
                       enable_snat=info.get("enable_snat", True))
        return changes

    def _service_port(self, s, ctx, net: dict, project: str, owner: str, device_id: str,
                      fixed_ips: list[dict] | None, port_id: str | None = None) -> dict:
        """Insert a port the cloud owns (gateway, interface, floating IP) in ``s``."""
        port_id = port_id or str(uuid.uuid4())
        subnets = [dict(r) for r in s.execute(sa.select(S).where(
            S.c.network_id == net["id"]).order_by(S.c.created_at, S.c.id)).mappings()]
        admin = RequestContext.internal_admin()
        requested = None
        if fixed_ips:
            requested = self._requested_ips(s, admin, net, fixed_ips, owner, subnets)
        mac = self.generate_mac()
        rows, fixed = self._allocate(s, net, port_id, mac, requested, subnets, owner)
        if owner == FIP_OWNER:
            v4 = [f for f in fixed if ipaddress.ip_address(f["ip_address"]).version == 4]
            if not v4:
                raise errors.BadRequest(f"Bad floatingip request: Network {net['id']} does "
                                        "not contain any IPv4 subnet", kind="BadRequest")
        now = self.now()
        port = {"id": port_id, "network_id": net["id"], "project_id": project, "name": "",
                "description": "", "mac_address": mac, "admin_state_up": True,
                "status": "ACTIVE", "device_id": device_id, "device_owner": owner,
                "port_security_enabled": False, "security_groups": [],
                "allowed_address_pairs": [], "extra_dhcp_opts": [], "host_id": "",
                "vnic_type": "normal", "profile": {}, "vif_type": "unbound", "vif_details": {},
                "fixed_ips": fixed, "tags": [], "created_at": now, "updated_at": now,
                "revision_number": 1}
        s.execute(P.insert().values(**port))
        if rows:
            s.execute(IPA.insert(), rows)
        return port

    def _delete_port_rows(self, s, port_id: str) -> dict | None:
        row = s.execute(sa.select(P).where(P.c.id == port_id)).mappings().first()
        if row is None:
            return None
        subnets = {x["id"]: dict(x) for x in s.execute(sa.select(S).where(
            S.c.network_id == row["network_id"])).mappings()}
        self._release(s, subnets, row["fixed_ips"])
        s.execute(models.port_security_group.delete().where(
            models.port_security_group.c.port_id == port_id))
        s.execute(models.tag.delete().where(models.tag.c.resource_id == port_id))
        s.execute(P.delete().where(P.c.id == port_id))
        return dict(row)

    def _check_routes(self, s, router_id: str, routes: list[dict]) -> list[dict]:
        cidrs = [ipaddress.ip_network(c) for c in s.execute(sa.select(S.c.cidr).join(
            IPA, IPA.c.subnet_id == S.c.id).join(P, P.c.id == IPA.c.port_id).where(
            P.c.device_id == router_id, P.c.device_owner.in_((INTERFACE, GATEWAY)))).scalars()]
        out = []
        for route in routes:
            if set(route) != {"destination", "nexthop"}:
                raise errors.BadRequest(f"Invalid input for routes. Reason: Invalid data "
                                        f"format for hostroute: '{route}'.",
                                        kind="HTTPBadRequest")
            try:
                dest, hop = A.cidr(route["destination"]), A.ip_address(route["nexthop"])
            except A.Invalid as e:
                raise A.bad_input("routes", str(e)) from None
            if not any(ipaddress.ip_address(hop) in c for c in cidrs):
                raise errors.BadRequest(f"Invalid format for routes: {route}, the nexthop "
                                        "is not connected with router", kind="InvalidRoutes")
            item = {"destination": dest, "nexthop": hop}
            if item not in out:
                out.append(item)
        return out

    def create_router(self, ctx: RequestContext, body: dict) -> dict:
        data = A.convert("router", ROUTER_ATTRS, {"router": body})
        project = self.owner_for(ctx, data)
        info = self._gateway_info(ctx, data.get("external_gateway_info"))
        router_id = str(uuid.uuid4())

        def txn(s):
            self.check_quota(s, project, "router")
            now = self.now()
            row = {"id": router_id, "project_id": project, "name": data["name"],
                   "description": data["description"], "admin_state_up":
                   data["admin_state_up"], "status": "ACTIVE", "gw_port_id": None,
                   "gw_network_id": None, "enable_snat": True, "routes": [],
                   "tags": data.get("tags") or [], "created_at": now, "updated_at": now,
                   "revision_number": 1}
            s.execute(R.insert().values(**row))
            if info is not None:
                changes = self._set_gateway(s, ctx, row, info)
                s.execute(R.update().where(R.c.id == router_id).values(**changes))
                row.update(changes)
            if data.get("routes"):
                raise errors.BadRequest("Invalid format for routes: the nexthop is not "
                                        "connected with router", kind="InvalidRoutes")
            self.set_tags_rows(s, router_id, row["tags"])
            return self.render_routers(s, [row])[0]

        router = self.run(txn)
        self.notify("router_created", router)
        return router

    def update_router(self, ctx: RequestContext, id: str, body: dict) -> dict:
        data = A.convert("router", ROUTER_ATTRS, {"router": body}, update=True)
        gateway_given = "external_gateway_info" in data
        info = self._gateway_info(ctx, data.get("external_gateway_info")) \
            if gateway_given else None

        def txn(s):
            row = self.fetch(s, ctx, "router", R, id, lock=True)
            changes = {k: data[k] for k in ("name", "description", "admin_state_up")
                       if k in data}
            if gateway_given:
                changes.update(self._set_gateway(s, ctx, row, info))
            if "routes" in data:
                changes["routes"] = self._check_routes(s, id, data["routes"] or [])
            if changes:
                changes.update(revision_number=row["revision_number"] + 1,
                               updated_at=self.now())
                s.execute(R.update().where(R.c.id == id).values(**changes))
                row.update(changes)
            return self.render_routers(s, [row])[0]

        router = self.run(txn)
        self.notify("router_updated", router)
        return router

    def delete_router(self, ctx: RequestContext, id: str) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "router", R, id, lock=True)
            if s.execute(sa.select(P.c.id).where(P.c.device_id == id,
                                                 P.c.device_owner == INTERFACE)
                         .limit(1)).first():
                raise nerr.conflict("RouterInUse", f"Router {id} still has ports")
            if s.execute(sa.select(FIP.c.id).where(FIP.c.router_id == id).limit(1)).first():
                raise nerr.conflict("RouterInUse", f"Router {id} still has ports")
            if row["gw_port_id"]:
                self._delete_port_rows(s, row["gw_port_id"])
            s.execute(models.tag.delete().where(models.tag.c.resource_id == id))
            s.execute(models.auto_allocated_topology.update().where(
                models.auto_allocated_topology.c.router_id == id).values(router_id=None))
            s.execute(R.delete().where(R.c.id == id))
            return render.router(row, [])

        router = self.run(txn)
        self.notify("router_deleted", router)

    def _interface_info(self, router: dict, port: dict, subnet_id: str | None = None) -> dict:
        subnet_ids = [f["subnet_id"] for f in port["fixed_ips"]]
        return {"id": router["id"], "tenant_id": router["project_id"],
                "project_id": router["project_id"],
                "subnet_id": subnet_id or (subnet_ids[0] if subnet_ids else None),
                "subnet_ids": subnet_ids, "port_id": port["id"],
                "network_id": port["network_id"]}

    def add_router_interface(self, ctx: RequestContext, router_id: str, body: dict) -> dict:
        if not isinstance(body, dict) or not ({"subnet_id", "port_id"} & set(body)):
            raise errors.BadRequest("Bad router request: Either subnet_id or port_id must be "
                                    "specified.", kind="BadRequest")
        if "subnet_id" in body and "port_id" in body:
            raise errors.BadRequest("Bad router request: Cannot specify both subnet-id and "
                                    "port-id.", kind="BadRequest")
        events = {}

        def txn(s):
            router = self.fetch(s, ctx, "router", R, router_id, lock=True)
            if router["project_id"] != ctx.project_id and not ctx.is_admin:
                raise nerr.policy_denied("add_router_interface")
            existing = s.execute(sa.select(S.c.id, S.c.cidr).join(
                IPA, IPA.c.subnet_id == S.c.id).join(P, P.c.id == IPA.c.port_id).where(
                P.c.device_id == router_id, P.c.device_owner == INTERFACE)).all()
            if "port_id" in body:
                port = self.fetch(s, ctx, "port", P, body["port_id"], lock=True)
                if port["device_id"] or port["device_owner"]:
                    raise nerr.conflict("PortInUse", f"Unable to complete operation on port "
                                        f"{port['id']} for network {port['network_id']}. Port "
                                        f"already has an attached device {port['device_id']}.")
                if not port["fixed_ips"]:
                    raise errors.BadRequest("Bad router request: Router port must have at "
                                            "least one fixed IP.", kind="BadRequest")
                for fixed in port["fixed_ips"]:
                    self._check_overlap(s, router_id, existing, fixed["subnet_id"])
                s.execute(P.update().where(P.c.id == port["id"]).values(
                    device_id=router_id, device_owner=INTERFACE, status="ACTIVE",
                    revision_number=port["revision_number"] + 1, updated_at=self.now()))
                port.update(device_id=router_id, device_owner=INTERFACE, status="ACTIVE")
                events["router"] = self.render_routers(s, [router])[0]
                return self._interface_info(router, port), port
            subnet = self.fetch(s, ctx, "subnet", S, body["subnet_id"])
            net = self.fetch(s, ctx, "network", N, subnet["network_id"])
            if not ctx.is_admin and net["project_id"] != ctx.project_id and not net["shared"]:
                raise nerr.not_found("subnet", subnet["id"])
            if not subnet["gateway_ip"]:
                raise errors.BadRequest("Bad router request: Subnet for router interface must "
                                        "have a gateway IP.", kind="BadRequest")
            self._check_overlap(s, router_id, existing, subnet["id"])
            port = self._service_port(s, ctx, net, router["project_id"], INTERFACE, router_id,
                                      [{"subnet_id": subnet["id"],
                                        "ip_address": subnet["gateway_ip"]}])
            events["router"] = self.render_routers(s, [router])[0]
            return self._interface_info(router, port, subnet["id"]), port

        info, port = self.run(txn)
        self.notify("router_interface_added", events["router"], render.port(port))
        return info

    def _check_overlap(self, s, router_id: str, existing, subnet_id: str) -> None:
        cidr = s.execute(sa.select(S.c.cidr).where(S.c.id == subnet_id)).scalar()
        for other_id, other_cidr in existing:
            if other_id == subnet_id:
                raise errors.BadRequest(f"Bad router request: Router already has a port on "
                                        f"subnet {subnet_id}.", kind="BadRequest")
            if ipaddress.ip_network(other_cidr).overlaps(ipaddress.ip_network(cidr)):
                raise errors.BadRequest(f"Bad router request: Cidr {cidr} of subnet {subnet_id} "
                                        f"overlaps with cidr {other_cidr} of subnet {other_id}.",
                                        kind="BadRequest")

    def remove_router_interface(self, ctx: RequestContext, router_id: str, body: dict) -> dict:
        if not isinstance(body, dict) or not ({"subnet_id", "port_id"} & set(body)):
            raise errors.BadRequest("Bad router request: Either subnet_id or port_id must be "
                                    "specified.", kind="BadRequest")
        events = {}

        def txn(s):
            router = self.fetch(s, ctx, "router", R, router_id, lock=True)
            if "port_id" in body:
                port = s.execute(sa.select(P).where(
                    P.c.id == body["port_id"], P.c.device_id == router_id,
                    P.c.device_owner == INTERFACE)).mappings().first()
                if port is None:
                    raise errors.NotFound(f"Router {router_id} does not have an interface with "
                                          f"id {body['port_id']}", kind="RouterInterfaceNotFound")
            else:
                port = s.execute(sa.select(P).join(IPA, IPA.c.port_id == P.c.id).where(
                    IPA.c.subnet_id == body["subnet_id"], P.c.device_id == router_id,
                    P.c.device_owner == INTERFACE)).mappings().first()
                if port is None:
                    raise errors.NotFound(f"Router {router_id} has no interface on subnet "
                                          f"{body['subnet_id']}",
                                          kind="RouterInterfaceNotFoundForSubnet")
            port = dict(port)
            subnet_ids = [f["subnet_id"] for f in port["fixed_ips"]]
            used = s.execute(sa.select(FIP.c.id).join(IPA, IPA.c.port_id == FIP.c.port_id).where(
                FIP.c.router_id == router_id, IPA.c.subnet_id.in_(subnet_ids)).limit(1)).first()
            if used:
                raise nerr.conflict("RouterInterfaceInUseByFloatingIP",
                                    f"Router interface for subnet {subnet_ids[0]} on router "
                                    f"{router_id} cannot be deleted, as it is required by one "
                                    "or more floating IPs.")
            self._delete_port_rows(s, port["id"])
            events["router"] = self.render_routers(s, [router])[0]
            return self._interface_info(router, port, body.get("subnet_id")), port

        info, port = self.run(txn)
        self.notify("router_interface_removed", events["router"], render.port(port))
        return info

    # -- floating IPs ------------------------------------------------------

    def render_floatingips(self, s, rows: list[dict]) -> list[dict]:
        port_ids = [r["port_id"] for r in rows if r["port_id"]]
        ports = {}
        if port_ids:
            ports = {p["id"]: p for p in s.execute(sa.select(
                P.c.id, P.c.name, P.c.network_id, P.c.mac_address, P.c.admin_state_up,
                P.c.status, P.c.device_id, P.c.device_owner).where(
                P.c.id.in_(port_ids))).mappings()}
        out = []
        for r in rows:
            p = ports.get(r["port_id"])
            details = None if p is None else {
                "name": p["name"], "network_id": p["network_id"],
                "mac_address": p["mac_address"], "admin_state_up": p["admin_state_up"],
                "status": p["status"], "device_id": p["device_id"],
                "device_owner": p["device_owner"]}
            out.append(render.floatingip(r, details))
        return out

    def get_floatingip(self, ctx: RequestContext, id: str) -> dict:
        with self.db.reader() as s:
            return self.render_floatingips(s, [self.fetch(s, ctx, "floatingip", FIP, id)])[0]

    def list_floatingips(self, ctx, filters=None, **page) -> list:
        return self.list_page(ctx, "floatingip", filters, **page)[0]

    def _association(self, s, ctx, project: str, floating_network_id: str, port_id: str,
                     fixed_ip: str | None, fip_id: str) -> dict:
        """(port_id, fixed_ip_address, router_id) for associating with ``port_id``."""
        port = s.execute(sa.select(P).where(P.c.id == port_id)).mappings().first()
        if port is None or (not ctx.is_admin and port["project_id"] != project):
            raise nerr.not_found("port", port_id)
        v4 = [f for f in port["fixed_ips"]
              if ipaddress.ip_address(f["ip_address"]).version == 4]
        if fixed_ip is not None:
            chosen = next((f for f in v4 if f["ip_address"] == fixed_ip), None)
            if chosen is None:
                raise errors.BadRequest(f"Bad floatingip request: Port {port_id} does not have "
                                        f"fixed ip {fixed_ip}.", kind="BadRequest")
        else:
            if not v4:
                raise errors.BadRequest(f"Bad floatingip request: Port {port_id} does not have "
                                        "any IPv4 address.", kind="BadRequest")
            if len(v4) > 1:
                raise errors.BadRequest(f"Bad floatingip request: Port {port_id} has multiple "
                                        "fixed IPv4 addresses.  Must provide a specific IPv4 "
                                        "address when assigning a floating IP.",
                                        kind="BadRequest")
            chosen = v4[0]
        taken = s.execute(sa.select(FIP.c.id).where(
            FIP.c.port_id == port_id, FIP.c.fixed_ip_address == chosen["ip_address"],
            FIP.c.id != fip_id)).scalar()
        if taken:
            raise nerr.conflict("FloatingIPPortAlreadyAssociated",
                                f"Cannot associate floating IP with port {port_id} using fixed "
                                f"IP {chosen['ip_address']}, as that fixed IP already has a "
                                f"floating IP on external network {floating_network_id}.")
        router = s.execute(sa.select(R.c.id).join(P, P.c.device_id == R.c.id).join(
            IPA, IPA.c.port_id == P.c.id).where(
            R.c.gw_network_id == floating_network_id, P.c.device_owner == INTERFACE,
            IPA.c.subnet_id == chosen["subnet_id"]).order_by(R.c.created_at)).scalar()
        if router is None:
            raise errors.NotFound(f"External network {floating_network_id} is not reachable "
                                  f"from subnet {chosen['subnet_id']}.  Therefore, cannot "
                                  f"associate Port {port_id} with a Floating IP.",
                                  kind="ExternalGatewayForFloatingIPNotFound")
        return {"port_id": port_id, "fixed_ip_address": chosen["ip_address"],
                "router_id": router}

    def create_floatingip(self, ctx: RequestContext, body: dict) -> dict:
        data = A.convert("floatingip", FIP_ATTRS, {"floatingip": body})
        project = self.owner_for(ctx, data)
        if data.get("floating_ip_address") is not None:
            self.enforce(ctx, "create_floatingip:floating_ip_address", {"project_id": project})
        fip_id = str(uuid.uuid4())

        def txn(s):
            net = s.execute(sa.select(N).where(
                N.c.id == data["floating_network_id"])).mappings().first()
            if net is None or not (net["external"] or ctx.is_admin) or not net["external"]:
                if net is None:
                    raise nerr.not_found("network", data["floating_network_id"])
                raise errors.BadRequest(f"Bad floatingip request: Network "
                                        f"{data['floating_network_id']} is not a valid external "
                                        "network.", kind="BadRequest")
            self.check_quota(s, project, "floatingip")
            fixed = None  # any IPv4 subnet of the network (service types respected)
            if data.get("floating_ip_address") or data.get("subnet_id"):
                entry = {}
                if data.get("subnet_id"):
                    entry["subnet_id"] = data["subnet_id"]
                if data.get("floating_ip_address"):
                    entry["ip_address"] = data["floating_ip_address"]
                fixed = [entry]
            elif s.execute(sa.select(S.c.id).where(S.c.network_id == net["id"],
                                                   S.c.ip_version == 4).limit(1)).first() is None:
                raise errors.BadRequest(f"Bad floatingip request: Network {net['id']} does "
                                        "not contain any IPv4 subnet", kind="BadRequest")
            port = self._service_port(s, ctx, dict(net), "", FIP_OWNER, fip_id, fixed)
            address = next(f["ip_address"] for f in port["fixed_ips"]
                           if ipaddress.ip_address(f["ip_address"]).version == 4)
            assoc = {"port_id": None, "fixed_ip_address": None, "router_id": None}
            if data.get("port_id"):
                assoc = self._association(s, ctx, project, net["id"], data["port_id"],
                                          data.get("fixed_ip_address"), fip_id)
            now = self.now()
            row = {"id": fip_id, "project_id": project, "floating_network_id": net["id"],
                   "floating_ip_address": address, "floating_port_id": port["id"],
                   **assoc, "status": "ACTIVE" if assoc["port_id"] else "DOWN",
                   "description": data["description"], "tags": data.get("tags") or [],
                   "created_at": now, "updated_at": now, "revision_number": 0}
            s.execute(FIP.insert().values(**row))
            self.set_tags_rows(s, fip_id, row["tags"])
            return self.render_floatingips(s, [row])[0]

        fip = self.run(txn)
        self.notify("floatingip_created", fip)
        return fip

    def update_floatingip(self, ctx: RequestContext, id: str, body: dict) -> dict:
        data = A.convert("floatingip", FIP_ATTRS, {"floatingip": body}, update=True)

        def txn(s):
            row = self.fetch(s, ctx, "floatingip", FIP, id, lock=True)
            changes = {}
            if "description" in data:
                changes["description"] = data["description"]
            if "port_id" in data:
                if data["port_id"] is None:
                    changes.update(port_id=None, fixed_ip_address=None, router_id=None,
                                   status="DOWN")
                else:
                    changes.update(self._association(
                        s, ctx, row["project_id"], row["floating_network_id"], data["port_id"],
                        data.get("fixed_ip_address"), id))
                    changes["status"] = "ACTIVE"
            if changes:
                changes.update(revision_number=row["revision_number"] + 1,
                               updated_at=self.now())
                s.execute(FIP.update().where(FIP.c.id == id).values(**changes))
                row.update(changes)
            return self.render_floatingips(s, [row])[0]

        fip = self.run(txn)
        self.notify("floatingip_updated", fip)
        return fip

    def delete_floatingip(self, ctx: RequestContext, id: str) -> None:
        def txn(s):
            row = self.fetch(s, ctx, "floatingip", FIP, id, lock=True)
            s.execute(FIP.delete().where(FIP.c.id == id))
            self._delete_port_rows(s, row["floating_port_id"])
            s.execute(models.tag.delete().where(models.tag.c.resource_id == id))
            return render.floatingip(row)

        fip = self.run(txn)
        self.notify("floatingip_deleted", fip)

    def disassociate_port_floatingips(self, s, port_id: str) -> None:
        s.execute(FIP.update().where(FIP.c.port_id == port_id).values(
            port_id=None, fixed_ip_address=None, router_id=None, status="DOWN",
            updated_at=self.now()))
