"""The Open vSwitch data plane (``[network] l2_driver = openvswitch``).

The same agents as the Linux-bridge driver (L2 reconciler, DHCP, metadata,
L3, security groups), with :class:`~pocketstack.network.agents.ovs.OvsBackend`
as the switch: the agent starts ``ovsdb-server``/``ovs-vswitchd`` itself
(``[ovs] run_dir``), ``br-int`` with a local VLAN per network, ``br-tun``
for VXLAN and one external bridge per physical network.

Ports bind as ``vif_type`` ``ovs`` with ``ovs_hybrid_plug``: the compute
driver's ``tap<port>`` goes on the Linux bridge ``qbr<port>`` named in
``vif_details["bridge_name"]`` (the agent makes it, and puts the tap on it
when it appears), which is joined to ``br-int``; so the iptables firewall
works the same with both back ends.

``pocketstack manage network migrate-backend --to openvswitch|linuxbridge``
(:func:`migrate`) moves a running host from one back end to the other.
"""

from __future__ import annotations

import logging
import os

from oslo_config import cfg

from pocketstack.network.agents import l2
from pocketstack.network.agents.ovs import OvsBackend, OvsDaemons
from pocketstack.network.drivers.base import PortBinding
from pocketstack.network.drivers.linuxbridge import LinuxBridgeDriver
from pocketstack.network.drivers.routing import RoutingMixin

LOG = logging.getLogger(__name__)

ovs_opts = [
    cfg.StrOpt("run_dir", default="/var/run/openvswitch",
               help="Where the agent's ovsdb-server/ovs-vswitchd keep their database, "
                    "sockets, pid and log files."),
    cfg.StrOpt("integration_bridge", default="br-int"),
    cfg.StrOpt("tunnel_bridge", default="br-tun"),
    cfg.ListOpt("bridge_mappings", default=[],
                help="physnet:bridge pairs (default bridge for a physical network: "
                     "br-<physnet>); the bridge holds the interface of "
                     "[linux_bridge] physical_interface_mappings."),
    cfg.StrOpt("bridge_prefix", default="",
               help="Name the agent's bridges <prefix>-int, <prefix>-tun, <prefix>-<physnet> "
                    "(tests running beside another switch)."),
]


def register_opts(conf) -> None:
    try:
        conf.register_opts(ovs_opts, group="ovs")
    except cfg.DuplicateOptError:
        pass


def _pairs(items: list[str]) -> dict[str, str]:
    """``["a:b", ...]`` -> ``{"a": "b"}``."""
    result = {}
    for item in items:
        key, sep, value = item.partition(":")
        if sep:
            result[key.strip()] = value.strip()
    return result


def hybrid_bridge(port_id: str) -> str:
    return ("qbr" + port_id)[:14]


class LinuxBridgeRoutingDriver(RoutingMixin, LinuxBridgeDriver):
    """Linux bridges + routers, floating IPs and security groups."""

    name = "linuxbridge"

    def __init__(self, conf, rootwrap=None):
        super().__init__(conf, rootwrap)
        self._init_routing(conf)


class OpenVSwitchDriver(RoutingMixin, LinuxBridgeDriver):
    name = "openvswitch"

    def __init__(self, conf, rootwrap=None):
        super().__init__(conf, rootwrap)
        register_opts(conf)
        group = conf.ovs
        self.ovs = OvsDaemons(self.rootwrap, group.run_dir)
        local_ip = conf.vxlan.local_ip or l2.local_ip()
        self.backend = OvsBackend(
            self.ovs, _pairs(conf.linux_bridge.physical_interface_mappings), local_ip,
            integration_bridge=group.integration_bridge, tunnel_bridge=group.tunnel_bridge,
            bridge_mappings=_pairs(group.bridge_mappings), bridge_prefix=group.bridge_prefix)
        # the agents switch through Open vSwitch (their ownership records stay apart)
        self.l2.backend = self.backend
        self.l2.owned_file = os.path.join(conf.state_path, "dataplane", "ovs-networks.json")
        self.dhcp.backend = self.backend
        self._init_routing(conf)

    def start(self, manager) -> None:
        self.ovs.start()
        super().start(manager)

    def bind_port(self, port: dict, network: dict, host: str) -> PortBinding | None:
        ntype = network.get("provider:network_type")
        if ntype == "vxlan" and not self.conf.vxlan.enable_vxlan:
            return None
        return PortBinding("ovs", {"bridge_name": hybrid_bridge(port["id"]),
                                   "integration_bridge": self.backend.br_int,
                                   "ovs_hybrid_plug": True, "datapath_type": "netdev",
                                   "port_filter": True, "connectivity": "l2"}, "ACTIVE")

    def teardown_host(self) -> None:
        super().teardown_host()
        for bridge in self.ovs.bridges():
            if bridge in (self.backend.br_int, self.backend.br_tun) or \
                    bridge in self.backend._external_bridges():  # noqa: SLF001
                self.ovs.vsctl("--if-exists", "del-br", bridge)
