"""Move a running host from one L2 back end to the other (Linux bridge <-> Open vSwitch).

What XenServer's ``xe-switch-network-backend`` does for its switch, for
ours: instances keep running; only the host side of their ports moves.
Network by network: the old switch is taken down (its ports' devices are
released, nothing else is touched), the new one is made and every device of
the network bound to this host (instances' ``tap<port>``, router and DHCP
ports' host ends) is plugged into it. Security groups need nothing: with
both back ends the device is a Linux bridge port, which is what the
iptables rules match. Router and DHCP namespaces stay as they are.

``pocketstack manage network migrate-backend --to openvswitch|linuxbridge``
runs it with the state from the networking database; then set ``[network]
l2_driver`` to the new back end and start the cloud again (its agents adopt
what is there).
"""

from __future__ import annotations

import json
import logging
import os

from pocketstack.network.agents.l2 import L2Agent, tap_name
from pocketstack.network.agents.state import Snapshot

LOG = logging.getLogger(__name__)


def _save(path: str, switches: set[str]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(sorted(switches), f)
    os.replace(path + ".tmp", path)


def migrate_host(snap: Snapshot, source: L2Agent, target: L2Agent) -> dict:
    """Re-plug this host's ports from ``source``'s back end to ``target``'s.
    Returns counts of what moved."""
    host = target.host
    devices: dict[str, list[str]] = {}
    for port in snap.bound_here(host):
        devices.setdefault(port["network_id"], []).append(tap_name(port["id"]))
    moved = {"networks": 0, "devices": 0}
    wanted = set()
    for net_id, devs in sorted(devices.items()):
        network = snap.networks.get(net_id)
        if network is None:
            continue
        old = source.backend.switch_for(network)
        if old in source.backend.switches():
            source.backend.remove_network(old)
        target.backend.ensure_network(network, target._peers(snap, net_id))  # noqa: SLF001
        wanted.add(target.backend.switch_for(network))
        for dev in devs:
            if os.path.exists(f"/sys/class/net/{dev}"):
                target.backend.plug(network, dev)
                moved["devices"] += 1
        moved["networks"] += 1
        LOG.info("migrate: network %s moved (%d devices)", net_id, len(devs))
    # what the old back end still has of ours (networks without ports here)
    for switch in source._owned():  # noqa: SLF001
        if switch in source.backend.switches():
            source.backend.remove_network(switch)
    _save(source.owned_file, set())
    _save(target.owned_file, target._owned() | wanted)  # noqa: SLF001
    return moved


def migrate_from_service(service, to: str) -> dict:
    """The CLI's entry: state from the networking database, the configured
    driver as the source, a driver of the other kind as the target."""
    from pocketstack.common.context import RequestContext
    from pocketstack.network.drivers import openvswitch

    conf = service.conf
    source = service.driver
    if to == "openvswitch":
        target = openvswitch.OpenVSwitchDriver(conf, source.rootwrap)
        target.ovs.start()
    elif to == "linuxbridge":
        target = openvswitch.LinuxBridgeRoutingDriver(conf, source.rootwrap)
        if hasattr(source, "ovs"):
            source.ovs.start()  # to read and take down what it has
    else:
        raise ValueError(f"unknown back end {to!r}")
    if getattr(source, "name", None) == target.name:
        raise ValueError(f"this host already uses {to}")
    ctx = RequestContext.internal_admin()
    manager = service.manager
    snap = Snapshot({n["id"]: n for n in manager.list_networks(ctx)},
                    {s["id"]: s for s in manager.list_subnets(ctx)},
                    {p["id"]: p for p in manager.list_ports(ctx)})
    result = migrate_host(snap, source.l2, target.l2)
    if hasattr(source, "ovs") and to == "linuxbridge":
        for bridge in source.ovs.bridges():
            if bridge in (source.backend.br_int, source.backend.br_tun) or \
                    bridge in source.backend._external_bridges():  # noqa: SLF001
                source.ovs.vsctl("--if-exists", "del-br", bridge)
        source.ovs.stop()
    return result
