"""The L2 agent: a switch per network on this host, segments and ports on it.

The agent decides *what* (which networks this host needs, which ports are
bound here); an ``L2Backend`` decides *how* (Linux bridges here; Open
vSwitch later implements the same five methods). A network is needed on
this host when a port of it is bound here (instances, DHCP, routers).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

from pocketstack.network.agents.ip_lib import IpLib
from pocketstack.network.agents.state import Snapshot

LOG = logging.getLogger(__name__)
VXLAN_PORT = 4789


def bridge_name(network_id: str) -> str:
    return ("brq" + network_id)[:14]


def tap_name(port_id: str) -> str:
    return ("tap" + port_id)[:14]


def local_ip() -> str:
    """This host's address for VXLAN: the source of its default route."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


class L2Backend:
    """How a network's switch is made on this host."""

    def switch_for(self, network: dict) -> str:
        raise NotImplementedError

    def ensure_network(self, network: dict, peers: list[str]) -> None:
        raise NotImplementedError

    def plug(self, network: dict, device: str) -> None:
        """Attach a host-side device (an instance's tap, a DHCP/router port) to the switch."""
        raise NotImplementedError

    def remove_network(self, switch: str) -> None:
        raise NotImplementedError

    def switches(self) -> list[str]:
        """Switches of ours present on the host (to remove what is no longer wanted)."""
        raise NotImplementedError


class LinuxBridgeBackend(L2Backend):
    """``brq<net>`` bridges; VXLAN (unicast: ``vxlan-<vni>`` with our local IP and
    one all-zero FDB entry per peer host), flat (the physical interface itself)
    and VLAN (``<iface>.<vid>``) segments on them."""

    def __init__(self, ip: IpLib, physical_interfaces: dict[str, str], vxlan_local_ip: str):
        self.ip = ip
        self.physical = physical_interfaces
        self.local_ip = vxlan_local_ip

    def switch_for(self, network: dict) -> str:
        return bridge_name(network["id"])

    def _segment_device(self, network: dict) -> str | None:
        ntype = network.get("provider:network_type") or "local"
        seg = network.get("provider:segmentation_id")
        physnet = network.get("provider:physical_network")
        if ntype == "vxlan" and seg is not None:
            return f"vxlan-{seg}"
        if ntype == "flat":
            return self.physical.get(physnet or "")
        if ntype == "vlan" and seg is not None and self.physical.get(physnet or ""):
            return f"{self.physical[physnet]}.{seg}"[:15]
        return None

    def ensure_network(self, network: dict, peers: list[str]) -> None:
        bridge = self.switch_for(network)
        mtu = int(network.get("mtu") or 1500)
        if not self.ip.exists(bridge):
            self.ip.ip("link", "add", bridge, "type", "bridge")
            # no STP, no forwarding delay: ports forward at once
            self.ip.ip("link", "set", bridge, "type", "bridge", "stp_state", "0",
                       "forward_delay", "0")
        self.ip.set_up(bridge, mtu)
        device = self._segment_device(network)
        if device is None:
            if network.get("provider:network_type") == "flat":
                LOG.warning("network %s: physical network %s has no interface mapping",
                            network["id"], network.get("provider:physical_network"))
            return
        ntype = network.get("provider:network_type")
        if not self.ip.exists(device):
            if ntype == "vxlan":
                self.ip.ip("link", "add", device, "type", "vxlan", "id",
                           str(network["provider:segmentation_id"]), "local", self.local_ip,
                           "dstport", str(VXLAN_PORT), "nolearning")
            elif ntype == "vlan":
                parent = self.physical[network["provider:physical_network"]]
                self.ip.ip("link", "add", "link", parent, "name", device, "type", "vlan",
                           "id", str(network["provider:segmentation_id"]))
            else:
                LOG.warning("network %s: interface %s does not exist", network["id"], device)
                return
        if ntype == "vxlan":
            self.ip.set_up(device, mtu)
            self._fdb(device, peers)
        else:
            self.ip.set_up(device)
        self.ip.set_master(device, bridge)

    FDB_RECHECK = 30.0  # seconds a converged flooding list is trusted without a look

    def _fdb(self, device: str, peers: list[str]) -> None:
        key = (device, frozenset(peers))
        done = getattr(self, "_fdb_done", {})
        self._fdb_done = done
        if done.get(device, (None, 0.0))[0] == key and \
                time.monotonic() - done[device][1] < self.FDB_RECHECK:
            return
        out = self.ip.rw.execute("bridge", "fdb", "show", "dev", device)
        present = {line.split(" dst ")[1].split()[0] for line in out.splitlines()
                   if line.startswith("00:00:00:00:00:00") and " dst " in line}
        for peer in set(peers) - present - {self.local_ip}:
            self.ip.rw.execute("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", device,
                               "dst", peer)
        for peer in present - set(peers):
            self.ip.rw.run("bridge", "fdb", "del", "00:00:00:00:00:00", "dev", device,
                           "dst", peer)
        done[device] = (key, time.monotonic())

    def plug(self, network: dict, device: str) -> None:
        if not self.ip.exists(device):
            return
        try:
            self.ip.set_master(device, self.switch_for(network))
            self.ip.set_up(device)
        except Exception:
            if self.ip.exists(device):
                raise
            # the device went away meanwhile (its instance was deleted): nothing to do

    def remove_network(self, switch: str) -> None:
        if not self.ip.exists(switch):
            return
        try:
            members = os.listdir(f"/sys/class/net/{switch}/brif")
        except FileNotFoundError:
            members = []
        for member in members:  # our segment devices go; physical interfaces stay
            if member.startswith("vxlan-") or "." in member:
                self.ip.delete(member)
        self.ip.delete(switch)

    def switches(self) -> list[str]:
        return [d for d in self.ip.links() if d.startswith("brq") and self.ip.is_bridge(d)]


class L2Agent:
    """``owned_file`` records the switches this agent made, so that it removes
    only its own (other clouds may share the host) and still finds them after
    a restart."""

    def __init__(self, host: str, backend: L2Backend, owned_file: str,
                 host_ips: dict[str, str] | None = None):
        self.host = host
        self.backend = backend
        self.host_ips = host_ips or {}
        self.owned_file = owned_file

    def _owned(self) -> set[str]:
        try:
            with open(self.owned_file) as f:
                return set(json.load(f))
        except (FileNotFoundError, ValueError):
            return set()

    def _save_owned(self, owned: set[str]) -> None:
        os.makedirs(os.path.dirname(self.owned_file), exist_ok=True)
        with open(self.owned_file + ".tmp", "w") as f:
            json.dump(sorted(owned), f)
        os.replace(self.owned_file + ".tmp", self.owned_file)

    def needed_networks(self, snap: Snapshot) -> dict[str, dict]:
        return {p["network_id"]: snap.networks[p["network_id"]]
                for p in snap.bound_here(self.host) if p["network_id"] in snap.networks}

    def _peers(self, snap: Snapshot, network_id: str) -> list[str]:
        hosts = {p.get("binding:host_id") for p in snap.ports_of(network_id)}
        return sorted(self.host_ips[h] for h in hosts
                      if h and h != self.host and h in self.host_ips)

    def converge(self, snap: Snapshot) -> None:
        needed = self.needed_networks(snap)
        wanted = {self.backend.switch_for(n) for n in needed.values()}
        owned = self._owned()
        if wanted - owned:
            self._save_owned(owned | wanted)
        for network in needed.values():
            try:
                self.backend.ensure_network(network, self._peers(snap, network["id"]))
            except Exception:  # noqa: BLE001 - others still converge
                LOG.exception("l2: network %s", network["id"])
        for port in snap.bound_here(self.host):
            network = needed.get(port["network_id"])
            if network is None or port.get("device_owner") == "network:dhcp":
                continue  # the DHCP agent plugs its own ports
            try:
                self.backend.plug(network, tap_name(port["id"]))
            except Exception:  # noqa: BLE001
                LOG.exception("l2: port %s", port["id"])
        stale = (owned | wanted) - wanted
        for switch in stale:
            try:
                self.backend.remove_network(switch)
            except Exception:  # noqa: BLE001
                LOG.exception("l2: removing %s", switch)
                continue
        if stale:
            self._save_owned(wanted)
