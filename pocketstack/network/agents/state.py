"""The desired state of the data plane, as the networking service renders it."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field

DHCP_OWNER = "network:dhcp"
ROUTER_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                 "network:ha_router_replicated_interface")


@dataclass
class Snapshot:
    networks: dict[str, dict] = field(default_factory=dict)
    subnets: dict[str, dict] = field(default_factory=dict)
    ports: dict[str, dict] = field(default_factory=dict)
    taken_at: float = 0.0  # time.time() when the snapshot was taken

    def subnets_of(self, network_id: str) -> list[dict]:
        return [s for s in self.subnets.values() if s["network_id"] == network_id]

    def ports_of(self, network_id: str) -> list[dict]:
        return [p for p in self.ports.values() if p["network_id"] == network_id]

    def dhcp_subnets(self, network_id: str) -> list[dict]:
        return [s for s in self.subnets_of(network_id)
                if s.get("enable_dhcp") and s.get("ip_version", 4) == 4]

    def bound_here(self, host: str) -> list[dict]:
        return [p for p in self.ports.values() if p.get("binding:host_id") == host]

    def port_by_ip(self, network_id: str, ip: str) -> dict | None:
        for port in self.ports_of(network_id):
            for fixed in port.get("fixed_ips") or []:
                if fixed.get("ip_address") == ip:
                    return port
        return None


class DesiredState:
    """Thread-safe store fed by the driver's hooks; agents read snapshots."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data = Snapshot()
        self.changed = threading.Event()
        self.generation = 0

    def _touch(self) -> None:
        self.generation += 1
        self.changed.set()

    def replace(self, networks: list[dict], subnets: list[dict], ports: list[dict]) -> None:
        with self._lock:
            self._data = Snapshot({n["id"]: n for n in networks}, {s["id"]: s for s in subnets},
                                  {p["id"]: p for p in ports})
            self._touch()

    def put(self, kind: str, item: dict) -> None:
        with self._lock:
            getattr(self._data, kind)[item["id"]] = copy.deepcopy(item)
            self._touch()

    def remove(self, kind: str, item_id: str) -> None:
        with self._lock:
            getattr(self._data, kind).pop(item_id, None)
            if kind == "networks":
                for name in ("subnets", "ports"):
                    table = getattr(self._data, name)
                    for key in [k for k, v in table.items() if v.get("network_id") == item_id]:
                        del table[key]
            if kind == "subnets":
                for port in self._data.ports.values():
                    port["fixed_ips"] = [f for f in port.get("fixed_ips") or []
                                         if f.get("subnet_id") != item_id]
            self._touch()

    def snapshot(self) -> Snapshot:
        with self._lock:
            snap = copy.deepcopy(self._data)
        snap.taken_at = time.time()
        return snap
