"""Routers, floating IPs and security groups on top of an L2 data-plane driver.

:class:`RoutingMixin` adds to a reconciling driver (the Linux-bridge one and
the Open vSwitch one) the L3 agent (``agents.l3``) and the security-group
firewall (``firewall.iptables``): it records routers, floating IPs and
groups from the manager's hooks (and a full re-sync at start), and each
convergence pass runs L2 + DHCP, then L3, then the firewall, in the
driver's one reconcile thread.

Options: ``[securitygroup] enable_security_group`` (iptables on the host;
false leaves ports unfiltered, as Neutron's noop firewall) and
``[l3_agent] enabled`` (routers served by this host).
"""

from __future__ import annotations

import copy
import logging
import os

from oslo_config import cfg

from pocketstack.common.context import RequestContext
from pocketstack.network.agents import l2
from pocketstack.network.agents.l3 import GATEWAY_OWNER, L3Agent, RouterMetadataProxy
from pocketstack.network.firewall import IptablesFirewall, ports_from_state

LOG = logging.getLogger(__name__)

sg_opts = [
    cfg.BoolOpt("enable_security_group", default=True,
                help="Enforce security groups on this host's ports (iptables, ipset, "
                     "conntrack)."),
    cfg.StrOpt("chain_prefix", default="pssg",
               help="Prefix of the iptables chains and ipsets the firewall owns."),
]
l3_opts = [
    cfg.BoolOpt("enabled", default=True, help="Serve routers and floating IPs on this host."),
]


def register_opts(conf) -> None:
    for opts, group in ((sg_opts, "securitygroup"), (l3_opts, "l3_agent")):
        try:
            conf.register_opts(opts, group=group)
        except cfg.DuplicateOptError:
            pass


class RoutingMixin:
    """Mix in before a driver that has ``state``, ``ip``, ``backend``,
    ``rootwrap``, ``host``, ``l2``, ``dhcp``, ``manager`` and ``_update_port``."""

    def _init_routing(self, conf) -> None:
        register_opts(conf)
        self.routers: dict[str, dict] = {}
        self.floatingips: dict[str, dict] = {}
        self.security_groups: dict[str, dict] = {}
        proxy = None
        if getattr(self, "metadata", None) is not None:
            proxy = RouterMetadataProxy(self.rootwrap, os.path.join(conf.state_path, "l3"),
                                        self.metadata_socket)
        self.l3 = L3Agent(self.host, conf.state_path, self.ip, self.backend,
                          update_port=self._update_port, metadata_proxy=proxy) \
            if conf.l3_agent.enabled else None
        self.firewall = IptablesFirewall(self.rootwrap, prefix=conf.securitygroup.chain_prefix) \
            if conf.securitygroup.enable_security_group else None

    # -- desired state -----------------------------------------------------------------------
    def _touch(self) -> None:
        with self.state._lock:  # noqa: SLF001 - one generation counter for the whole host
            self.state.generation += 1
            self.state.changed.set()

    def full_resync(self) -> None:
        super().full_resync()
        if self.manager is None:
            return
        ctx = RequestContext.internal_admin()
        with self.state._lock:  # noqa: SLF001
            self.routers = {r["id"]: r for r in self.manager.list_routers(ctx)}
            self.floatingips = {f["id"]: f for f in self.manager.list_floatingips(ctx)}
            self.security_groups = {g["id"]: g for g in self.manager.list_security_groups(ctx)}
        self._touch()

    def resync(self, state: dict) -> None:
        super().resync(state)
        with self.state._lock:  # noqa: SLF001
            self.routers = {r["id"]: r for r in state.get("routers", [])}
            self.floatingips = {f["id"]: f for f in state.get("floatingips", [])}
            self.security_groups = {g["id"]: g for g in state.get("security_groups", [])}
        self._touch()

    def _refresh_router_ports(self, router: dict) -> None:
        """The gateway port is made by the router calls themselves (no port hook)."""
        if self.manager is None:
            return
        ctx = RequestContext.internal_admin()
        ports = [p for p in self.manager.list_ports(ctx, {"device_id": [router["id"]]})
                 if p.get("device_id") == router["id"]]
        snap = self.state.snapshot()
        for port in snap.ports.values():
            if port.get("device_id") == router["id"] and port.get("device_owner") == \
                    GATEWAY_OWNER and port["id"] not in {p["id"] for p in ports}:
                self.state.remove("ports", port["id"])
        for port in ports:
            self.state.put("ports", port)

    # -- hooks ------------------------------------------------------------------------------
    def router_created(self, router):
        with self.state._lock:  # noqa: SLF001
            self.routers[router["id"]] = copy.deepcopy(router)
        self._refresh_router_ports(router)
        self._touch()

    router_updated = router_created

    def router_deleted(self, router):
        with self.state._lock:  # noqa: SLF001
            self.routers.pop(router["id"], None)
        snap = self.state.snapshot()
        for port in snap.ports.values():
            if port.get("device_id") == router["id"]:
                self.state.remove("ports", port["id"])
        self._touch()

    def floatingip_created(self, fip):
        with self.state._lock:  # noqa: SLF001
            self.floatingips[fip["id"]] = copy.deepcopy(fip)
        self._touch()

    floatingip_updated = floatingip_created

    def floatingip_deleted(self, fip):
        with self.state._lock:  # noqa: SLF001
            self.floatingips.pop(fip["id"], None)
        self._touch()

    def port_deleted(self, port, network):
        super().port_deleted(port, network)
        with self.state._lock:  # noqa: SLF001 - the service disassociates them too
            for fip in self.floatingips.values():
                if fip.get("port_id") == port["id"]:
                    fip.update(port_id=None, fixed_ip_address=None, router_id=None)
        self._touch()

    def security_group_created(self, group):
        with self.state._lock:  # noqa: SLF001
            self.security_groups[group["id"]] = copy.deepcopy(group)
        self._touch()

    security_group_updated = security_group_created

    def security_group_deleted(self, group):
        with self.state._lock:  # noqa: SLF001
            self.security_groups.pop(group["id"], None)
        self._touch()

    # -- convergence ----------------------------------------------------------------------------
    def converge(self) -> None:
        for _round in range(3):
            generation = self.state.generation
            snap = self.state.snapshot()
            with self.state._lock:  # noqa: SLF001
                routers = copy.deepcopy(self.routers)
                fips = copy.deepcopy(self.floatingips)
                groups = copy.deepcopy(list(self.security_groups.values()))
            steps = (("l2", self.l2.converge, (snap,)),
                     ("dhcp", self.dhcp.converge, (snap,)),
                     ("l3", self._converge_l3, (snap, routers, fips)),
                     ("firewall", self._converge_firewall, (snap, groups)))
            failed = False
            for name, step, args in steps:
                try:
                    step(*args)
                except Exception:  # noqa: BLE001 - the next pass retries
                    failed = True
                    LOG.exception("dataplane: %s converge failed", name)
            # the DHCP and L3 agents bind their own ports to this host, which the
            # L2 agent then serves: go round again while that changes the state
            if not failed and self.state.generation == generation:
                break
        with self._converged:
            self.passes += 1
            self.converged_generation = generation
            self._converged.notify_all()

    def _converge_l3(self, snap, routers, fips) -> None:
        if self.l3 is not None:
            self.l3.converge(snap, routers, fips)

    def _converge_firewall(self, snap, groups) -> None:
        if self.firewall is None:
            return
        known = {g["id"] for g in groups}
        wanted = {g for p in snap.ports.values() for g in p.get("security_groups") or []}
        if wanted - known and self.manager is not None:
            # groups made without a hook (a project's default group appears on first use)
            ctx = RequestContext.internal_admin()
            for group in self.manager.list_security_groups(ctx):
                if group["id"] in wanted - known:
                    groups.append(group)
                    with self.state._lock:  # noqa: SLF001
                        self.security_groups.setdefault(group["id"], copy.deepcopy(group))
        ports, rules, members = ports_from_state(list(snap.ports.values()), groups, self.host,
                                                 l2.tap_name)
        self.firewall.converge(ports, rules, members)

    def teardown_host(self) -> None:
        """Remove everything this driver made on the host (tests, migration)."""
        from pocketstack.network.agents.state import Snapshot

        empty = Snapshot()
        if self.l3 is not None:
            self.l3.converge(empty, {}, {})
        self.dhcp.converge(empty)
        self.l2.converge(empty)
        if self.firewall is not None:
            self.firewall.remove_all()
