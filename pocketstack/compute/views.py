"""How compute resources are shown, per microversion (the API reference's fields)."""

from __future__ import annotations

import functools
import hashlib

from pocketstack.common.db import isotime
from pocketstack.compute import states


def links(base: str, collection: str, id: str, *, self_link: bool = True) -> list[dict]:
    out = []
    if self_link:
        out.append({"rel": "self", "href": f"{base}/v2.1/{collection}/{id}"})
    out.append({"rel": "bookmark", "href": f"{base}/{collection}/{id}"})
    return out


@functools.lru_cache(maxsize=4096)
def host_id(project_id: str, host: str | None) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def addresses(network_info: list[dict]) -> dict:
    result: dict[str, list] = {}
    for vif in network_info or []:
        label = vif["network"].get("label") or vif["network"].get("id")
        entries = result.setdefault(label, [])
        for subnet in vif["network"].get("subnets", []):
            for ip in subnet.get("ips", []):
                entries.append({"version": ip.get("version", 4), "addr": ip["address"],
                                "OS-EXT-IPS:type": "fixed",
                                "OS-EXT-IPS-MAC:mac_addr": vif.get("address")})
                for fip in ip.get("floating_ips", []):
                    entries.append({"version": 4, "addr": fip, "OS-EXT-IPS:type": "floating",
                                    "OS-EXT-IPS-MAC:mac_addr": vif.get("address")})
        for fip in vif.get("floating_ips") or []:
            entries.append({"version": 4, "addr": fip, "OS-EXT-IPS:type": "floating",
                            "OS-EXT-IPS-MAC:mac_addr": vif.get("address")})
    return result


def flavor_ref(base: str, flavor: dict, v: tuple[int, int], show_specs: bool = True) -> dict:
    if v >= (2, 47):
        out = {"vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"],
               "ephemeral": flavor.get("ephemeral", 0), "swap": flavor.get("swap", 0),
               "original_name": flavor["name"]}
        if show_specs:
            out["extra_specs"] = flavor.get("extra_specs") or {}
        return out
    return {"id": flavor["flavorid"], "links": links(base, "flavors", flavor["flavorid"],
                                                      self_link=False)}


# A naive isoformat() is several times cheaper than strftime() or an aware one (a
# page shows thousands); the rows' datetimes are UTC, aware or naive.

def micro(value) -> str | None:
    """2026-11-25T18:08:59.000000"""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def zulu(value) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


class ServerView:
    """Renders servers for one request (its version, its caller, its URL)."""

    def __init__(self, base: str, version: tuple[int, int], is_admin: bool,
                 host_status=None, groups: dict | None = None):
        self.base = base
        self.v = version
        self.admin = is_admin
        self.host_status = host_status  # host -> "UP"/"DOWN"/... (admins, 2.16+)
        self.groups = groups or {}

    def brief(self, inst: dict) -> dict:
        return {"id": inst["uuid"], "name": inst["display_name"],
                "links": links(self.base, "servers", inst["uuid"])}

    def detail(self, inst: dict, *, show: bool = False) -> dict:
        v = self.v
        uuid = inst["uuid"]
        status = states.status(inst["vm_state"], inst["task_state"])
        image: dict | str = ""
        if inst["image_ref"]:
            image = {"id": inst["image_ref"],
                     "links": links(self.base, "images", inst["image_ref"], self_link=False)}
            if v >= (2, 98):
                image["properties"] = (inst["system_metadata"] or {}).get("image_properties",
                                                                          {})
        out = {
            "id": uuid, "name": inst["display_name"], "status": status,
            "tenant_id": inst["project_id"], "user_id": inst["user_id"],
            "metadata": inst["meta"] or {}, "hostId": host_id(inst["project_id"], inst["host"]),
            "image": image, "flavor": flavor_ref(self.base, inst["flavor"], v),
            "created": zulu(inst["created_at"]),
            "updated": zulu(inst["updated_at"] or inst["created_at"]),
            "addresses": addresses(inst["network_info"]),
            "accessIPv4": inst["access_ip_v4"] or "", "accessIPv6": inst["access_ip_v6"] or "",
            "links": links(self.base, "servers", uuid),
            "OS-DCF:diskConfig": (inst["system_metadata"] or {}).get("disk_config", "MANUAL"),
            "OS-EXT-AZ:availability_zone": inst["availability_zone"] or "",
            "config_drive": inst["config_drive"] or "",
            "key_name": inst["key_name"],
            "OS-SRV-USG:launched_at": micro(inst["launched_at"]),
            "OS-SRV-USG:terminated_at": micro(inst["terminated_at"]),
            "OS-EXT-STS:task_state": inst["task_state"],
            "OS-EXT-STS:vm_state": inst["vm_state"],
            "OS-EXT-STS:power_state": inst["power_state"],
        }
        if status in states.PROGRESS_STATUSES:
            out["progress"] = inst["progress"] or 0
        if inst["network_info"] and inst["security_groups"]:
            out["security_groups"] = [{"name": n} for n in inst["security_groups"]]
        volumes = []
        for bdm in inst["block_devices"] or []:
            if bdm.get("volume_id"):
                item = {"id": bdm["volume_id"]}
                if v >= (2, 3):
                    item["delete_on_termination"] = bool(bdm.get("delete_on_termination"))
                volumes.append(item)
        out["os-extended-volumes:volumes_attached"] = volumes
        if self.admin:
            out["OS-EXT-SRV-ATTR:host"] = inst["host"]
            out["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{inst['id']:08x}"
            out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = inst["node"]
        if v >= (2, 3) and (self.admin or v >= (2, 90)):
            out["OS-EXT-SRV-ATTR:hostname"] = inst["hostname"]
        if v >= (2, 3) and self.admin:
            out.update({
                "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:launch_index":
                inst["launch_index"], "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:reservation_id": inst["reservation_id"],
                "OS-EXT-SRV-ATTR:root_device_name": inst["root_device_name"],
                "OS-EXT-SRV-ATTR:user_data": inst.get("user_data")})
        if v >= (2, 9):
            out["locked"] = bool(inst["locked"])
        if v >= (2, 16) and self.admin and self.host_status is not None:
            out["host_status"] = self.host_status(inst["host"]) if inst["host"] else ""
        if v >= (2, 19):
            out["description"] = inst["description"]
        if v >= (2, 26):
            out["tags"] = list(inst["tags"] or [])
        if v >= (2, 63):
            out["trusted_image_certificates"] = None
        if v >= (2, 71) and show:
            out["server_groups"] = self.groups.get(uuid, [])
        if v >= (2, 73):
            out["locked_reason"] = inst["locked_reason"]
        if v >= (2, 96):
            out["pinned_availability_zone"] = inst["pinned_az"]
        if v >= (2, 100):
            out["scheduler_hints"] = (inst.get("request_spec") or {}).get(
                "scheduler_hints") or {}
        fault = inst["fault"]
        if fault and inst["vm_state"] in (states.ERROR, states.DELETED):
            shown = {"code": fault["code"], "created": isotime(_dt(fault.get("created"))),
                     "message": fault["message"]}
            if self.admin or fault["code"] != 500:
                shown["details"] = fault.get("details") or ""
            out["fault"] = shown
        return out


def _dt(value):
    import datetime

    if value is None:
        return None
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return value


def flavor(base: str, f: dict, v: tuple[int, int], *, brief: bool = False) -> dict:
    out = {"id": f["flavorid"], "name": f["name"],
           "links": links(base, "flavors", f["flavorid"])}
    if brief:
        if v >= (2, 55):
            out["description"] = f["description"]
        return out
    out.update({"ram": f["memory_mb"], "disk": f["root_gb"],
                "swap": (f["swap"] or "") if v < (2, 75) else f["swap"],
                "OS-FLV-EXT-DATA:ephemeral": f["ephemeral_gb"], "vcpus": f["vcpus"],
                "os-flavor-access:is_public": bool(f["is_public"])})
    if v < (2, 75):
        out["OS-FLV-DISABLED:disabled"] = bool(f["disabled"])
        out["rxtx_factor"] = float(f["rxtx_factor"])
    if v >= (2, 55):
        out["description"] = f["description"]
    if v >= (2, 61):
        out["extra_specs"] = f["extra_specs"] or {}
    return out


def flavor_snapshot(f: dict) -> dict:
    """The flavor as stored on a server (what 2.47+ shows and resizes compare)."""
    return {"flavorid": f["flavorid"], "name": f["name"], "vcpus": f["vcpus"],
            "ram": f["memory_mb"], "disk": f["root_gb"], "ephemeral": f["ephemeral_gb"],
            "swap": f["swap"], "extra_specs": dict(f["extra_specs"] or {})}
