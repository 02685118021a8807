"""The proxy APIs of microversions 2.1-2.35: images and networks seen through compute.

Microversion 2.36 removed them (404 from 2.36 on); before it they answer from
the image and networking services, in Nova's shapes.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams

from pocketstack.common import errors
from pocketstack.common.http import Request
from pocketstack.compute.views import links

STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "deleted": "DELETED",
          "pending_delete": "DELETED", "killed": "ERROR", "deactivated": "ERROR",
          "uploading": "SAVING", "importing": "SAVING"}


def register(api, service, helpers) -> None:
    conductor = service.conductor

    def old_only(req: Request) -> None:
        if req.state["version"] >= (2, 36):
            raise errors.NotFound("The resource could not be found.")

    def image_view(req: Request, img: dict, detail: bool) -> dict:
        out = {"id": img["id"], "name": img.get("name"),
               "links": links(req.base_url, "images", img["id"])
               + [{"rel": "alternate", "type": "application/vnd.openstack.image",
                   "href": f"{req.base_url.rsplit('/', 1)[0]}/image/images/{img['id']}"}]}
        if detail:
            props = {k: v for k, v in img.items() if k not in (
                "id", "name", "status", "size", "min_disk", "min_ram", "created_at",
                "updated_at", "visibility", "owner", "protected", "os_hidden", "checksum",
                "os_hash_algo", "os_hash_value", "disk_format", "container_format", "tags",
                "virtual_size", "file", "schema", "self", "direct_url", "locations",
                "stores") and isinstance(v, (str, int, float, bool))}
            out.update({"status": STATUS.get(img.get("status"), "UNKNOWN"),
                        "progress": 100 if img.get("status") == "active" else 25,
                        "minDisk": img.get("min_disk") or 0, "minRam": img.get("min_ram") or 0,
                        "created": img.get("created_at"), "updated": img.get("updated_at"),
                        "metadata": {k: str(v) for k, v in props.items()},
                        "OS-EXT-IMG-SIZE:size": img.get("size")})
            if props.get("instance_uuid"):
                out["server"] = {"id": props["instance_uuid"], "links": links(
                    req.base_url, "servers", props["instance_uuid"])}
        return out

    def image_list(req: Request, detail: bool) -> dict:
        old_only(req)
        manager = conductor.images.manager
        if manager is None:
            return {"images": []}
        query = QueryParams([(k, v) for k, v in req.query.multi_items()
                             if k in ("limit", "marker", "name", "status")])
        images, _ = manager.list(req.context, query)
        return {"images": [image_view(req, i, detail) for i in images]}

    @api.route("/v2.1/images", "GET")
    def images_index(req: Request):
        return image_list(req, False)

    @api.route("/v2.1/images/detail", "GET")
    def images_detail(req: Request):
        return image_list(req, True)

    @api.route("/v2.1/images/{image_id}", "GET")
    def images_show(req: Request):
        old_only(req)
        manager = conductor.images.manager
        try:
            img = manager.get(req.context, req.path_params["image_id"]) if manager else None
        except errors.NotFound:
            img = None
        if img is None:
            raise errors.NotFound("Image not found.")
        return {"image": image_view(req, img, True)}

    @api.route("/v2.1/images/{image_id}", "DELETE", status=204)
    def images_delete(req: Request):
        old_only(req)
        manager = conductor.images.manager
        if manager is None:
            raise errors.NotFound("Image not found.")
        try:
            manager.delete(req.context, req.path_params["image_id"])
        except errors.NotFound:
            raise errors.NotFound("Image not found.") from None

    def network_view(net: dict) -> dict:
        return {"id": net["id"], "label": net.get("name"), "cidr": None, "cidr_v6": None,
                "bridge": None, "bridge_interface": None, "broadcast": None,
                "created_at": net.get("created_at"), "deleted": False, "deleted_at": None,
                "dhcp_start": None, "dns1": None, "dns2": None, "gateway": None,
                "gateway_v6": None, "host": None, "injected": None, "multi_host": None,
                "netmask": None, "netmask_v6": None, "priority": None,
                "project_id": net.get("project_id"), "rxtx_base": None,
                "updated_at": net.get("updated_at"), "vlan": None, "vpn_private_address": None,
                "vpn_public_address": None, "vpn_public_port": None, "mtu": net.get("mtu"),
                "dhcp_server": None, "enable_dhcp": None, "share_address": None}

    @api.route("/v2.1/os-networks", "GET")
    def networks_index(req: Request):
        old_only(req)
        manager = conductor.network.manager
        if manager is None:
            return {"networks": []}
        nets = manager.list_networks(req.context, {})
        return {"networks": [network_view(dict(n)) for n in nets]}

    @api.route("/v2.1/os-networks/{network_id}", "GET")
    def networks_show(req: Request):
        old_only(req)
        manager = conductor.network.manager
        try:
            net = manager.get_network(req.context, req.path_params["network_id"]) \
                if manager else None
        except errors.NotFound:
            net = None
        if net is None:
            raise errors.NotFound("Network could not be found.")
        return {"network": network_view(dict(net))}
