"""The Linux bridge data plane (``[network] l2_driver = linuxbridge``).

The driver keeps the desired state (``agents.state``) current from the
manager's hooks and a full re-sync at start, and runs the agents of this
host in one reconcile thread: it wakes on every change (and every
``[agent] resync_interval`` seconds anyway) and lets each agent converge.
Hooks only record and wake: they never touch the host themselves.

Ports bind as ``vif_type`` ``bridge`` with the network's bridge name; the
compute driver creates the instance's veth (host end ``tap<port>``) and the
L2 agent puts it on the bridge.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from oslo_config import cfg

from pocketstack import rootwrap as rootwrap_mod
from pocketstack.common.context import RequestContext
from pocketstack.network.agents import dhcp, l2, metadata
from pocketstack.network.agents.ip_lib import IpLib
from pocketstack.network.agents.state import DesiredState
from pocketstack.network.drivers.base import NetworkDriver, PortBinding

LOG = logging.getLogger(__name__)

linux_bridge_opts = [
    cfg.ListOpt("physical_interface_mappings", default=[],
                help="physnet:interface pairs: the host interface a flat/VLAN provider "
                     "network's bridge is connected to."),
]
vxlan_opts = [
    cfg.BoolOpt("enable_vxlan", default=True),
    cfg.StrOpt("local_ip", default=None,
               help="This host's VXLAN endpoint address (default: the source address of "
                    "the default route)."),
    cfg.ListOpt("host_ips", default=[],
                help="host:ip pairs of the other hosts' VXLAN endpoints (unicast flooding "
                     "entries are made for the hosts that have ports on a network)."),
]
agent_opts = [
    cfg.IntOpt("resync_interval", default=30,
               help="Seconds between full convergence passes when nothing changed."),
    cfg.FloatOpt("polling_interval", default=1.0,
                 help="Seconds between looks for new or removed tap devices on the host "
                      "(a pass runs when they changed)."),
    cfg.StrOpt("dhcp_domain", default="openstacklocal"),
    cfg.IntOpt("dhcp_lease_duration", default=86400),
    cfg.BoolOpt("enable_isolated_metadata", default=True,
                help="Serve metadata from the DHCP namespace (169.254.169.254)."),
    cfg.StrOpt("metadata_url", default=None,
               help="Compute's metadata service the metadata agent forwards to "
                    "(default: this cloud's <public endpoint>/metadata)."),
    cfg.StrOpt("metadata_proxy_shared_secret", default=None, secret=True,
               help="Secret X-Instance-ID is signed with; default: [neutron] "
                    "metadata_proxy_shared_secret of compute."),
]


def register_opts(conf) -> None:
    for opts, group in ((linux_bridge_opts, "linux_bridge"), (vxlan_opts, "vxlan"),
                        (agent_opts, "dataplane_agent")):
        try:
            conf.register_opts(opts, group=group)
        except cfg.DuplicateOptError:
            pass


def _pairs(items: list[str]) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition(":")
        if sep:
            result[key.strip()] = value.strip()
    return result


def _secret(conf) -> str:
    secret = conf.dataplane_agent.metadata_proxy_shared_secret
    if secret is None:
        try:
            secret = conf.neutron.metadata_proxy_shared_secret
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
            secret = ""
    return secret or ""


class LinuxBridgeDriver(NetworkDriver):
    name = "linuxbridge"

    def __init__(self, conf, rootwrap=None):
        super().__init__(conf)
        register_opts(conf)
        self.host = conf.host
        self.state = DesiredState()
        self.rootwrap = rootwrap or rootwrap_mod.get(conf)
        self.ip = IpLib(self.rootwrap)
        data_dir = os.path.join(conf.state_path, "dataplane")
        local_ip = conf.vxlan.local_ip or l2.local_ip()
        self.backend = l2.LinuxBridgeBackend(
            self.ip, _pairs(conf.linux_bridge.physical_interface_mappings), local_ip)
        self.l2 = l2.L2Agent(self.host, self.backend, os.path.join(data_dir, "bridges.json"),
                             _pairs(conf.vxlan.host_ips))
        agent = conf.dataplane_agent
        self.metadata_socket = os.path.join(data_dir, "metadata.sock")
        self.metadata = metadata.MetadataAgent(
            self.state, self.metadata_socket, agent.metadata_url or self._default_metadata_url,
            _secret(conf)) if agent.enable_isolated_metadata else None
        self.dhcp = dhcp.DhcpAgent(
            self.host, conf.state_path, self.ip, self.backend, create_port=self._create_port,
            update_port=self._update_port,
            metadata_socket=self.metadata_socket if self.metadata else None,
            dns_domain=agent.dhcp_domain, lease_seconds=agent.dhcp_lease_duration)
        self.manager = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._converged = threading.Condition()
        self.passes = 0

    def _default_metadata_url(self) -> str:
        from pocketstack import config

        return config.public_url(self.conf) + "/metadata"

    # -- life cycle ------------------------------------------------------------------

    def start(self, manager) -> None:
        self.manager = manager
        # a (re)started agent trusts nothing it remembers about the host
        self.dhcp._ns_done.clear()
        self.backend._fdb_done = {}
        self.full_resync()
        if self.metadata:
            self.metadata.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dataplane-agent")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.state.changed.set()
        if self._thread:
            self._thread.join(30)
        if self.metadata:
            self.metadata.stop()

    def full_resync(self) -> None:
        """Learn the whole desired state from the networking service."""
        if self.manager is None:
            return
        ctx = RequestContext.internal_admin()
        self.state.replace(self.manager.list_networks(ctx), self.manager.list_subnets(ctx),
                           self.manager.list_ports(ctx))

    def resync(self, state: dict) -> None:
        self.state.replace(state.get("networks", []), state.get("subnets", []),
                           state.get("ports", []))

    def _taps(self) -> frozenset[str]:
        return frozenset(d for d in self.ip.links() if d.startswith("tap"))

    def _loop(self) -> None:
        interval = self.conf.dataplane_agent.resync_interval
        polling = self.conf.dataplane_agent.polling_interval
        taps = None
        last = 0.0
        while not self._stop.is_set():
            woke = self.state.changed.wait(polling)
            if self._stop.is_set():
                break
            now_taps = self._taps()
            now = time.monotonic()
            if not woke and now_taps == taps and now - last < interval and \
                    self.dhcp.healthy():
                continue
            self.state.changed.clear()
            taps, last = now_taps, now
            self.converge()

    def converge(self) -> None:
        generation = self.state.generation
        snap = self.state.snapshot()
        for agent in (self.l2, self.dhcp):
            try:
                agent.converge(snap)
            except Exception:  # noqa: BLE001 - the next pass retries
                LOG.exception("dataplane: %s converge failed", type(agent).__name__)
        with self._converged:
            self.passes += 1
            self.converged_generation = generation
            self._converged.notify_all()

    def wait_converged(self, timeout: float = 30.0) -> bool:
        """Block until a pass that saw the current desired state finished (tests, bench)."""
        target = self.state.generation
        with self._converged:
            return self._converged.wait_for(
                lambda: getattr(self, "converged_generation", -1) >= target, timeout)

    # -- manager calls from the agents ----------------------------------------------------

    def _create_port(self, body: dict) -> dict:
        return self.manager.create_port(RequestContext.internal_admin(), body)

    def _update_port(self, port_id: str, body: dict) -> dict:
        return self.manager.update_port(RequestContext.internal_admin(), port_id, body)

    # -- hooks --------------------------------------------------------------------------

    def bind_port(self, port: dict, network: dict, host: str) -> PortBinding | None:
        ntype = network.get("provider:network_type")
        if ntype == "vxlan" and not self.conf.vxlan.enable_vxlan:
            return None
        return PortBinding("bridge", {"bridge_name": l2.bridge_name(network["id"]),
                                      "port_filter": False, "connectivity": "l2"}, "ACTIVE")

    def network_created(self, network):
        self.state.put("networks", network)

    network_updated = network_created

    def network_deleted(self, network):
        self.state.remove("networks", network["id"])

    def subnet_created(self, subnet, network):
        self.state.put("subnets", subnet)

    subnet_updated = subnet_created

    def subnet_deleted(self, subnet, network):
        self.state.remove("subnets", subnet["id"])

    def port_created(self, port, network):
        self.state.put("ports", port)
        try:
            self.dhcp.add_port_now(port)
        except Exception:  # noqa: BLE001 - the next pass writes it anyway
            LOG.exception("dhcp: fast path for port %s", port.get("id"))

    port_updated = port_created

    def port_deleted(self, port, network):
        self.state.remove("ports", port["id"])

    def port_unbound(self, port, host):
        self.state.put("ports", port)

    def router_interface_added(self, router, port):
        self.state.put("ports", port)

    def router_interface_removed(self, router, port):
        self.state.remove("ports", port["id"])
