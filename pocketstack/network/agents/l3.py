"""The L3 agent: routers as network namespaces, SNAT and floating IPs.

For each router (``admin_state_up``) this host serves:

- namespace ``qrouter-<router>`` with IPv4 and IPv6 forwarding on;
- one interface per attached port ``qr-<port>`` (the port's MAC, its fixed
  IPs with the subnet's prefix: the subnet's gateway address) and, with an
  external gateway, ``qg-<port>`` on the external network with the gateway
  port's addresses and a default route via the external subnet's gateway.
  Each is a veth whose host end ``tap<port>`` goes on the network's switch
  through the L2 back end (the same one instances and DHCP ports use);
- extra routes (``routes``) as ``proto static`` routes;
- the ``nat`` table of the namespace (owned by the agent, written whole and
  atomically with ``iptables-restore`` when its content changed): floating
  IPs as 1:1 DNAT (``PREROUTING``/``OUTPUT``) + SNAT (``POSTROUTING``), then
  SNAT of everything else leaving by the gateway to the gateway address when
  ``enable_snat``; traffic between the router's own subnets is not NATed;
  169.254.169.254:80 from the internal interfaces is redirected to the
  router's metadata proxy when one is configured;
- each floating IP as a /32 on ``qg-`` (so the namespace answers ARP for it;
  a gratuitous ARP announces it). When a floating IP goes away or moves to
  another fixed IP, the conntrack entries of its old mapping are deleted so
  the change takes effect at once, for established flows too.

Ownership: ``<state_path>/l3/routers.json`` lists the routers this agent set
up, so after a restart it still removes what is no longer wanted and never
touches another agent's namespaces.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import logging
import os
import re
import sys
import threading
import time

from pocketstack.network.agents.ip_lib import IpLib
from pocketstack.network.agents.l2 import L2Backend, tap_name
from pocketstack.network.agents.state import Snapshot

LOG = logging.getLogger(__name__)
NS_PREFIX = "qrouter-"
INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                    "network:ha_router_replicated_interface")
GATEWAY_OWNER = "network:router_gateway"
METADATA_IP = "169.254.169.254"
METADATA_PORT = 9697


def ns_name(router_id: str) -> str:
    return NS_PREFIX + router_id


def internal_device(port_id: str) -> str:
    return ("qr-" + port_id)[:14]


def gateway_device(port_id: str) -> str:
    return ("qg-" + port_id)[:14]


class RouterState:
    """Routers and floating IPs, as the networking service renders them (the
    L2/DHCP ``DesiredState`` holds networks, subnets and ports)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.routers: dict[str, dict] = {}
        self.floatingips: dict[str, dict] = {}
        self.changed = threading.Event()
        self.generation = 0

    def replace(self, routers: list[dict], floatingips: list[dict]) -> None:
        with self._lock:
            self.routers = {r["id"]: copy.deepcopy(r) for r in routers}
            self.floatingips = {f["id"]: copy.deepcopy(f) for f in floatingips}
            self.generation += 1
            self.changed.set()

    def put(self, kind: str, item: dict) -> None:
        with self._lock:
            getattr(self, kind)[item["id"]] = copy.deepcopy(item)
            self.generation += 1
            self.changed.set()

    def remove(self, kind: str, item_id: str) -> None:
        with self._lock:
            getattr(self, kind).pop(item_id, None)
            self.generation += 1
            self.changed.set()

    def snapshot(self) -> tuple[dict[str, dict], dict[str, dict]]:
        with self._lock:
            return copy.deepcopy(self.routers), copy.deepcopy(self.floatingips)


def _prefixlen(snap: Snapshot, fixed: dict) -> int | None:
    subnet = snap.subnets.get(fixed.get("subnet_id") or "")
    if subnet is None:
        return None
    return ipaddress.ip_network(subnet["cidr"]).prefixlen


class RouterMetadataProxy:
    """Starts the metadata proxy (``agents.metadata_proxy --router-id``) in a
    router's namespace on ``METADATA_PORT``; the NAT table redirects
    169.254.169.254:80 from the internal interfaces to it. The proxy tells the
    metadata agent the router, which finds the instance by source address
    among the router's networks. It exits by itself when its pid file goes."""

    def __init__(self, rootwrap, state_dir: str, socket_path: str):
        self.rw = rootwrap
        self.dir = state_dir
        self.socket_path = socket_path

    def pid_file(self, router_id: str) -> str:
        return os.path.join(self.dir, router_id, "metadata-proxy.pid")

    def pid(self, router_id: str) -> int | None:
        try:
            with open(self.pid_file(router_id)) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return pid if router_id.encode() in f.read() else None
        except (OSError, ValueError):
            return None

    def __call__(self, router_id: str, ns: str) -> None:
        if self.pid(router_id) is not None:
            return
        os.makedirs(os.path.dirname(self.pid_file(router_id)), exist_ok=True)
        self.rw.execute("ip", "netns", "exec", ns, sys.executable, "-m",
                        "pocketstack.network.agents.metadata_proxy", f"--router-id={router_id}",
                        f"--socket={self.socket_path}", f"--pid-file={self.pid_file(router_id)}",
                        f"--bind=0.0.0.0:{METADATA_PORT}")
        for _ in range(100):
            if self.pid(router_id) is not None:
                return
            time.sleep(0.02)

    def stop(self, router_id: str) -> None:
        pid = self.pid(router_id)
        try:
            os.unlink(self.pid_file(router_id))
        except FileNotFoundError:
            pass
        for _ in range(150):  # it looks at its pid file once a second
            if pid is None or not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.02)
        try:
            os.rmdir(os.path.dirname(self.pid_file(router_id)))
        except OSError:
            pass


class L3Agent:
    def __init__(self, host: str, state_path: str, ip: IpLib, backend: L2Backend, *,
                 update_port=None, metadata_proxy=None):
        """``update_port(port_id, body)`` binds router ports to this host through
        the networking service (so the L2 agent keeps their networks here);
        ``metadata_proxy(router_id, namespace)`` starts (idempotently) the
        router's metadata proxy listening on ``METADATA_PORT`` in the
        namespace, and ``metadata_proxy.stop(router_id)`` stops it."""
        self.host = host
        self.dir = os.path.join(state_path, "l3")
        self.owned_file = os.path.join(self.dir, "routers.json")
        self.ip = ip
        self.rw = ip.rw
        self.backend = backend
        self.update_port = update_port
        self.metadata_proxy = metadata_proxy

    # -- ownership ---------------------------------------------------------------------
    def owned(self) -> set[str]:
        try:
            with open(self.owned_file) as f:
                return set(json.load(f))
        except (FileNotFoundError, ValueError):
            return set()

    def _save_owned(self, owned: set[str]) -> None:
        os.makedirs(self.dir, exist_ok=True)
        with open(self.owned_file + ".tmp", "w") as f:
            json.dump(sorted(owned), f)
        os.replace(self.owned_file + ".tmp", self.owned_file)

    # -- what is wanted ----------------------------------------------------------------
    @staticmethod
    def router_ports(snap: Snapshot, router_id: str) -> tuple[list[dict], dict | None]:
        interfaces, gateway = [], None
        for port in snap.ports.values():
            if port.get("device_id") != router_id:
                continue
            if port.get("device_owner") in INTERFACE_OWNERS:
                interfaces.append(port)
            elif port.get("device_owner") == GATEWAY_OWNER:
                gateway = port
        interfaces.sort(key=lambda p: p["id"])
        return interfaces, gateway

    def wanted(self, routers: dict[str, dict]) -> dict[str, dict]:
        return {rid: r for rid, r in routers.items() if r.get("admin_state_up", True)}

    # -- converge -----------------------------------------------------------------------
    def converge(self, snap: Snapshot, routers: dict[str, dict],
                 floatingips: dict[str, dict]) -> None:
        wanted = self.wanted(routers)
        owned = self.owned()
        if set(wanted) - owned:
            self._save_owned(owned | set(wanted))
        for router in wanted.values():
            fips = [f for f in floatingips.values()
                    if f.get("router_id") == router["id"] and f.get("port_id")
                    and f.get("fixed_ip_address")]
            try:
                self.converge_router(snap, router, fips)
            except Exception:  # noqa: BLE001 - other routers still converge
                LOG.exception("l3: router %s", router["id"])
        stale = (owned | set(wanted)) - set(wanted)
        left = set()
        for router_id in stale:
            try:
                self.remove_router(router_id)
            except Exception:  # noqa: BLE001
                LOG.exception("l3: removing router %s", router_id)
            if self.ip.ns_exists(ns_name(router_id)):
                left.add(router_id)  # tried again next pass
        if stale:
            self._save_owned(set(wanted) | left)

    def _bind(self, port: dict) -> None:
        if port.get("binding:host_id") != self.host and self.update_port is not None:
            try:
                self.update_port(port["id"], {"binding:host_id": self.host})
            except Exception:  # noqa: BLE001 - the port may be going away
                LOG.warning("l3: could not bind port %s here", port["id"], exc_info=True)

    def _plug(self, ns: str, port: dict, inner: str, network: dict | None) -> None:
        """veth ``tap<port>`` (host, on the network's switch) - ``inner`` (in ns)."""
        host_dev = tap_name(port["id"])
        mtu = str(int((network or {}).get("mtu") or 1500))
        links = self.ip.ns_links(ns)
        if inner in links and not self.ip.exists(host_dev):
            self.ip.ip("-n", ns, "link", "delete", inner)
            links.pop(inner)
        if inner not in links:
            if self.ip.exists(host_dev):
                self.ip.delete(host_dev)
            self.ip.ip("link", "add", host_dev, "mtu", mtu, "type", "veth", "peer", "name",
                       inner, "mtu", mtu, "netns", ns)
            links[inner] = {"address": None, "up": False}
        mac = port["mac_address"].lower()
        if (links[inner].get("address") or "").lower() != mac:
            self.ip.ip("-n", ns, "link", "set", inner, "address", mac)
        if not links[inner].get("up"):
            self.ip.ip("-n", ns, "link", "set", inner, "up")
        if network is not None:
            try:
                self.backend.plug(network, host_dev)
            except Exception as exc:  # noqa: BLE001 - the switch comes with the L2 agent's pass
                LOG.info("l3: %s not on its switch yet: %s", host_dev, exc)
        self.ip.set_up(host_dev)

    def _addresses(self, ns: str, dev: str, wanted: set[str]) -> None:
        have = {a for a in self.ip.ns_addresses(ns, dev) if not a.startswith("fe80:")}
        for cidr in sorted(wanted - have):
            extra = ["nodad"] if ":" in cidr else []
            self.ip.ip("-n", ns, "addr", "replace", cidr, "dev", dev, *extra)
        for cidr in sorted(have - wanted):
            self.ip.ip("-n", ns, "addr", "del", cidr, "dev", dev, check=False)

    def converge_router(self, snap: Snapshot, router: dict, fips: list[dict]) -> None:
        rid = router["id"]
        ns = ns_name(rid)
        self.ip.ensure_ns(ns)
        # forwarding; no duplicate address detection on the router's own ports
        # (their addresses are allocated by the service; DAD only delays them)
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                    "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"):
            self.rw.execute("ip", "netns", "exec", ns, "sysctl", "-q", "-w", key)
        interfaces, gateway = self.router_ports(snap, rid)
        if not router.get("external_gateway_info"):
            gateway = None
        wanted_devs = {}
        for port in interfaces:
            wanted_devs[internal_device(port["id"])] = port
        if gateway is not None:
            wanted_devs[gateway_device(gateway["id"])] = gateway
        # devices that are no longer wanted go first (a re-plugged subnet may move)
        for dev in self.ip.ns_links(ns):
            if (dev.startswith("qr-") or dev.startswith("qg-")) and dev not in wanted_devs:
                self.ip.ip("-n", ns, "link", "delete", dev, check=False)
        internal_cidrs: list[str] = []
        for dev, port in wanted_devs.items():
            self._bind(port)
            self._plug(ns, port, dev, snap.networks.get(port["network_id"]))
            cidrs = set()
            for fixed in port.get("fixed_ips") or []:
                plen = _prefixlen(snap, fixed)
                if plen is None:
                    continue
                cidrs.add(f"{fixed['ip_address']}/{plen}")
                if dev.startswith("qr-"):
                    internal_cidrs.append(str(ipaddress.ip_network(
                        f"{fixed['ip_address']}/{plen}", strict=False)))
            if dev.startswith("qg-"):
                cidrs |= {f"{f['floating_ip_address']}/32" for f in fips}
            self._addresses(ns, dev, cidrs)
        gw_dev = gateway_device(gateway["id"]) if gateway is not None else None
        self._routes(ns, snap, router, gateway, gw_dev)
        self._nat(ns, router, gateway, gw_dev, fips, internal_cidrs)
        if self.metadata_proxy is not None and interfaces:
            self.metadata_proxy(rid, ns)

    def _routes(self, ns: str, snap: Snapshot, router: dict, gateway: dict | None,
                gw_dev: str | None) -> None:
        for version in (4, 6):
            family = f"-{version}"
            via = None
            if gateway is not None:
                for fixed in gateway.get("fixed_ips") or []:
                    subnet = snap.subnets.get(fixed.get("subnet_id") or "")
                    if subnet and subnet.get("gateway_ip") and \
                            ipaddress.ip_address(subnet["gateway_ip"]).version == version:
                        via = subnet["gateway_ip"]
                        break
            routes = json.loads(self.ip.ip("-n", ns, family, "-j", "route", "show",
                                           "default") or "[]")
            current = next((r.get("gateway") for r in routes if r.get("dst") == "default"),
                           None)
            if via and current != via:
                self.ip.ip("-n", ns, family, "route", "replace", "default", "via", via,
                           "dev", gw_dev)
            elif not via and routes:
                self.ip.ip("-n", ns, family, "route", "del", "default", check=False)
            wanted = {}
            for route in router.get("routes") or []:
                dest = ipaddress.ip_network(route["destination"], strict=False)
                if dest.version == version:
                    wanted[str(dest)] = route["nexthop"]
            have = {}
            for r in json.loads(self.ip.ip("-n", ns, family, "-j", "route", "show", "proto",
                                           "static") or "[]"):
                dst = r.get("dst")
                if dst and dst != "default":
                    dst = str(ipaddress.ip_network(dst, strict=False))
                have[dst] = r.get("gateway")
            for dest, hop in wanted.items():
                if have.get(dest) != hop:
                    self.ip.ip("-n", ns, family, "route", "replace", dest, "via", hop,
                               "proto", "static", check=False)
            for dest in set(have) - set(wanted):
                if dest != "default":
                    self.ip.ip("-n", ns, family, "route", "del", dest, "proto", "static",
                               check=False)

    # -- NAT -----------------------------------------------------------------------------
    def nat_rules(self, router: dict, gateway: dict | None, gw_dev: str | None,
                  fips: list[dict], internal_cidrs: list[str]) -> list[str]:
        pre, out, post = [], [], []
        if self.metadata_proxy is not None:
            pre.append(f"-A PREROUTING -d {METADATA_IP}/32 -i qr-+ -p tcp -m tcp --dport 80 "
                       f"-j REDIRECT --to-ports {METADATA_PORT}")
        if gateway is not None:
            for fip in sorted(fips, key=lambda f: f["floating_ip_address"]):
                outside, inside = fip["floating_ip_address"], fip["fixed_ip_address"]
                if ipaddress.ip_address(outside).version != 4:
                    continue
                pre.append(f"-A PREROUTING -d {outside}/32 -j DNAT --to-destination {inside}")
                out.append(f"-A OUTPUT -d {outside}/32 -j DNAT --to-destination {inside}")
                post.append(f"-A POSTROUTING -s {inside}/32 -o {gw_dev} -j SNAT "
                            f"--to-source {outside}")
                # from another instance behind this router to the floating IP: the
                # reply must come back through the router
                for cidr in internal_cidrs:
                    if ipaddress.ip_network(cidr).version == 4:
                        post.append(f"-A POSTROUTING -s {cidr} -d {inside}/32 -m conntrack "
                                    f"--ctstate DNAT -j SNAT --to-source {outside}")
            info = router.get("external_gateway_info") or {}
            gw_v4 = [f["ip_address"] for f in gateway.get("fixed_ips") or []
                     if ipaddress.ip_address(f["ip_address"]).version == 4]
            if info.get("enable_snat", True) and gw_v4:
                post.append(f"-A POSTROUTING -o {gw_dev} -m conntrack ! --ctstate DNAT "
                            f"-j SNAT --to-source {gw_v4[0]}")
        return ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
                ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"] + pre + out + post + [
            "COMMIT"]

    def _nat(self, ns: str, router: dict, gateway, gw_dev, fips, internal_cidrs) -> None:
        lines = self.nat_rules(router, gateway, gw_dev, fips, internal_cidrs)
        digest = hashlib.sha1("\n".join(lines).encode()).hexdigest()[:16]
        current = self.rw.execute("ip", "netns", "exec", ns, "iptables-save", "-t", "nat")
        if f"h:{digest}" in current:
            return
        old = dict(re.findall(r"-A PREROUTING -d ([0-9.]+)/32 -j DNAT --to-destination "
                              r"([0-9.]+)", current))
        # the hash rides on a no-op rule in the table itself
        lines.insert(-1, f'-A POSTROUTING -m comment --comment "h:{digest}"')
        self.rw.execute("ip", "netns", "exec", ns, "iptables-restore", "-w", "5",
                        stdin="\n".join(lines) + "\n")
        new = {f["floating_ip_address"]: f["fixed_ip_address"] for f in fips}
        for outside, inside in old.items():
            if new.get(outside) != inside:
                # stop flows of the old mapping now, both directions
                for flag in ("-d", "-q"):
                    self.rw.run("ip", "netns", "exec", ns, "conntrack", "-D", "-f", "ipv4",
                                flag, outside)
                self.rw.run("ip", "netns", "exec", ns, "conntrack", "-D", "-f", "ipv4",
                            "-s", inside, "-q", outside)
        if gw_dev:
            for outside, inside in new.items():
                if old.get(outside) != inside and ipaddress.ip_address(outside).version == 4:
                    self._announce(ns, gw_dev, outside)

    def _announce(self, ns: str, dev: str, address: str) -> None:
        """Gratuitous ARP so the external network learns where the address is now."""
        self.rw.run("ip", "netns", "exec", ns, "arping", "-U", "-c", "1", "-i", dev,
                    "-S", address, address)

    # -- removal -------------------------------------------------------------------------
    def remove_router(self, router_id: str) -> None:
        ns = ns_name(router_id)
        if self.metadata_proxy is not None and hasattr(self.metadata_proxy, "stop"):
            self.metadata_proxy.stop(router_id)
        if self.ip.ns_exists(ns):
            for dev in self.ip.ns_links(ns):
                if dev.startswith(("qr-", "qg-")):
                    self.ip.ip("-n", ns, "link", "delete", dev, check=False)
            self.ip.delete_ns(ns)
