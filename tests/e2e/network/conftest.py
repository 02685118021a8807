"""Fixtures for the network data-plane e2e tests: every namespace, link and
process a test makes carries a unique prefix and is removed afterwards."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import require_binaries, require_root
from tests.e2e.network.nettools import netns_list, sh, unique


class Lab:
    """Namespaces and veths of one test."""

    def __init__(self):
        self.tag = unique()
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.cleanups: list = []

    def ns(self, name: str) -> str:
        ns = f"{self.tag}-{name}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        self.namespaces.append(ns)
        sh(ns, "ip", "link", "set", "lo", "up")
        return ns

    def bridge(self, ns: str | None, name: str) -> str:
        sh(ns, "ip", "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh(ns, "ip", "link", "set", name, "up")
        if ns is None:
            self.links.append(name)
        return name

    def instance(self, host_ns: str | None, bridge: str | None, name: str, mac: str,
                 cidrs: list[str], tap: str | None = None, gateway: str | None = None) -> dict:
        """A namespace standing for an instance: eth0 with ``mac`` and the
        addresses, its peer ``tap`` in ``host_ns`` on ``bridge``."""
        ns = self.ns(name)
        tap = tap or f"tap{self.tag}{name}"[:15]
        args = ["ip", "link", "add", tap]
        if host_ns:
            args += ["netns", host_ns]
        subprocess.run(args + ["type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        if host_ns is None:
            self.links.append(tap)
        sh(ns, "ip", "link", "set", "eth0", "address", mac)
        for cidr in cidrs:
            sh(ns, "ip", "addr", "add", cidr, "dev", "eth0", "nodad")
        sh(ns, "ip", "link", "set", "eth0", "up")
        if gateway:
            sh(ns, "ip", "route", "add", "default", "via", gateway)
        if bridge:
            sh(host_ns, "ip", "link", "set", tap, "master", bridge)
        sh(host_ns, "ip", "link", "set", tap, "up")
        return {"ns": ns, "tap": tap, "mac": mac, "ips": [c.split("/")[0] for c in cidrs]}

    def close(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001
                pass
        for link in self.links:
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    def leftovers(self) -> list[str]:
        found = [f"netns {n}" for n in netns_list() if n.startswith(self.tag)]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        found += [f"link {line}" for line in links.splitlines() if self.tag in line]
        return found


@pytest.fixture
def lab():
    require_root()
    require_binaries("ip", "iptables", "ip6tables", "ipset", "conntrack", "busybox")
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()
    assert lab.leftovers() == []


@pytest.fixture
def rootwrap_helper():
    from pocketstack import rootwrap

    helper = rootwrap.RootHelper()
    yield helper
    helper.close()
