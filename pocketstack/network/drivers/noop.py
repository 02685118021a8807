"""The ``noop`` driver: a control plane without a data plane.

Ports bind to any host at once (``vif_type`` ``other``, status ``ACTIVE``),
which is what compute's fake virt driver and the functional tests need.
"""

from __future__ import annotations

from pocketstack.network.drivers.base import NetworkDriver, PortBinding


class NoopDriver(NetworkDriver):
    name = "noop"

    def bind_port(self, port: dict, network: dict, host: str) -> PortBinding:
        return PortBinding("other", {"port_filter": False, "connectivity": "l2"}, "ACTIVE")
