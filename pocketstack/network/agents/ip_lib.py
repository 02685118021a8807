"""iproute2 through rootwrap: the few link/namespace operations agents need."""

from __future__ import annotations

import os


class IpLib:
    def __init__(self, rootwrap):
        self.rw = rootwrap

    # links in the host namespace ----------------------------------------------
    @staticmethod
    def exists(dev: str) -> bool:
        return os.path.exists(f"/sys/class/net/{dev}")

    @staticmethod
    def master(dev: str) -> str | None:
        try:
            return os.path.basename(os.readlink(f"/sys/class/net/{dev}/master"))
        except OSError:
            return None

    @staticmethod
    def links() -> list[str]:
        try:
            return os.listdir("/sys/class/net")
        except FileNotFoundError:
            return []

    @staticmethod
    def is_bridge(dev: str) -> bool:
        return os.path.isdir(f"/sys/class/net/{dev}/bridge")

    @staticmethod
    def mtu(dev: str) -> int:
        try:
            with open(f"/sys/class/net/{dev}/mtu") as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    @staticmethod
    def is_up(dev: str) -> bool:
        try:
            with open(f"/sys/class/net/{dev}/flags") as f:
                return bool(int(f.read(), 16) & 1)
        except (OSError, ValueError):
            return False

    def ip(self, *args: str, check: bool = True) -> str:
        if check:
            return self.rw.execute("ip", *args)
        return self.rw.run("ip", *args)[1]

    def delete(self, dev: str) -> None:
        if self.exists(dev):
            self.rw.run("ip", "link", "delete", dev)

    def set_master(self, dev: str, bridge: str) -> None:
        if self.master(dev) != bridge:
            self.ip("link", "set", dev, "master", bridge)

    def set_up(self, dev: str, mtu: int | None = None) -> None:
        if mtu and self.mtu(dev) != mtu:
            self.ip("link", "set", dev, "mtu", str(mtu))
        if not self.is_up(dev):
            self.ip("link", "set", dev, "up")

    # namespaces -------------------------------------------------------------
    @staticmethod
    def namespaces() -> list[str]:
        try:
            return os.listdir("/run/netns")
        except FileNotFoundError:
            return []

    @staticmethod
    def ns_exists(ns: str) -> bool:
        return os.path.exists(f"/run/netns/{ns}")

    def ensure_ns(self, ns: str) -> None:
        if not self.ns_exists(ns):
            self.ip("netns", "add", ns)
            self.ip("-n", ns, "link", "set", "lo", "up")

    def delete_ns(self, ns: str) -> None:
        if self.ns_exists(ns):
            self.rw.run("ip", "netns", "delete", ns)

    def ns_links(self, ns: str) -> dict[str, dict]:
        """name -> {"address", "up", "mtu"} of the links in ``ns``."""
        import json

        out = self.ip("-n", ns, "-j", "link", "show", check=False) or "[]"
        return {link["ifname"]: {"address": link.get("address"), "mtu": link.get("mtu"),
                                 "up": "UP" in link.get("flags", [])}
                for link in json.loads(out)}

    def ns_addresses(self, ns: str, dev: str) -> set[str]:
        import json

        out = self.ip("-n", ns, "-j", "addr", "show", "dev", dev, check=False) or "[]"
        result = set()
        for link in json.loads(out):
            for a in link.get("addr_info", []):
                result.add(f"{a['local']}/{a['prefixlen']}")
        return result
