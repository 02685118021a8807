"""Compute's one place of contact with the networking and image services.

Both are reached in-process through their managers (``cloud.services[...]
.manager``). Everything compute needs from them goes through the two
adapters below, so a change of their interface is a change here only.
A cloud without the networking service boots servers without ports
(``networks: none``/``auto``); without the image service no image can be
verified, so image boots are refused.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

from pocketstack.common import errors
from pocketstack.common.context import RequestContext

LOG = logging.getLogger(__name__)


def as_context(ctx: RequestContext | dict | None, project_id: str | None = None,
               user_id: str | None = None) -> RequestContext:
    """A context acting for a project (messages carry contexts as dicts)."""
    if isinstance(ctx, RequestContext):
        base = ctx
    else:
        data = dict(ctx or {})
        base = RequestContext(request_id=data.get("request_id") or f"req-{uuid.uuid4()}",
                              user_id=data.get("user_id"), project_id=data.get("project_id"),
                              roles=list(data.get("roles") or []),
                              internal=bool(data.get("internal")))
    if project_id is None or project_id == base.project_id:
        return base
    return RequestContext(request_id=base.request_id, user_id=user_id or base.user_id,
                          project_id=project_id, roles=["admin", "member", "reader"],
                          internal=True)


def service_context(ctx: RequestContext | dict | None, project_id: str | None,
                    user_id: str | None = None) -> RequestContext:
    """Compute acting for a project in another service (port binding is admin-only)."""
    base = as_context(ctx)
    return RequestContext(request_id=base.request_id, user_id=user_id or base.user_id,
                          project_id=project_id, roles=["admin", "member", "reader"],
                          internal=True)


def context_dict(ctx: RequestContext) -> dict:
    return {"request_id": ctx.request_id, "user_id": ctx.user_id,
            "project_id": ctx.project_id, "roles": list(ctx.roles),
            "internal": ctx.internal, "is_admin": ctx.is_admin}


def _plain(obj: Any) -> Any:
    if obj is None or isinstance(obj, dict):
        return obj
    if hasattr(obj, "_mapping"):
        return dict(obj._mapping)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)


class ImageAdapter:
    def __init__(self, cloud):
        self.cloud = cloud

    @property
    def manager(self):
        service = self.cloud.services.get("image")
        return getattr(service, "manager", None) if service is not None else None

    def get(self, ctx: RequestContext, image_id: str) -> dict:
        """The image as compute needs it; 400 when it is unknown or not visible."""
        manager = self.manager
        if manager is None:
            raise errors.BadRequest(f"Image {image_id} could not be found.")
        try:
            image = _plain(manager.get(ctx, image_id))
        except errors.NotFound:
            raise errors.BadRequest(f"Image {image_id} could not be found.") from None
        if image is None:
            raise errors.BadRequest(f"Image {image_id} could not be found.")
        return self.normalise(image)

    @staticmethod
    def normalise(image: dict) -> dict:
        props = dict(image.get("properties") or {})
        known = ("id", "name", "status", "disk_format", "container_format", "size",
                 "min_disk", "min_ram", "visibility", "owner", "properties", "tags",
                 "checksum", "created_at", "updated_at", "location", "virtual_size",
                 "protected", "os_hidden", "os_hash_algo", "os_hash_value", "file",
                 "schema", "self", "direct_url", "locations", "stores")
        for key, value in image.items():
            if key not in known and isinstance(value, (str, int, float, bool)):
                props.setdefault(key, value)
        return {"id": image["id"], "name": image.get("name"), "status": image.get("status"),
                "disk_format": image.get("disk_format"),
                "container_format": image.get("container_format"),
                "size": image.get("size") or 0, "min_disk": image.get("min_disk") or 0,
                "min_ram": image.get("min_ram") or 0,
                "properties": {k: v for k, v in props.items() if isinstance(k, str)}}

    def create_snapshot(self, ctx: RequestContext, name: str, instance: dict,
                        base: dict | None, metadata: dict) -> str:
        manager = self.manager
        if manager is None:
            raise errors.ServiceUnavailable("The image service is not available.")
        props = {k: v for k, v in (base or {}).get("properties", {}).items()
                 if isinstance(v, str)}
        props.update({"instance_uuid": instance["uuid"], "image_type": "snapshot",
                      "base_image_ref": instance.get("image_ref") or "",
                      "owner_project_name": "", "user_id": instance["user_id"]})
        props.update({k: str(v) for k, v in (metadata or {}).items()})
        values = {"name": name, "disk_format": (base or {}).get("disk_format") or "raw",
                  "container_format": (base or {}).get("container_format") or "bare",
                  "visibility": "private", "min_disk": instance["flavor"].get("disk", 0),
                  "min_ram": (base or {}).get("min_ram") or 0, **props}
        image = _plain(manager.create(ctx, values))
        return image["id"]

    def upload(self, ctx: RequestContext, image_id: str, data: bytes) -> None:
        manager = self.manager
        if manager is None:
            return
        result = manager.upload(ctx, image_id, _chunks(data), size=len(data)) \
            if _is_async(manager.upload) else manager.upload(ctx, image_id, data)
        if hasattr(result, "__await__"):
            import asyncio

            asyncio.run(_await(result))


def _is_async(fn) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


async def _chunks(data: bytes):
    yield data


async def _await(awaitable):
    return await awaitable


class NetworkAdapter:
    def __init__(self, cloud):
        self.cloud = cloud

    @property
    def manager(self):
        service = self.cloud.services.get("network")
        return getattr(service, "manager", None) if service is not None else None

    def _call(self, names: tuple[str, ...], *args, **kwargs):
        manager = self.manager
        for name in names:
            fn = getattr(manager, name, None)
            if fn is not None:
                return fn(*args, **kwargs)
        raise errors.ServiceUnavailable(f"The networking service does not offer {names[0]}.")

    # -- validation at the API ---------------------------------------------

    def validate(self, ctx: RequestContext, requested: list[dict] | str,
                 security_groups: list[str]) -> None:
        manager = self.manager
        if isinstance(requested, str):
            return
        if requested == [] and manager is not None and len(self.usable_networks(ctx)) > 1:
            raise errors.Conflict("Multiple possible networks found, use a Network ID to be "
                                  "more specific.")
        for req in requested:
            if req.get("port"):
                if manager is None:
                    raise errors.BadRequest(f"Port id {req['port']} could not be found.")
                try:
                    port = _plain(self._call(("get_port",), ctx, req["port"]))
                except errors.NotFound:
                    raise errors.BadRequest(f"Port id {req['port']} could not be found.") \
                        from None
                if port.get("device_id"):
                    raise errors.Conflict(f"Port {req['port']} is still in use.")
            elif req.get("uuid"):
                if manager is None:
                    raise errors.BadRequest(f"Network {req['uuid']} could not be found.")
                try:
                    self._call(("get_network",), ctx, req["uuid"])
                except errors.NotFound:
                    raise errors.BadRequest(f"Network {req['uuid']} could not be found.") \
                        from None
        if manager is not None:
            for name in security_groups:
                self.security_group_id(ctx, name)

    def security_group_id(self, ctx: RequestContext, name: str) -> str:
        try:
            found = self._call(("find_security_group", "get_security_group_by_name"), ctx,
                               name)
        except errors.NotFound:
            found = None
        found = _plain(found) if found is not None else None
        if not found:
            raise errors.BadRequest(f"Security group {name} not found for project "
                                    f"{ctx.project_id}.")
        return found["id"]

    # -- ports ---------------------------------------------------------------

    def allocate(self, ctx: RequestContext, instance: dict, host: str,
                 requested: list[dict] | str, security_groups: list[str]) -> list[dict]:
        """Create or take the server's ports and bind them to ``host``."""
        manager = self.manager
        if manager is None or requested == "none":
            return []
        if requested == []:
            # before 2.37, no networks: the one network the project can use, if any
            usable = self.usable_networks(service_context(ctx, instance["project_id"]))
            if not usable:
                return []
            requested = [{"uuid": usable[0]["id"]}]
        if requested == "auto":
            net = _plain(self._call(("get_auto_allocated_topology",
                                     "auto_allocated_topology"),
                                    service_context(ctx, instance["project_id"]),
                                    instance["project_id"]))
            requested = [{"uuid": net.get("network_id") or net.get("id")}]
        ctx = service_context(ctx, instance["project_id"], instance["user_id"])
        sg_ids = [self.security_group_id(ctx, n) for n in security_groups] \
            if security_groups else None
        created: list[dict] = []
        try:
            for req in requested:
                binding = {"device_id": instance["uuid"], "device_owner": "compute:"
                           + (instance.get("availability_zone") or "nova"),
                           "binding:host_id": host}
                if req.get("port"):
                    port = _plain(self._call(("update_port",), ctx, req["port"], binding))
                    port["_preserve"] = True
                else:
                    body = {"network_id": req["uuid"], "admin_state_up": True,
                            "project_id": instance["project_id"], **binding}
                    if req.get("fixed_ip"):
                        body["fixed_ips"] = [{"ip_address": req["fixed_ip"]}]
                    if sg_ids is not None:
                        body["security_groups"] = sg_ids
                    port = _plain(self._call(("create_port",), ctx, body))
                created.append(port)
        except Exception:
            self.deallocate(ctx, [self.vif(ctx, p) for p in created])
            raise
        return [self.vif(ctx, p) for p in created]

    def usable_networks(self, ctx: RequestContext) -> list[dict]:
        """The project's own and the shared networks, not external ones."""
        try:
            nets = [_plain(n) for n in self._call(("list_networks",), ctx, {})]
        except errors.ApiError:
            return []
        return [n for n in nets if not n.get("router:external")
                and (n.get("project_id") == ctx.project_id or n.get("shared"))]

    def vif(self, ctx: RequestContext, port: dict) -> dict:
        net_id = port.get("network_id")
        try:
            network = _plain(self._call(("get_network",), ctx, net_id))
        except Exception:  # noqa: BLE001 - the label falls back to the id
            network = {}
        subnets: dict[str, dict] = {}
        for ip in port.get("fixed_ips") or []:
            address = ip.get("ip_address")
            version = 6 if address and ":" in address else 4
            subnet_id = ip.get("subnet_id") or ""
            if subnet_id not in subnets:
                try:
                    sub = _plain(self._call(("get_subnet",), ctx, subnet_id))
                except Exception:  # noqa: BLE001 - cidr and gateway are optional
                    sub = {}
                subnets[subnet_id] = {"id": subnet_id, "cidr": sub.get("cidr"),
                                      "gateway": sub.get("gateway_ip"), "ips": []}
            subnets[subnet_id]["ips"].append(
                {"address": address, "type": "fixed", "version": version})
        return {"id": port["id"], "address": port.get("mac_address"),
                "network": {"id": net_id, "label": port.get("_network_name")
                            or network.get("name") or net_id,
                            "subnets": list(subnets.values()),
                            "mtu": network.get("mtu")},
                "devname": ("tap" + port["id"])[:14],
                "vif_type": port.get("binding:vif_type") or "ovs",
                "details": port.get("binding:vif_details") or {},
                "preserve_on_delete": bool(port.get("_preserve")),
                "floating_ips": []}

    def deallocate(self, ctx: RequestContext, network_info: list[dict]) -> None:
        if self.manager is None or not network_info:
            return
        ctx = service_context(ctx, ctx.project_id)
        for vif in network_info:
            try:
                if vif.get("preserve_on_delete"):
                    self._call(("update_port",), ctx, vif["id"],
                               {"device_id": "", "device_owner": "", "binding:host_id": ""})
                else:
                    self._call(("delete_port",), ctx, vif["id"])
            except errors.NotFound:
                pass
            except Exception:  # noqa: BLE001 - a port left behind is logged, delete goes on
                LOG.exception("freeing port %s", vif.get("id"))

    def floating_ips(self, ctx: RequestContext, port_ids: list[str]) -> dict[str, list[str]]:
        """Floating addresses by port (shown in a server's addresses)."""
        manager = self.manager
        if manager is None or not port_ids or not hasattr(manager, "list_floatingips"):
            return {}
        try:
            fips = manager.list_floatingips(service_context(ctx, None), {"port_id": port_ids})
        except Exception:  # noqa: BLE001 - addresses fall back to what is cached
            LOG.exception("reading floating IPs")
            return {}
        out: dict[str, list[str]] = {}
        for fip in fips:
            fip = _plain(fip)
            if fip.get("port_id"):
                out.setdefault(fip["port_id"], []).append(fip["floating_ip_address"])
        return out

    def change_security_group(self, ctx: RequestContext, instance_uuid: str, name: str,
                              add: bool) -> None:
        """Add (or remove) a security group on each port of the instance that has port
        security, as Nova's addSecurityGroup/removeSecurityGroup do."""
        if self.manager is None:
            return
        sg_id = self.security_group_id(ctx, name)
        sctx = service_context(ctx, ctx.project_id)
        for port in self._call(("list_ports",), sctx, {"device_id": [instance_uuid]}):
            port = _plain(port)
            if port.get("port_security_enabled") is False:
                continue
            groups = list(port.get("security_groups") or [])
            if add and sg_id not in groups:
                groups.append(sg_id)
            elif not add and sg_id in groups:
                groups.remove(sg_id)
            else:
                continue
            self._call(("update_port",), sctx, port["id"], {"security_groups": groups})

    def bind_host(self, ctx: RequestContext, network_info: list[dict], host: str) -> None:
        if self.manager is None:
            return
        ctx = service_context(ctx, ctx.project_id)
        for vif in network_info:
            self._call(("update_port",), ctx, vif["id"], {"binding:host_id": host})


def b64decode_ok(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
        return True
    except (ValueError, TypeError):
        return False
