"""Desired state built by hand, as the networking service renders it, for
driving the agents directly (the API-driven tests build it through the API)."""

from __future__ import annotations

import ipaddress
import uuid

from pocketstack.network.agents.state import Snapshot

HOST = "e2e-host"


def _mac(n: int) -> str:
    return f"fa:16:3e:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


class Topology:
    def __init__(self):
        self.snap = Snapshot()
        self.routers: dict[str, dict] = {}
        self.floatingips: dict[str, dict] = {}
        self._n = uuid.uuid4().int & 0xFFFF00

    def network(self, ntype="local", physnet=None, external=False, segment=None) -> dict:
        net = {"id": str(uuid.uuid4()), "name": "n", "mtu": 1500, "admin_state_up": True,
               "provider:network_type": ntype, "provider:physical_network": physnet,
               "provider:segmentation_id": segment, "router:external": external}
        self.snap.networks[net["id"]] = net
        return net

    def subnet(self, net: dict, cidr: str, gateway: str | None = "auto",
               dhcp: bool = False) -> dict:
        network = ipaddress.ip_network(cidr)
        if gateway == "auto":
            gateway = str(network.network_address + 1)
        sub = {"id": str(uuid.uuid4()), "network_id": net["id"], "cidr": cidr,
               "gateway_ip": gateway, "ip_version": network.version, "enable_dhcp": dhcp,
               "dns_nameservers": [], "host_routes": []}
        self.snap.subnets[sub["id"]] = sub
        return sub

    def port(self, subnet: dict, ip: str, owner: str = "compute:nova", device_id: str = "",
             host: str | None = HOST, groups=(), **extra) -> dict:
        self._n += 1
        port = {"id": str(uuid.uuid4()), "network_id": subnet["network_id"],
                "mac_address": _mac(self._n), "device_owner": owner,
                "device_id": device_id or str(uuid.uuid4()), "binding:host_id": host or "",
                "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": ip}],
                "security_groups": list(groups), "allowed_address_pairs": [],
                "port_security_enabled": True, "admin_state_up": True}
        port.update(extra)
        self.snap.ports[port["id"]] = port
        return port

    def router(self, ext_subnet: dict | None = None, gw_ip: str | None = None,
               snat: bool = True) -> dict:
        router = {"id": str(uuid.uuid4()), "admin_state_up": True, "routes": [],
                  "external_gateway_info": None}
        self.routers[router["id"]] = router
        if ext_subnet is not None:
            self.set_gateway(router, ext_subnet, gw_ip, snat)
        return router

    def set_gateway(self, router, ext_subnet, gw_ip, snat=True):
        gw = self.port(ext_subnet, gw_ip, owner="network:router_gateway",
                       device_id=router["id"], host=None)
        router["external_gateway_info"] = {
            "network_id": ext_subnet["network_id"], "enable_snat": snat,
            "external_fixed_ips": [{"subnet_id": ext_subnet["id"], "ip_address": gw_ip}]}
        return gw

    def add_interface(self, router: dict, subnet: dict) -> dict:
        return self.port(subnet, subnet["gateway_ip"], owner="network:router_interface",
                         device_id=router["id"], host=None)

    def floatingip(self, router: dict, address: str, port: dict | None) -> dict:
        fip = {"id": str(uuid.uuid4()), "floating_ip_address": address,
               "router_id": router["id"] if port else None,
               "port_id": port["id"] if port else None,
               "fixed_ip_address": port["fixed_ips"][0]["ip_address"] if port else None}
        self.floatingips[fip["id"]] = fip
        return fip

    def associate(self, fip: dict, router: dict | None, port: dict | None) -> None:
        fip.update(router_id=router["id"] if port else None,
                   port_id=port["id"] if port else None,
                   fixed_ip_address=port["fixed_ips"][0]["ip_address"] if port else None)

    def update_port(self, port_id: str, body: dict) -> dict:
        """What the agents call to bind their ports (the service would)."""
        self.snap.ports[port_id].update(body)
        return self.snap.ports[port_id]

    def remove_port(self, port: dict) -> None:
        self.snap.ports.pop(port["id"], None)
