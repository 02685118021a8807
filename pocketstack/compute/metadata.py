"""The metadata service guests reach at 169.254.169.254 (through the metadata proxy).

OpenStack format (``/openstack/<version>/meta_data.json``, ``user_data``,
``network_data.json``, ``vendor_data.json``, ``vendor_data2.json``) and EC2
format (``/<version>/meta-data/...``, ``/<version>/user-data``).

The instance is identified as Neutron's metadata proxy does it: either
``X-Instance-ID`` with ``X-Instance-ID-Signature`` (HMAC-SHA256 of the id
keyed with ``[neutron] metadata_proxy_shared_secret``) or the guest's
address in ``X-Forwarded-For`` plus ``X-Neutron-Network-ID`` (or
``X-Neutron-Router-ID``, any network then). Mounted at ``/metadata``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json

import sqlalchemy as sa
from starlette.responses import Response

from pocketstack.common import errors
from pocketstack.common.http import Api, JSONResponse, Request
from pocketstack.compute import models as m
from pocketstack.compute import server_password

OPENSTACK_VERSIONS = ["2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14", "latest"]
EC2_VERSIONS = ["1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
                "2008-02-01", "2008-09-01", "2009-04-04", "latest"]


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def text(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/plain; charset=UTF-8")


def _error_body(err: errors.ApiError) -> Response:
    return text(f"{err.status} {err.title}\n\n{err.message}\n", err.status)


class MetadataService:
    def __init__(self, compute):
        self.compute = compute
        self.conf = compute.conf
        self.db = compute.db

    # -- who is asking ------------------------------------------------------------

    def instance_for(self, req: Request) -> dict:
        headers = req.headers
        instance_id = headers.get("x-instance-id")
        if instance_id:
            signature = headers.get("x-instance-id-signature", "")
            expected = sign(self.conf.neutron.metadata_proxy_shared_secret or "", instance_id)
            if not hmac.compare_digest(signature, expected):
                raise errors.Forbidden("Invalid proxy request signature.")
            inst = self._by_uuid(instance_id)
            tenant = headers.get("x-tenant-id")
            if inst is None or (tenant and tenant != inst["project_id"]):
                raise errors.NotFound("Instance not found.")
            return inst
        address = (headers.get("x-forwarded-for") or "").split(",")[0].strip()
        network_id = headers.get("x-neutron-network-id")
        if not address:
            raise errors.BadRequest("X-Instance-ID or X-Forwarded-For is required.")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise errors.BadRequest("X-Forwarded-For is not an address.") from None
        inst = self._by_address(address, network_id)
        if inst is None:
            raise errors.NotFound("Instance not found.")
        return inst

    def _by_uuid(self, instance_id: str) -> dict | None:
        with self.db.reader() as s:
            found = s.execute(sa.select(m.instance).where(
                m.instance.c.uuid == instance_id, m.instance.c.deleted.is_(False))).first()
        return dict(found._mapping) if found else None

    def _by_address(self, address: str, network_id: str | None) -> dict | None:
        pattern = f"%{address}%"
        with self.db.reader() as s:
            rows = s.execute(sa.select(m.instance).where(
                m.instance.c.deleted.is_(False),
                sa.cast(m.instance.c.network_info, sa.Text).like(pattern))).all()
        matches = []
        for r in rows:
            inst = dict(r._mapping)
            for vif in inst["network_info"] or []:
                if network_id and vif["network"]["id"] != network_id:
                    continue
                for subnet in vif["network"].get("subnets", []):
                    if any(ip["address"] == address for ip in subnet.get("ips", [])):
                        matches.append(inst)
        return matches[0] if len(matches) == 1 else None

    # -- OpenStack format -----------------------------------------------------------

    def keypairs(self, inst: dict) -> list[dict]:
        if not inst["key_name"]:
            return []
        return [{"name": inst["key_name"], "type": "ssh", "data": inst["key_data"]}]

    def meta_data(self, inst: dict, version: str) -> dict:
        keys = self.keypairs(inst)
        data = {"uuid": inst["uuid"], "meta": inst["meta"] or {},
                "public_keys": {k["name"]: k["data"] for k in keys},
                "keys": keys, "hostname": inst["hostname"], "name": inst["display_name"],
                "launch_index": inst["launch_index"],
                "availability_zone": inst["availability_zone"],
                "project_id": inst["project_id"], "devices": [], "dedicated_cpus": []}
        if version >= "2017-02-22" or version == "latest":
            data["random_seed"] = base64.b64encode(hashlib.sha512(
                inst["uuid"].encode()).digest()).decode()
        return data

    def network_data(self, inst: dict) -> dict:
        links, networks = [], []
        for i, vif in enumerate(inst["network_info"] or []):
            link = vif.get("devname") or f"tap{vif['id'][:11]}"
            links.append({"id": link, "vif_id": vif["id"], "type": vif.get("vif_type", "ovs"),
                          "mtu": vif["network"].get("mtu"),
                          "ethernet_mac_address": vif.get("address")})
            for subnet in vif["network"].get("subnets", []):
                for ip in subnet.get("ips", []):
                    net = {"id": f"network{i}", "link": link, "network_id": vif["network"]["id"],
                           "ip_address": ip["address"],
                           "type": "ipv4" if ip.get("version", 4) == 4 else "ipv6"}
                    cidr = subnet.get("cidr")
                    if cidr:
                        net["netmask"] = str(ipaddress.ip_network(cidr, strict=False).netmask)
                    net["routes"] = [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                                      "gateway": subnet["gateway"]}] \
                        if subnet.get("gateway") else []
                    networks.append(net)
        return {"links": links, "networks": networks, "services": []}

    # -- EC2 format -------------------------------------------------------------------

    def ec2(self, inst: dict) -> dict:
        fixed = [ip["address"] for vif in inst["network_info"] or []
                 for sub in vif["network"].get("subnets", []) for ip in sub.get("ips", [])]
        floating = [f for vif in inst["network_info"] or [] for f in vif.get("floating_ips", [])]
        tree = {
            "ami-id": f"ami-{int(hashlib.md5((inst['image_ref'] or '').encode(), usedforsecurity=False).hexdigest()[:8], 16):08x}",
            "ami-launch-index": str(inst["launch_index"]),
            "ami-manifest-path": "FIXME",
            "block-device-mapping": {"ami": "vda", "root": inst["root_device_name"] or
                                     "/dev/vda"},
            "hostname": inst["hostname"], "instance-action": "none",
            "instance-id": f"i-{inst['id']:08x}",
            "instance-type": inst["flavor"]["name"],
            "local-hostname": inst["hostname"],
            "local-ipv4": fixed[0] if fixed else "",
            "placement": {"availability-zone": inst["availability_zone"] or ""},
            "public-hostname": inst["hostname"],
            "public-ipv4": floating[0] if floating else "",
            "reservation-id": inst["reservation_id"] or "",
            "security-groups": "\n".join(inst["security_groups"] or []),
        }
        if inst["key_name"]:
            tree["public-keys"] = {f"0={inst['key_name']}": {"openssh-key": inst["key_data"]}}
        return tree


def build(compute) -> Api:
    service = MetadataService(compute)
    api = Api(error_body=_error_body)

    def lookup(req: Request) -> dict:
        return service.instance_for(req)

    @api.route("/", "GET", auth=False)
    def root(req: Request):
        return text("\n".join([*EC2_VERSIONS, "openstack"]))

    @api.route("/openstack", "GET", auth=False)
    @api.route("/openstack/", "GET", auth=False)
    def os_versions(req: Request):
        return text("\n".join(OPENSTACK_VERSIONS))

    @api.route("/openstack/{version}", "GET", auth=False)
    @api.route("/openstack/{version}/", "GET", auth=False)
    def os_index(req: Request):
        version = _os_version(req)
        inst = lookup(req)
        items = ["meta_data.json", "password", "vendor_data.json", "network_data.json",
                 "vendor_data2.json"]
        if inst["user_data"]:
            items.append("user_data")
        del version
        return text("\n".join(items))

    @api.route("/openstack/{version}/{item}", ("GET", "POST"), auth=False)
    def os_item(req: Request):
        version = _os_version(req)
        inst = lookup(req)
        item = req.path_params["item"]
        if item == "meta_data.json":
            return JSONResponse(service.meta_data(inst, version))
        if item == "network_data.json":
            return JSONResponse(service.network_data(inst))
        if item in ("vendor_data.json", "vendor_data2.json"):
            return JSONResponse({})
        if item == "user_data":
            if not inst["user_data"]:
                raise errors.NotFound("No user data.")
            return Response(base64.b64decode(inst["user_data"]),
                            media_type="application/octet-stream")
        if item == "password":
            if req.method == "POST":
                server_password.post_from_guest(service.db, inst["uuid"], req.body)
                return text("")
            return text(server_password.read(inst))
        raise errors.NotFound(f"{item} not found.")

    @api.route("/{version}", "GET", auth=False)
    @api.route("/{version}/", "GET", auth=False)
    def ec2_index(req: Request):
        _ec2_version(req)
        inst = lookup(req)
        return text("meta-data/" + ("\nuser-data" if inst["user_data"] else ""))

    @api.route("/{version}/user-data", "GET", auth=False)
    def ec2_user_data(req: Request):
        _ec2_version(req)
        inst = lookup(req)
        if not inst["user_data"]:
            raise errors.NotFound("No user data.")
        return Response(base64.b64decode(inst["user_data"]),
                        media_type="application/octet-stream")

    @api.route("/{version}/meta-data", "GET", auth=False)
    @api.route("/{version}/meta-data/{path:path}", "GET", auth=False)
    def ec2_meta(req: Request):
        _ec2_version(req)
        node = service.ec2(lookup(req))
        for part in [p for p in req.path_params.get("path", "").split("/") if p]:
            if isinstance(node, dict) and part.isdigit() and "public-keys" not in req.url \
                    and part not in node:
                raise errors.NotFound("Not found.")
            if isinstance(node, dict) and part not in node:
                # public-keys/0 names the first key
                keyed = {k.split("=")[0]: v for k, v in node.items()}
                if part in keyed:
                    node = keyed[part]
                    continue
                raise errors.NotFound("Not found.")
            if not isinstance(node, dict):
                raise errors.NotFound("Not found.")
            node = node[part]
        if isinstance(node, dict):
            return text("\n".join(k + ("/" if isinstance(v, dict) else "")
                                  for k, v in node.items()))
        return text(str(node))

    return api


def _os_version(req: Request) -> str:
    version = req.path_params["version"]
    if version not in OPENSTACK_VERSIONS:
        raise errors.NotFound(f"Unknown metadata version {version}.")
    return version


def _ec2_version(req: Request) -> str:
    version = req.path_params["version"]
    if version not in EC2_VERSIONS:
        raise errors.NotFound(f"Unknown metadata version {version}.")
    return version


__all__ = ["build", "sign", "json"]
