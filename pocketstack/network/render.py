"""Rows -> API dicts, with exactly the fields (and order) Neutron returns."""

from __future__ import annotations

from pocketstack.common.db import isotime

_TIMES: dict = {}


def _time(value) -> str | None:
    """isotime, remembered: rows made in the same second share the string."""
    text = _TIMES.get(value)
    if text is None:
        if len(_TIMES) > 4096:
            _TIMES.clear()
        if isinstance(value, str):  # as stored: "2026-11-25 18:54:12[.000000]"
            text = f"{value[:10]}T{value[11:19]}Z"
        else:
            text = isotime(value)
        _TIMES[value] = text
    return text


def _std(row: dict) -> dict:
    return {"description": row["description"], "tags": list(row["tags"]),
            "created_at": _time(row["created_at"]), "updated_at": _time(row["updated_at"]),
            "revision_number": row["revision_number"]}


def network(row: dict, subnet_ids: list[str]) -> dict:
    return {
        "id": row["id"], "name": row["name"], "tenant_id": row["project_id"],
        "project_id": row["project_id"], "admin_state_up": row["admin_state_up"],
        "mtu": row["mtu"], "status": row["status"], "subnets": list(subnet_ids),
        "shared": row["shared"], "availability_zone_hints": list(row["availability_zone_hints"]),
        "availability_zones": ["nova"] if subnet_ids else [],
        "ipv4_address_scope": None, "ipv6_address_scope": None,
        "router:external": row["external"], "qinq": False, "vlan_transparent": False,
        "is_default": row["is_default"],
        "port_security_enabled": row["port_security_enabled"],
        **_std(row),
        "provider:network_type": row["network_type"],
        "provider:physical_network": row["physical_network"],
        "provider:segmentation_id": row["segmentation_id"],
    }


def subnet(row: dict, external: bool) -> dict:
    return {
        "id": row["id"], "name": row["name"], "tenant_id": row["project_id"],
        "project_id": row["project_id"], "network_id": row["network_id"],
        "ip_version": row["ip_version"], "subnetpool_id": row["subnetpool_id"],
        "enable_dhcp": row["enable_dhcp"], "ipv6_ra_mode": row["ipv6_ra_mode"],
        "ipv6_address_mode": row["ipv6_address_mode"], "gateway_ip": row["gateway_ip"],
        "cidr": row["cidr"], "allocation_pools": list(row["allocation_pools"]),
        "host_routes": list(row["host_routes"]), "dns_nameservers": list(row["dns_nameservers"]),
        "router:external": external, "service_types": list(row["service_types"]),
        **_std(row),
    }


def port(row: dict) -> dict:
    mac = row["mac_address"]
    return {
        "id": row["id"], "name": row["name"], "network_id": row["network_id"],
        "tenant_id": row["project_id"], "project_id": row["project_id"],
        "mac_address": mac, "admin_state_up": row["admin_state_up"],
        "status": row["status"], "device_id": row["device_id"],
        "device_owner": row["device_owner"], "fixed_ips": list(row["fixed_ips"]),
        "allowed_address_pairs": [
            {"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or mac}
            for p in row["allowed_address_pairs"]],
        "extra_dhcp_opts": list(row["extra_dhcp_opts"]),
        "security_groups": list(row["security_groups"]),
        "binding:vnic_type": row["vnic_type"], "binding:profile": row["profile"],
        "binding:host_id": row["host_id"], "binding:vif_type": row["vif_type"],
        "binding:vif_details": row["vif_details"],
        "port_security_enabled": row["port_security_enabled"],
        **_std(row),
    }


def port_rows(keys: list[str], raw: list) -> list[dict]:
    """``port`` straight from DB-API tuples (list pages: no row dicts, one pass)."""
    from pocketstack.network.models import json_value as J

    ix = {k: i for i, k in enumerate(keys)}
    (i_id, i_name, i_net, i_proj, i_mac, i_up, i_status, i_dev, i_owner, i_fixed, i_pairs,
     i_dhcp, i_sgs, i_vnic, i_prof, i_host, i_vif, i_vifd, i_psec, i_desc, i_tags, i_cre,
     i_upd, i_rev) = (ix[k] for k in (
        "id", "name", "network_id", "project_id", "mac_address", "admin_state_up", "status",
        "device_id", "device_owner", "fixed_ips", "allowed_address_pairs", "extra_dhcp_opts",
        "security_groups", "vnic_type", "profile", "host_id", "vif_type", "vif_details",
        "port_security_enabled", "description", "tags", "created_at", "updated_at",
        "revision_number"))
    out = []
    for r in raw:
        mac = r[i_mac]
        pairs = r[i_pairs]
        project = r[i_proj]
        out.append({
            "id": r[i_id], "name": r[i_name], "network_id": r[i_net], "tenant_id": project,
            "project_id": project, "mac_address": mac, "admin_state_up": bool(r[i_up]),
            "status": r[i_status], "device_id": r[i_dev], "device_owner": r[i_owner],
            "fixed_ips": J(r[i_fixed]),
            "allowed_address_pairs": [] if pairs == "[]" else [
                {"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or mac}
                for p in J(pairs)],
            "extra_dhcp_opts": J(r[i_dhcp]), "security_groups": J(r[i_sgs]),
            "binding:vnic_type": r[i_vnic], "binding:profile": J(r[i_prof]),
            "binding:host_id": r[i_host], "binding:vif_type": r[i_vif],
            "binding:vif_details": J(r[i_vifd]),
            "port_security_enabled": bool(r[i_psec]), "description": r[i_desc],
            "tags": J(r[i_tags]), "created_at": _time(r[i_cre]),
            "updated_at": _time(r[i_upd]), "revision_number": r[i_rev]})
    return out


def security_group(row: dict, rules: list[dict]) -> dict:
    return {"id": row["id"], "name": row["name"], "tenant_id": row["project_id"],
            "project_id": row["project_id"], "stateful": row["stateful"],
            "security_group_rules": rules, **_std(row)}


def security_group_rule(row: dict) -> dict:
    return {"id": row["id"], "tenant_id": row["project_id"], "project_id": row["project_id"],
            "security_group_id": row["security_group_id"], "direction": row["direction"],
            "ethertype": row["ethertype"], "protocol": row["protocol"],
            "port_range_min": row["port_range_min"], "port_range_max": row["port_range_max"],
            "remote_ip_prefix": row["remote_ip_prefix"],
            "remote_group_id": row["remote_group_id"], "remote_address_group_id": None,
            "normalized_cidr": row["remote_ip_prefix"], "belongs_to_default_sg":
            row.get("belongs_to_default_sg", False),
            "description": row["description"], "tags": list(row["tags"]),
            "created_at": _time(row["created_at"]), "updated_at": _time(row["updated_at"]),
            "revision_number": row["revision_number"]}


def router(row: dict, gateway_ips: list[dict] | None) -> dict:
    gw = None
    if row["gw_network_id"]:
        gw = {"network_id": row["gw_network_id"], "enable_snat": row["enable_snat"],
              "external_fixed_ips": list(gateway_ips or [])}
    return {"id": row["id"], "name": row["name"], "tenant_id": row["project_id"],
            "project_id": row["project_id"], "admin_state_up": row["admin_state_up"],
            "status": row["status"], "external_gateway_info": gw,
            "routes": list(row["routes"]), "availability_zone_hints": [],
            "availability_zones": ["nova"], **_std(row)}


def floatingip(row: dict, port_details: dict | None = None) -> dict:
    return {"id": row["id"], "tenant_id": row["project_id"], "project_id": row["project_id"],
            "floating_network_id": row["floating_network_id"],
            "floating_ip_address": row["floating_ip_address"],
            "router_id": row["router_id"], "port_id": row["port_id"],
            "fixed_ip_address": row["fixed_ip_address"], "status": row["status"],
            "port_details": port_details, **_std(row)}


def subnetpool(row: dict) -> dict:
    return {"id": row["id"], "name": row["name"], "tenant_id": row["project_id"],
            "project_id": row["project_id"], "prefixes": list(row["prefixes"]),
            "default_prefixlen": row["default_prefixlen"],
            "min_prefixlen": row["min_prefixlen"], "max_prefixlen": row["max_prefixlen"],
            "is_default": row["is_default"], "shared": row["shared"],
            "default_quota": row["default_quota"], "address_scope_id": row["address_scope_id"],
            "ip_version": row["ip_version"], **_std(row)}
