"""Data-plane drivers, chosen by ``[network] l2_driver``."""

from __future__ import annotations

import importlib

DRIVERS = {
    "noop": "pocketstack.network.drivers.noop:NoopDriver",
    # Linux bridges with routers, floating IPs and security groups enforced on the host;
    # the plain L2 driver stays reachable by its path
    # (pocketstack.network.drivers.linuxbridge:LinuxBridgeDriver).
    "linuxbridge": "pocketstack.network.drivers.openvswitch:LinuxBridgeRoutingDriver",
    "openvswitch": "pocketstack.network.drivers.openvswitch:OpenVSwitchDriver",
}


def load(conf):
    name = conf.network.l2_driver
    target = DRIVERS.get(name, name)
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(conf)
