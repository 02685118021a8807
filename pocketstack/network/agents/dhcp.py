"""The DHCP agent: per network with DHCP, a namespace, dnsmasq and the metadata proxy.

For a network with an IPv4 subnet that has ``enable_dhcp``:

- a DHCP port (``device_owner`` ``network:dhcp``, bound to this host) is
  created through the networking service when missing;
- namespace ``qdhcp-<network>`` holds ``ns-<port>`` (the port's MAC and
  addresses, plus 169.254.169.254/32 for metadata), a veth whose host end
  ``tap<port>`` is on the network's switch;
- dnsmasq in it serves fixed leases only (``static`` ranges): one line per
  port in ``<dir>/hosts/hosts`` (MAC, hostname, IP), options per subnet in
  ``<dir>/opts/opts`` (router, DNS, MTU, host routes; the metadata route
  169.254.169.254/32 via the DHCP port when the subnet has no router).
  dnsmasq watches those directories (``--dhcp-hostsdir``/``--dhcp-optsdir``,
  inotify), so a new port is served without touching the process. Only when
  a line goes away (a port deleted or changed), or the command line changes
  (ranges, interface), is dnsmasq restarted; leases live in its lease file,
  so clients keep theirs either way. (No SIGHUP: dnsmasq 2.90 crashes
  answering the next new client after a SIGHUP reload of its host file.)
- the metadata proxy listens on 169.254.169.254:80 in it.

Ownership: ``<state_path>/dhcp/<network>/`` exists for every network this
agent serves; after a restart the directories say what to tear down.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import sys
import time

from pocketstack.network.agents.ip_lib import IpLib
from pocketstack.network.agents.l2 import L2Backend, tap_name
from pocketstack.network.agents.state import DHCP_OWNER, ROUTER_OWNERS, Snapshot

LOG = logging.getLogger(__name__)
METADATA_IP = "169.254.169.254"
NS_RECHECK = 30.0  # seconds a converged DHCP namespace is trusted without a look
NS_PREFIX = "qdhcp-"


def ns_name(network_id: str) -> str:
    return NS_PREFIX + network_id


def ns_device(port_id: str) -> str:
    return ("ns-" + port_id)[:14]


class DhcpAgent:
    def __init__(self, host: str, state_path: str, ip: IpLib, backend: L2Backend, *,
                 create_port=None, update_port=None, metadata_socket: str | None = None,
                 dns_domain: str = "openstacklocal", lease_seconds: int = 86400,
                 enable_metadata: bool = True):
        self.host = host
        self.dir = os.path.join(state_path, "dhcp")
        self.ip = ip
        self.rw = ip.rw
        self.backend = backend
        self.create_port = create_port
        self.update_port = update_port
        self.metadata_socket = metadata_socket
        self.dns_domain = dns_domain
        self.lease_seconds = lease_seconds
        self.enable_metadata = enable_metadata and metadata_socket is not None
        self._ns_done: dict[str, tuple] = {}
        self._dhcp_subnets: dict[str, set[str]] = {}
        os.makedirs(self.dir, exist_ok=True)

    # -- what is wanted ---------------------------------------------------------

    def wanted(self, snap: Snapshot) -> dict[str, dict]:
        return {nid: net for nid, net in snap.networks.items()
                if snap.dhcp_subnets(nid) and net.get("admin_state_up", True)}

    def _dhcp_port(self, snap: Snapshot, network: dict) -> dict | None:
        subnets = {s["id"] for s in snap.dhcp_subnets(network["id"])}
        for port in snap.ports_of(network["id"]):
            if port.get("device_owner") == DHCP_OWNER and \
                    port.get("binding:host_id") in (self.host, None, ""):
                have = {f["subnet_id"] for f in port.get("fixed_ips") or []}
                if subnets - have and self.update_port is not None:
                    port = self.update_port(port["id"], {"fixed_ips": [
                        *({"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]}
                          for f in port.get("fixed_ips") or [] if f["subnet_id"] in subnets),
                        *({"subnet_id": s} for s in sorted(subnets - have))]})
                return port
        if self.create_port is None:
            return None
        return self.create_port({
            "network_id": network["id"], "device_owner": DHCP_OWNER,
            "device_id": f"dhcp-{self.host}-{network['id']}"[:255],
            "binding:host_id": self.host, "project_id": network.get("project_id"),
            "fixed_ips": [{"subnet_id": s} for s in sorted(subnets)], "name": ""})

    # -- converge -------------------------------------------------------------------

    def converge(self, snap: Snapshot) -> None:
        wanted = self.wanted(snap)
        for network in wanted.values():
            try:
                port = self._dhcp_port(snap, network)
                if port is None:
                    continue
                snap.ports[port["id"]] = port
                self._converge_network(snap, network, port)
            except Exception:  # noqa: BLE001
                LOG.exception("dhcp: network %s", network["id"])
        for nid in self.served():
            if nid not in wanted:
                try:
                    self.disable(nid)
                except Exception:  # noqa: BLE001
                    LOG.exception("dhcp: removing network %s", nid)

    def served(self) -> list[str]:
        return [n for n in os.listdir(self.dir) if os.path.isdir(os.path.join(self.dir, n))]

    def _net_dir(self, network_id: str) -> str:
        return os.path.join(self.dir, network_id)

    def _converge_network(self, snap: Snapshot, network: dict, port: dict) -> None:
        nid = network["id"]
        directory = self._net_dir(nid)
        os.makedirs(directory, exist_ok=True)
        ns = ns_name(nid)
        mtu = int(network.get("mtu") or 1500)
        self.backend.ensure_network(network, [])
        tap, inner = tap_name(port["id"]), ns_device(port["id"])
        # the namespace side needs `ip` calls to check; skip them when this port
        # was converged with the same facts recently and its devices still exist
        subnets = {s["id"]: s for s in snap.subnets_of(nid)}
        want = {f"{METADATA_IP}/32"} if self.enable_metadata else set()
        for fixed in port.get("fixed_ips") or []:
            subnet = subnets.get(fixed["subnet_id"])
            if subnet:
                prefix = ipaddress.ip_network(subnet["cidr"]).prefixlen
                want.add(f"{fixed['ip_address']}/{prefix}")
        key = (port["id"], port["mac_address"], mtu, frozenset(want))
        done = self._ns_done.get(nid)
        if not (done and done[0] == key and time.monotonic() - done[1] < NS_RECHECK
                and self.ip.ns_exists(ns) and self.ip.exists(tap)):
            self._converge_ns(ns, nid, tap, inner, port, mtu, want)
            self._ns_done[nid] = (key, time.monotonic())
        self.backend.plug(network, tap)
        self._dnsmasq(snap, network, port, inner)
        if self.enable_metadata:
            self._metadata_proxy(nid)

    def _converge_ns(self, ns, nid, tap, inner, port, mtu, want) -> None:
        self.ip.ensure_ns(ns)
        links = self.ip.ns_links(ns)
        if inner not in links or not self.ip.exists(tap):
            LOG.info("dhcp: (re)making port %s of network %s (links %s, tap %s)", port["id"],
                     nid, sorted(links), self.ip.exists(tap))
            self.ip.delete(tap)
            if inner in links:
                self.ip.ip("-n", ns, "link", "delete", inner, check=False)
            self.ip.ip("link", "add", tap, "mtu", str(mtu), "type", "veth", "peer", "name",
                       inner, "mtu", str(mtu), "netns", ns)
            links = self.ip.ns_links(ns)
        if links[inner]["address"] != port["mac_address"]:
            self.ip.ip("-n", ns, "link", "set", inner, "address", port["mac_address"])
        if not links[inner]["up"]:
            self.ip.ip("-n", ns, "link", "set", inner, "up")
        have = self.ip.ns_addresses(ns, inner)
        for addr in want - have:
            self.ip.ip("-n", ns, "addr", "add", addr, "dev", inner)
        for addr in have - want:
            if not addr.startswith("fe80:"):
                self.ip.ip("-n", ns, "addr", "del", addr, "dev", inner, check=False)

    # -- dnsmasq ----------------------------------------------------------------------

    def port_lines(self, port: dict, subnets: set[str]) -> list[str]:
        if port.get("device_owner") == DHCP_OWNER:
            return []
        lines = []
        for fixed in port.get("fixed_ips") or []:
            if fixed.get("subnet_id") not in subnets:
                continue
            ip = fixed["ip_address"]
            name = (port.get("dns_name") or f"host-{ip.replace('.', '-')}").split(".")[0]
            lines.append(f"{port['mac_address']},{name}.{self.dns_domain},{ip},"
                         f"set:port-{port['id']}")
        return lines

    def host_lines(self, snap: Snapshot, network: dict) -> list[str]:
        subnets = {s["id"] for s in snap.dhcp_subnets(network["id"])}
        lines = []
        for port in sorted(snap.ports_of(network["id"]), key=lambda p: p["id"]):
            lines += self.port_lines(port, subnets)
        return lines

    def add_port_now(self, port: dict) -> None:
        """Fast path, from the driver's hook: a new port's lease goes into its own
        file of the served network's hosts directory at once (dnsmasq reads it by
        inotify), so the guest's first DHCP request finds it. The next pass folds
        it into the main file and removes this one."""
        nid = port.get("network_id")
        subnets = self._dhcp_subnets.get(nid)
        hosts_dir = os.path.join(self._net_dir(str(nid)), "hosts")
        if not subnets or not os.path.isdir(hosts_dir):
            return
        lines = self.port_lines(port, subnets)
        if lines:
            _write_if_changed(os.path.join(hosts_dir, f"new-{port['id']}"),
                              "\n".join(lines) + "\n")

    def opt_lines(self, snap: Snapshot, network: dict, dhcp_port: dict) -> list[str]:
        lines = []
        dhcp_ips = {f["subnet_id"]: f["ip_address"] for f in dhcp_port.get("fixed_ips") or []}
        routers = {f["subnet_id"] for p in snap.ports_of(network["id"])
                   if p.get("device_owner") in ROUTER_OWNERS for f in p.get("fixed_ips") or []}
        mtu = network.get("mtu")
        for subnet in sorted(snap.dhcp_subnets(network["id"]), key=lambda s: s["id"]):
            tag = f"tag:subnet-{subnet['id']}"
            gateway = subnet.get("gateway_ip")
            routes = [(r["destination"], r["nexthop"]) for r in subnet.get("host_routes") or []]
            if self.enable_metadata and subnet["id"] not in routers and subnet["id"] in dhcp_ips:
                routes.append((f"{METADATA_IP}/32", dhcp_ips[subnet["id"]]))
            if gateway:
                lines.append(f"{tag},option:router,{gateway}")
            else:
                lines.append(f"{tag},option:router")
            if routes:
                if gateway and not any(d == "0.0.0.0/0" for d, _ in routes):
                    routes.append(("0.0.0.0/0", gateway))
                flat = ",".join(f"{d},{n}" for d, n in routes)
                lines.append(f"{tag},option:classless-static-route,{flat}")
                lines.append(f"{tag},249,{flat}")
            if subnet.get("dns_nameservers"):
                lines.append(f"{tag},option:dns-server,{','.join(subnet['dns_nameservers'])}")
            if mtu:
                lines.append(f"{tag},option:mtu,{mtu}")
        for port in snap.ports_of(network["id"]):
            for opt in port.get("extra_dhcp_opts") or []:
                if str(opt.get("ip_version", 4)) == "4":
                    lines.append(f"tag:port-{port['id']},{opt['opt_name']},{opt['opt_value']}")
        return lines

    def command(self, network: dict, snap: Snapshot, inner: str) -> list[str]:
        directory = self._net_dir(network["id"])
        owner = os.stat(self.dir)
        import pwd

        try:
            user = pwd.getpwuid(owner.st_uid).pw_name
        except KeyError:
            user = "nobody"
        cmd = ["ip", "netns", "exec", ns_name(network["id"]), "dnsmasq", "--no-hosts",
               "--no-resolv", "--port=0", "--bind-interfaces", f"--interface={inner}",
               "--except-interface=lo", f"--user={user}", "--group=" + _group(owner.st_gid),
               f"--pid-file={directory}/pid", f"--dhcp-hostsdir={directory}/hosts",
               f"--dhcp-optsdir={directory}/opts", f"--dhcp-leasefile={directory}/leases",
               f"--log-facility={directory}/dnsmasq.log", "--log-dhcp", "--conf-file=/dev/null",
               f"--domain={self.dns_domain}", "--dhcp-authoritative"]
        size = 0
        for subnet in sorted(snap.dhcp_subnets(network["id"]), key=lambda s: s["id"]):
            net = ipaddress.ip_network(subnet["cidr"])
            size += net.num_addresses
            cmd.append(f"--dhcp-range=set:subnet-{subnet['id']},{net.network_address},static,"
                       f"{net.netmask},{self.lease_seconds}s")
        cmd.append(f"--dhcp-lease-max={min(size, 1 << 24)}")
        return cmd

    def _pid(self, path: str, marker: str) -> int | None:
        try:
            with open(path) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            pass
        return None

    def _dnsmasq(self, snap: Snapshot, network: dict, port: dict, inner: str) -> None:
        directory = self._net_dir(network["id"])
        removed = False
        self._dhcp_subnets[network["id"]] = {s["id"] for s in snap.dhcp_subnets(network["id"])}
        # fast-path files of ports now in the main file (or deleted meanwhile)
        hosts_dir = os.path.join(directory, "hosts")
        known = {p["id"] for p in snap.ports_of(network["id"])}
        for name in os.listdir(hosts_dir) if os.path.isdir(hosts_dir) else []:
            if not name.startswith("new-"):
                continue
            path = os.path.join(hosts_dir, name)
            if name[4:] not in known:
                try:
                    if os.path.getmtime(path) >= snap.taken_at:
                        continue  # written after this snapshot: the next pass decides
                except FileNotFoundError:
                    continue
                removed = True  # a port that came and went: its record must go
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for name, lines in (("hosts", self.host_lines(snap, network)),
                            ("opts", self.opt_lines(snap, network, port))):
            os.makedirs(os.path.join(directory, name), exist_ok=True)
            path = os.path.join(directory, name, name)
            try:
                with open(path) as f:
                    old = {line for line in f.read().splitlines() if line}
            except FileNotFoundError:
                old = set()
            removed |= bool(old - set(lines))
            _write_if_changed(path, "\n".join(lines) + "\n")
        cmd = self.command(network, snap, inner)
        restart = _write_if_changed(os.path.join(directory, "cmdline"), "\n".join(cmd))
        pid_file = os.path.join(directory, "pid")
        pid = self._pid(pid_file, directory)
        for stray in _pids_with(f"--pid-file={pid_file}", "dnsmasq"):
            if stray != pid:  # a dnsmasq of ours the pid file does not name
                LOG.info("dhcp: stopping stray dnsmasq %s of network %s", stray, network["id"])
                self.rw.run("kill", "-TERM", str(stray))
                _wait_gone(stray)
        if pid is not None and (restart or removed):
            LOG.info("dhcp: restarting dnsmasq of %s (%s)", network["id"],
                     "new command line" if restart else "entries removed")
            self.rw.run("kill", "-TERM", str(pid))
            _wait_gone(pid)
            pid = None
        if pid is None:
            self._prune_leases(directory, self.host_lines(snap, network))
            self.rw.execute(*cmd)
            _wait_for(lambda: self._pid(pid_file, directory))
            LOG.info("dhcp: dnsmasq started for network %s", network["id"])

    @staticmethod
    def _prune_leases(directory: str, host_lines: list[str]) -> None:
        """Forget leases of ports that no longer exist (dnsmasq is stopped): their
        addresses may already belong to new ports (what Neutron's dhcp_release
        does for a running dnsmasq)."""
        wanted = set()
        for line in host_lines:
            mac, _name, ip = line.split(",")[:3]
            wanted.add((mac.lower(), ip))
        path = os.path.join(directory, "leases")
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return
        kept = [line for line in lines
                if len(line.split()) >= 3 and (line.split()[1].lower(), line.split()[2]) in wanted]
        if kept != lines:
            with open(path, "w") as f:
                f.write("".join(line + "\n" for line in kept))

    def healthy(self) -> bool:
        """Every served network has its dnsmasq (and proxy) running."""
        for nid in self.served():
            directory = self._net_dir(nid)
            if not os.path.exists(os.path.join(directory, "cmdline")):
                continue
            if self._pid(os.path.join(directory, "pid"), directory) is None:
                return False
            if self.enable_metadata and self._pid(
                    os.path.join(directory, "metadata-proxy.pid"), nid) is None:
                return False
        return True

    # -- metadata proxy ------------------------------------------------------------------

    def _metadata_proxy(self, network_id: str) -> None:
        directory = self._net_dir(network_id)
        pid_file = os.path.join(directory, "metadata-proxy.pid")
        if self._pid(pid_file, network_id) is not None:
            return
        for stray in _pids_with(f"--pid-file={pid_file}", "metadata_proxy"):
            _wait_gone(stray, 3)  # one whose pid file went away exits by itself
        self.rw.execute("ip", "netns", "exec", ns_name(network_id), sys.executable, "-m",
                        "pocketstack.network.agents.metadata_proxy",
                        f"--network-id={network_id}", f"--socket={self.metadata_socket}",
                        f"--pid-file={pid_file}", f"--bind={METADATA_IP}:80")
        _wait_for(lambda: self._pid(pid_file, network_id))

    # -- teardown --------------------------------------------------------------------------

    def disable(self, network_id: str) -> None:
        LOG.info("dhcp: disabling network %s", network_id)
        self._ns_done.pop(network_id, None)
        self._dhcp_subnets.pop(network_id, None)
        directory = self._net_dir(network_id)
        proxy_pid = self._pid(os.path.join(directory, "metadata-proxy.pid"), network_id)
        try:  # the proxy exits by itself once its pid file is gone
            os.unlink(os.path.join(directory, "metadata-proxy.pid"))
        except FileNotFoundError:
            pass
        pid = self._pid(os.path.join(directory, "pid"), directory)
        if pid is not None:
            self.rw.run("kill", "-TERM", str(pid))
            _wait_gone(pid)
        if proxy_pid is not None:
            _wait_gone(proxy_pid, 5)
        ns = ns_name(network_id)
        if self.ip.ns_exists(ns):
            for name in self.ip.ns_links(ns):
                if name.startswith("ns-"):
                    self.ip.ip("-n", ns, "link", "delete", name, check=False)
            self.ip.delete_ns(ns)
        shutil.rmtree(directory, ignore_errors=True)
        LOG.info("dhcp: network %s no longer served", network_id)


def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return "nogroup"


def _write_if_changed(path: str, content: str) -> bool:
    try:
        with open(path) as f:
            if f.read() == content:
                return False
    except FileNotFoundError:
        pass
    # the temporary name starts with a dot: dnsmasq's directory watch skips it
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


def _pids_with(marker: str, program: str) -> list[int]:
    """PIDs whose command line contains ``marker`` and ``program``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline and program.encode() in cmdline \
                and not cmdline.startswith(b"ip\0"):
            found.append(int(entry))
    return found


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (FileNotFoundError, IndexError):
            return
        time.sleep(0.02)
