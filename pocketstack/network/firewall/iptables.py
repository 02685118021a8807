"""Security groups with iptables, ipset and conntrack, per port, on the host.

Where the rules sit
-------------------
Each instance port's host-side device (``tap...``) is a port of a Linux
bridge (the network's bridge with the Linux-bridge back end; a per-port
bridge in front of ``br-int`` with Open vSwitch), and the kernel passes
bridged IP traffic through iptables (``net.bridge.bridge-nf-call-*``), where
``-m physdev`` names the bridge port. In the ``filter`` table of both
families:

- ``FORWARD`` jumps (rule 1) to ``<p>-FWD`` for bridged traffic and
  ``INPUT`` to ``<p>-INP`` (traffic from an instance to the host itself);
- ``<p>-FWD`` sends traffic *to* each port (``--physdev-out``) through its
  ingress chain ``<p>-i<port>`` and traffic *from* it (``--physdev-in``)
  through its egress chain ``<p>-o<port>``. Port chains RETURN what they
  allow and DROP the rest, so a packet between two ports of this host is
  checked by both; what passed is ACCEPTed at the end of ``<p>-FWD``;
- the egress chain first sends the packet through ``<p>-s<port>``: only the
  port's MAC with its fixed IPs (and its ``allowed_address_pairs``, and the
  IPv6 link-local address of its MAC) may send; DHCP/ICMPv6-ND bootstrap
  traffic is let through before that, a DHCP or RA server in an instance is
  not;
- state: ``ESTABLISHED,RELATED`` returns at the top of every port chain
  (conntrack), ``INVALID`` drops; so a rule change never cuts a connection
  that is still allowed. When rules are *removed*, the conntrack entries of
  the port's connections that no rule allows any more are deleted, so those
  connections stop at once (what Neutron does, too);
- ``remote_group_id``: one ``hash:net`` ipset per group and family holding
  the addresses of the group's member ports (cloud-wide), matched with
  ``-m set``;
- ``port_security_enabled = false``: the port gets no chain and its traffic
  is accepted as is.

How it converges
----------------
``converge(ports, rules)`` is level-triggered and idempotent. The first rule
of every chain of ours is a no-op comment carrying a hash of the chain's
content, so the current state is read back with one ``iptables-save`` and
only chains whose hash differs are rewritten. All changes of a family go in
one ``iptables-restore --noflush`` transaction (re-declaring a chain flushes
and refills it atomically; stale chains are flushed and deleted in the same
transaction, after the dispatch chain stopped jumping to them). Other
chains and rules on the host are never touched.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import shutil
import time
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)

PROTOCOLS = {"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6-encap": 41,
             "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
             "icmpv6": 58, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89,
             "pgm": 113, "vrrp": 112, "sctp": 132, "udplite": 136, "dccp": 33}
PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 136: "udplite", 33: "dccp"}
# ICMPv6 a port needs to take part in IPv6 at all (MLD, router/neighbour discovery)
ICMPV6_IN = (130, 131, 132, 134, 135, 136, 143)
ICMPV6_OUT = (130, 131, 132, 133, 135, 136, 143)


@dataclass(frozen=True)
class FirewallPort:
    id: str
    device: str  # the host-side bridge port (tap)
    mac: str
    ips: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    allowed_address_pairs: tuple[tuple[str, str], ...] = ()  # (cidr, mac)
    port_security_enabled: bool = True

    @classmethod
    def from_api(cls, port: dict, device: str) -> FirewallPort:
        mac = port["mac_address"].lower()
        pairs = tuple((p["ip_address"], (p.get("mac_address") or mac).lower())
                      for p in port.get("allowed_address_pairs") or [])
        return cls(id=port["id"], device=device, mac=mac,
                   ips=tuple(f["ip_address"] for f in port.get("fixed_ips") or []),
                   security_groups=tuple(port.get("security_groups") or []),
                   allowed_address_pairs=pairs,
                   port_security_enabled=port.get("port_security_enabled", True) is not False)


def ports_from_state(ports: list[dict], security_groups: list[dict], host: str, device_name,
                     owners: tuple[str, ...] = ("compute:",)):
    """(firewall ports of ``host``, rules by group id, member addresses by group id)
    from the networking service's rendering of all ports and groups.
    ``device_name(port_id)`` names the host-side device of a port; only ports
    whose ``device_owner`` starts with one of ``owners`` are filtered (router
    and DHCP ports are not, as in Neutron)."""
    here = [FirewallPort.from_api(p, device_name(p["id"])) for p in ports
            if p.get("binding:host_id") == host
            and (p.get("device_owner") or "").startswith(owners)]
    rules = {g["id"]: list(g.get("security_group_rules") or []) for g in security_groups}
    members: dict[str, set[str]] = {}
    for p in ports:
        addresses = [f["ip_address"] for f in p.get("fixed_ips") or []]
        addresses += [a["ip_address"] for a in p.get("allowed_address_pairs") or []]
        for group in p.get("security_groups") or []:
            members.setdefault(group, set()).update(addresses)
    return here, rules, {k: sorted(v) for k, v in members.items()}


def _version(address: str) -> int:
    return ipaddress.ip_network(address, strict=False).version


def _link_local(mac: str) -> str:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui)))


def _short(port_id: str) -> str:
    return port_id.replace("-", "")[:12]


@dataclass
class Stats:
    chains_written: int = 0
    chains_removed: int = 0
    sets_changed: int = 0
    conntrack_deleted: int = 0
    restores: int = 0
    changed_ports: list[str] = field(default_factory=list)


class IptablesFirewall:
    """One per host (or per namespace standing for a host, in tests)."""

    def __init__(self, rootwrap, namespace: str | None = None, prefix: str = "pssg",
                 verify_interval: float = 60.0, arp_protection: bool = True):
        """``verify_interval``: seconds between full reads of the host's rules;
        in between, what this object wrote is trusted (a pass that changes one
        port then costs one small ``iptables-restore``)."""
        if not re.fullmatch(r"[a-z][a-z0-9]{1,7}", prefix):
            raise ValueError("prefix: 2-8 lower-case letters/digits")
        self.rw = rootwrap
        self.namespace = namespace
        self.prefix = prefix
        # rules last applied per port (to find removed permissions)
        self._applied: dict[str, frozenset | None] = {}
        self._sysctl_done = False
        self.verify_interval = verify_interval
        self._verified_at = -1e9
        self._cache: dict[int, tuple[dict, dict]] = {}
        self._sets_cache: dict[str, set[str]] | None = None
        self.arp_protection = arp_protection and shutil.which("ebtables-restore") is not None
        if arp_protection and not self.arp_protection:
            LOG.warning("firewall: ebtables-restore not found, ARP is not filtered")
        self._arp_cache: dict[str, list[str]] | None = None

    # -- commands ----------------------------------------------------------------------
    def _cmd(self, *args: str) -> list[str]:
        if self.namespace:
            return ["ip", "netns", "exec", self.namespace, *args]
        return list(args)

    def _run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        if check:
            return self.rw.execute(*self._cmd(*args), stdin=stdin)
        return self.rw.run(*self._cmd(*args), stdin=stdin)[1]

    def _tool(self, version: int, what: str) -> str:
        return ("iptables" if version == 4 else "ip6tables") + what

    # -- names -----------------------------------------------------------------------
    def chain(self, kind: str, port_id: str = "") -> str:
        return f"{self.prefix}-{kind}{_short(port_id)}" if port_id else f"{self.prefix}-{kind}"

    def set_name(self, version: int, group_id: str) -> str:
        return f"{self.prefix}{version}-{group_id.replace('-', '')[:20]}"

    # -- desired state ---------------------------------------------------------------------
    def _rule_args(self, rule: dict, version: int, direction: str,
                   members: dict[str, list[str]]) -> list[str] | None:
        """iptables arguments for one security-group rule, or None when it does
        not apply to this family."""
        if (rule.get("ethertype") or "IPv4").lower() != f"ipv{version}":
            return None
        args: list[str] = []
        remote = rule.get("remote_ip_prefix")
        peer = "-s" if direction == "ingress" else "-d"
        if remote:
            net = ipaddress.ip_network(remote, strict=False)
            if net.version != version:
                return None
            if net.prefixlen:
                args += [peer, str(net)]
        elif rule.get("remote_group_id"):
            group = rule["remote_group_id"]
            if not any(_version(a) == version for a in members.get(group, [])):
                return None  # an empty group matches nothing
            args += ["-m", "set", "--match-set", self.set_name(version, group),
                     "src" if direction == "ingress" else "dst"]
        protocol = rule.get("protocol")
        lo, hi = rule.get("port_range_min"), rule.get("port_range_max")
        if protocol not in (None, "", "any"):
            number = int(protocol) if str(protocol).isdigit() else PROTOCOLS[str(protocol)]
            if version == 6 and number == 1:
                number = 58  # "icmp" in an IPv6 rule means ICMPv6, as in Neutron
            if number in PORT_PROTOCOLS:
                args += ["-p", PORT_PROTOCOLS[number]]
                if lo is not None:
                    hi = lo if hi is None else hi
                    ports = str(lo) if lo == hi else f"{lo}:{hi}"
                    args += ["-m", "multiport", "--dports", ports]
            elif number == 1 and version == 4:
                args += ["-p", "icmp"]
                if lo is not None:
                    args += ["-m", "icmp", "--icmp-type", f"{lo}/{hi}" if hi is not None
                             else str(lo)]
            elif number == 58 and version == 6:
                args += ["-p", "ipv6-icmp"]
                if lo is not None:
                    args += ["-m", "icmp6", "--icmpv6-type", f"{lo}/{hi}" if hi is not None
                             else str(lo)]
            elif number == 58:
                return None
            else:
                args += ["-p", str(number)]
        return args

    def _port_chains(self, port: FirewallPort, version: int, rules: dict[str, list[dict]],
                     members: dict[str, list[str]]) -> dict[str, list[list[str]]]:
        ichain, ochain, schain = (self.chain("i", port.id), self.chain("o", port.id),
                                  self.chain("s", port.id))
        est = ["-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "RETURN"]
        invalid = ["-m", "state", "--state", "INVALID", "-j", "DROP"]
        ingress: list[list[str]] = [est]
        egress: list[list[str]] = []
        spoof: list[list[str]] = []
        if version == 4:
            ingress.append(["-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68",
                            "-j", "RETURN"])
            egress.append(["-s", "0.0.0.0/32", "-d", "255.255.255.255/32", "-p", "udp", "-m",
                           "udp", "--sport", "68", "--dport", "67", "-j", "RETURN"])
        else:
            for t in ICMPV6_IN:
                ingress.append(["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", str(t),
                                "-j", "RETURN"])
            ingress.append(["-p", "udp", "-m", "udp", "--sport", "547", "--dport", "546",
                            "-j", "RETURN"])
            for t in (131, 135, 143):
                egress.append(["-s", "::/128", "-p", "ipv6-icmp", "-m", "icmp6",
                               "--icmpv6-type", str(t), "-j", "RETURN"])
        egress.append(["-j", schain])
        if version == 4:
            egress.append(["-p", "udp", "-m", "udp", "--sport", "68", "--dport", "67",
                           "-j", "RETURN"])
            egress.append(["-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68",
                           "-j", "DROP"])
        else:
            egress.append(["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", "134",
                           "-j", "DROP"])
            for t in ICMPV6_OUT:
                egress.append(["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", str(t),
                               "-j", "RETURN"])
            egress.append(["-p", "udp", "-m", "udp", "--sport", "546", "--dport", "547",
                           "-j", "RETURN"])
            egress.append(["-p", "udp", "-m", "udp", "--sport", "547", "--dport", "546",
                           "-j", "DROP"])
        egress += [est]
        ingress.append(invalid)
        egress.append(invalid)
        seen_in, seen_out = set(), set()
        for group in port.security_groups:
            for rule in rules.get(group, []):
                direction = rule.get("direction")
                args = self._rule_args(rule, version, direction, members)
                if args is None:
                    continue
                key = tuple(args)
                if direction == "ingress" and key not in seen_in:
                    seen_in.add(key)
                    ingress.append(args + ["-j", "RETURN"])
                elif direction == "egress" and key not in seen_out:
                    seen_out.add(key)
                    egress.append(args + ["-j", "RETURN"])
        ingress.append(["-j", "DROP"])
        egress.append(["-j", "DROP"])
        # anti-spoofing: (address, mac) pairs the port may send from
        sources = [(ip, port.mac) for ip in port.ips]
        sources += list(port.allowed_address_pairs)
        if version == 6:
            sources.append((_link_local(port.mac), port.mac))
        done = set()
        for address, mac in sources:
            net = ipaddress.ip_network(address, strict=False)
            if net.version != version or (str(net), mac) in done:
                continue
            done.add((str(net), mac))
            spoof.append(["-s", str(net), "-m", "mac", "--mac-source", mac, "-j", "RETURN"])
        spoof.append(["-j", "DROP"])
        return {ichain: ingress, ochain: egress, schain: spoof}

    def desired(self, ports: list[FirewallPort], rules: dict[str, list[dict]],
                members: dict[str, list[str]], version: int) -> dict[str, list[list[str]]]:
        chains: dict[str, list[list[str]]] = {}
        fwd: list[list[str]] = []
        inp: list[list[str]] = []
        accept: list[list[str]] = []
        for port in sorted(ports, key=lambda p: p.device):
            dev = port.device
            if not port.port_security_enabled:
                accept.append(["-m", "physdev", "--physdev-out", dev, "--physdev-is-bridged",
                               "-j", "ACCEPT"])
                accept.append(["-m", "physdev", "--physdev-in", dev, "--physdev-is-bridged",
                               "-j", "ACCEPT"])
                continue
            chains.update(self._port_chains(port, version, rules, members))
            fwd.append(["-m", "physdev", "--physdev-out", dev, "--physdev-is-bridged",
                        "-j", self.chain("i", port.id)])
            fwd.append(["-m", "physdev", "--physdev-in", dev, "--physdev-is-bridged",
                        "-j", self.chain("o", port.id)])
            inp.append(["-m", "physdev", "--physdev-in", dev, "-j", self.chain("o", port.id)])
            accept.append(["-m", "physdev", "--physdev-out", dev, "--physdev-is-bridged",
                           "-j", "ACCEPT"])
            accept.append(["-m", "physdev", "--physdev-in", dev, "--physdev-is-bridged",
                           "-j", "ACCEPT"])
        chains[self.chain("FWD")] = fwd + accept
        chains[self.chain("INP")] = inp
        return chains

    # -- the host as it is ------------------------------------------------------------
    def _current(self, version: int) -> tuple[dict[str, str | None], dict[str, list[str]]]:
        """(our chains -> content hash or None, base chain -> its rules)."""
        if version in self._cache:
            have, base = self._cache[version]
            return dict(have), {k: list(v) for k, v in base.items()}
        out = self._run(self._tool(version, "-save"), "-t", "filter")
        ours: dict[str, str | None] = {}
        base: dict[str, list[str]] = {"FORWARD": [], "INPUT": []}
        mark = f"{self.prefix}-"
        for line in out.splitlines():
            if line.startswith(":"):
                name = line[1:].split()[0]
                if name.startswith(mark):
                    ours.setdefault(name, None)
            elif line.startswith("-A "):
                parts = line.split()
                name = parts[1]
                if name in base:
                    base[name].append(line)
                elif name.startswith(mark) and ours.get(name) is None:
                    m = re.search(r'--comment "?h:([0-9a-f]+)', line)
                    ours[name] = m.group(1) if m else ""
        return ours, base

    @staticmethod
    def _hash(rules: list[list[str]]) -> str:
        return hashlib.sha1(repr(rules).encode()).hexdigest()[:16]

    # -- ipsets --------------------------------------------------------------------------
    def _current_sets(self) -> dict[str, set[str]]:
        if self._sets_cache is not None:
            return {n: set(a) for n, a in self._sets_cache.items()}
        out = self._run("ipset", "save", check=False) or ""
        sets: dict[str, set[str]] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith(self.prefix) and parts[1][
                    len(self.prefix):len(self.prefix) + 2] in ("4-", "6-"):
                if parts[0] == "create":
                    sets.setdefault(parts[1], set())
                elif parts[0] == "add" and len(parts) >= 3:
                    sets.setdefault(parts[1], set()).add(str(ipaddress.ip_network(
                        parts[2], strict=False)))
        return sets

    def _wanted_sets(self, ports, rules, members) -> dict[str, tuple[int, set[str]]]:
        groups = set()
        for port in ports:
            if not port.port_security_enabled:
                continue
            for group in port.security_groups:
                for rule in rules.get(group, []):
                    if rule.get("remote_group_id"):
                        version = 6 if (rule.get("ethertype") or "").lower() == "ipv6" else 4
                        groups.add((rule["remote_group_id"], version))
        wanted = {}
        for group, version in groups:
            if True:
                addrs = {str(ipaddress.ip_network(a, strict=False))
                         for a in members.get(group, []) if _version(a) == version}
                if addrs:
                    wanted[self.set_name(version, group)] = (version, addrs)
        return wanted

    # -- converge -------------------------------------------------------------------------
    def ensure_sysctls(self) -> None:
        if self._sysctl_done:
            return
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            self._run("sysctl", "-q", "-w", f"{key}=1", check=False)
        self._sysctl_done = True

    def converge(self, ports: list[FirewallPort], rules: dict[str, list[dict]],
                 members: dict[str, list[str]] | None = None, verify: bool = False) -> Stats:
        """Make the host enforce ``rules`` (group id -> its rules) on ``ports``;
        ``members`` (group id -> addresses) defaults to the addresses of
        ``ports``. ``verify`` reads the host's rules back first (done anyway
        every ``verify_interval`` seconds)."""
        stats = Stats()
        if verify or time.monotonic() - self._verified_at > self.verify_interval:
            self._cache.clear()
            self._sets_cache = None
            self._arp_cache = None
            self._verified_at = time.monotonic()
        if members is None:
            members = {}
            for port in ports:
                for group in port.security_groups:
                    members.setdefault(group, [])
                    members[group] += list(port.ips) + [a for a, _ in
                                                        port.allowed_address_pairs]
        if ports:
            self.ensure_sysctls()
        # 1. ipsets the rules will reference exist (and hold the right members)
        current_sets = self._current_sets()
        wanted_sets = self._wanted_sets(ports, rules, members)
        lines = []
        for name, (version, addrs) in wanted_sets.items():
            have = current_sets.get(name)
            if have is None:
                lines.append(f"create {name} hash:net family {'inet' if version == 4 else 'inet6'}")
                have = set()
            if have != addrs:
                stats.sets_changed += 1
            lines += [f"add {name} {a}" for a in sorted(addrs - have)]
            lines += [f"del {name} {a}" for a in sorted(have - addrs)]
        if lines:
            self._sets_cache = None
            self._run("ipset", "restore", "-exist", stdin="\n".join(lines) + "\n")
        self._sets_cache = {n: set(a) for n, (_, a) in wanted_sets.items()}
        # 2. chains, one transaction per family
        for version in (4, 6):
            self._converge_family(version, ports, rules, members, stats)
        # 3. ARP: a port may only announce its own addresses (ebtables, bridge layer)
        if self.arp_protection:
            self._converge_arp(ports)
        # 4. sets nothing references any more
        stale_sets = [n for n in current_sets if n not in wanted_sets]
        for name in stale_sets:
            self._run("ipset", "destroy", name, check=False)
            self._sets_cache.pop(name, None)
        # 5. connections that lost their permission
        self._expire_connections(ports, rules, members, stats)
        return stats

    def _converge_family(self, version, ports, rules, members, stats: Stats) -> None:
        want = self.desired(ports, rules, members, version)
        have, base = self._current(version)
        fwd, inp = self.chain("FWD"), self.chain("INP")
        if not ports and not any(n in have for n in (fwd, inp)):
            return
        out = ["*filter"]
        body = []
        for name, rules_ in want.items():
            digest = self._hash(rules_)
            if have.get(name, "missing") == digest:
                continue
            out.append(f":{name} - [0:0]")
            body.append(["-A", name, "-m", "comment", "--comment", f"h:{digest}"])
            body += [["-A", name, *r] for r in rules_]
            stats.chains_written += 1
            if name not in (fwd, inp):
                port = name[len(self.prefix) + 2:]
                if port not in stats.changed_ports:
                    stats.changed_ports.append(port)
        stale = [n for n in have if n not in want]
        removing_all = not ports
        if removing_all:
            stale = list(have)
        for name in stale:
            if f":{name} - [0:0]" not in out:
                out.append(f":{name} - [0:0]")
        # base-chain jumps: present exactly once, first
        for base_chain, target in (("FORWARD", fwd), ("INPUT", inp)):
            jump = f"-A {base_chain} -j {target}"
            present = [r for r in base[base_chain] if r == jump]
            if removing_all:
                body += [["-D", base_chain, "-j", target]] * len(present)
            elif not present:
                body.append(["-I", base_chain, "1", "-j", target])
        if removing_all:
            body = [b for b in body if b[0] == "-D"]
            out = ["*filter"] + [f":{n} - [0:0]" for n in have]
        out += [" ".join(_quote(a) for a in b) for b in body]
        out += [f"-X {n}" for n in stale]
        out.append("COMMIT")
        after = ({} if removing_all else {n: self._hash(r) for n, r in want.items()},
                 {"FORWARD": [] if removing_all else [f"-A FORWARD -j {fwd}"],
                  "INPUT": [] if removing_all else [f"-A INPUT -j {inp}"]})
        if len(out) <= 2:
            self._cache[version] = after
            return
        self._cache.pop(version, None)
        self._run(self._tool(version, "-restore"), "--noflush", stdin="\n".join(out) + "\n")
        self._cache[version] = after
        stats.restores += 1
        stats.chains_removed += len(stale)

    # -- ARP (ebtables) -------------------------------------------------------------------
    def arp_desired(self, ports: list[FirewallPort]) -> dict[str, list[str]]:
        chains: dict[str, list[str]] = {}
        dispatch = []
        for port in sorted(ports, key=lambda p: p.device):
            if not port.port_security_enabled:
                continue
            name = self.chain("a", port.id)
            rules = []
            sources = [(ip, port.mac) for ip in port.ips]
            sources += list(port.allowed_address_pairs)
            for address, mac in sources:
                net = ipaddress.ip_network(address, strict=False)
                if net.version != 4:
                    continue
                text = str(net.network_address) if net.prefixlen == 32 else str(net)
                rule = f"-p ARP --arp-ip-src {text} --arp-mac-src {mac} -j RETURN"
                if rule not in rules:
                    rules.append(rule)
            rules.append("-p ARP -j DROP")
            chains[name] = rules
            dispatch.append(f"-i {port.device} -j {name}")
        if chains:
            chains[self.chain("ARP")] = dispatch
        return chains

    def _arp_current(self) -> tuple[dict[str, list[str]], list[str]]:
        out = self._run("ebtables-save", check=False) or ""
        chains: dict[str, list[str]] = {}
        base = []
        mark = f"{self.prefix}-"
        table = None
        for line in out.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
            if table != "filter":
                continue
            if line.startswith(":") and line[1:].startswith(mark):
                chains.setdefault(line[1:].split()[0], [])
            elif line.startswith("-A "):
                _, name, rest = line.split(" ", 2)
                if name.startswith(mark):
                    chains.setdefault(name, []).append(rest)
                elif name in ("FORWARD", "INPUT") and rest == f"-j {self.chain('ARP')}":
                    base.append(name)
        return chains, base

    def _converge_arp(self, ports: list[FirewallPort]) -> None:
        want = self.arp_desired(ports)
        if self._arp_cache is not None:
            have, base = {k: list(v) for k, v in self._arp_cache.items()}, \
                (["FORWARD", "INPUT"] if self._arp_cache else [])
        else:
            have, base = self._arp_current()
        dispatch = self.chain("ARP")
        lines = ["*filter"]
        body = []
        for name, rules in want.items():
            if have.get(name) != rules:
                lines.append(f":{name} RETURN")
                body += [f"-A {name} {r}" for r in rules]
        if want:
            body += [f"-A {chain} -j {dispatch}" for chain in ("FORWARD", "INPUT")
                     if chain not in base]
        else:
            body += [f"-D {chain} -j {dispatch}" for chain in base]
        stale = [n for n in have if n not in want]
        for name in stale:  # flushed now (nothing jumps to them any more), deleted next
            if f":{name} RETURN" not in lines:
                lines.append(f":{name} RETURN")
        if len(lines) > 1 or body:
            self._arp_cache = None
            self._run("ebtables-restore", "--noflush",
                      stdin="\n".join(lines + body + ["COMMIT"]) + "\n")
        if stale:
            self._run("ebtables-restore", "--noflush",
                      stdin="\n".join(["*filter"] + [f"-X {n}" for n in stale] + ["COMMIT"])
                      + "\n")
        self._arp_cache = want

    def remove_all(self) -> Stats:
        """Take every chain, jump and set of ours off the host."""
        return self.converge([], {}, {}, verify=True)

    # -- conntrack --------------------------------------------------------------------------
    def _expire_connections(self, ports, rules, members, stats: Stats) -> None:
        """Delete conntrack entries of connections no rule allows any more (only
        for ports whose rules lost a permission since the last converge)."""
        check = []
        for port in ports:
            # what the port allows: its rules, with remote groups expanded to
            # their members; a connection can only lose its permission when
            # something leaves this set
            allowed = set()
            for group in port.security_groups:
                for rule in rules.get(group, []):
                    key = tuple(sorted((k, str(v)) for k, v in rule.items()
                                       if k not in ("id", "security_group_id", "remote_group_id",
                                                    "created_at", "updated_at", "description",
                                                    "revision_number", "tenant_id",
                                                    "project_id", "tags")))
                    remote = rule.get("remote_group_id")
                    if remote:
                        allowed |= {key + (("member", m),) for m in members.get(remote, [])}
                    else:
                        allowed.add(key)
            applied = frozenset(allowed) if port.port_security_enabled else None
            before = self._applied.get(port.id)
            self._applied[port.id] = applied
            if before is not None and applied is not None and before - applied:
                check.append(port)
        for gone in set(self._applied) - {p.id for p in ports}:
            del self._applied[gone]
        for port in check:
            for entry in self._connections(port):
                if not self._allowed(entry, port, rules, members):
                    self._delete_connection(entry)
                    stats.conntrack_deleted += 1

    def _connections(self, port: FirewallPort) -> list[dict]:
        entries = []
        for ip in port.ips:
            family = "ipv4" if _version(ip) == 4 else "ipv6"
            for flag in ("-s", "-d"):
                out = self._run("conntrack", "-L", "-f", family, flag, ip, check=False) or ""
                for line in out.splitlines():
                    entry = _parse_conntrack(line)
                    if entry:
                        entry["direction"] = "egress" if flag == "-s" else "ingress"
                        entry["version"] = 4 if family == "ipv4" else 6
                        entries.append(entry)
        return entries

    def _allowed(self, entry: dict, port: FirewallPort, rules, members) -> bool:
        direction, version = entry["direction"], entry["version"]
        remote = entry["dst"] if direction == "egress" else entry["src"]
        number = entry["protonum"]
        for group in port.security_groups:
            for rule in rules.get(group, []):
                if rule.get("direction") != direction:
                    continue
                if (rule.get("ethertype") or "IPv4").lower() != f"ipv{version}":
                    continue
                prefix = rule.get("remote_ip_prefix")
                if prefix and ipaddress.ip_address(remote) not in ipaddress.ip_network(
                        prefix, strict=False):
                    continue
                if rule.get("remote_group_id") and not any(
                        _version(a) == version and ipaddress.ip_address(remote) in
                        ipaddress.ip_network(a, strict=False)
                        for a in members.get(rule["remote_group_id"], [])):
                    continue
                protocol = rule.get("protocol")
                if protocol in (None, "", "any"):
                    return True
                want = int(protocol) if str(protocol).isdigit() else PROTOCOLS[str(protocol)]
                if version == 6 and want == 1:
                    want = 58
                if want != number:
                    continue
                lo, hi = rule.get("port_range_min"), rule.get("port_range_max")
                if lo is None:
                    return True
                if number in PORT_PROTOCOLS:
                    hi = lo if hi is None else hi
                    if lo <= entry.get("dport", -1) <= hi:
                        return True
                elif number in (1, 58):
                    if entry.get("type") == lo and (hi is None or entry.get("code") == hi):
                        return True
        return False

    def _delete_connection(self, entry: dict) -> None:
        args = ["conntrack", "-D", "-f", "ipv4" if entry["version"] == 4 else "ipv6",
                "-p", str(entry["protonum"]), "-s", entry["src"], "-d", entry["dst"]]
        if "sport" in entry:
            args += ["--sport", str(entry["sport"]), "--dport", str(entry["dport"])]
        self._run(*args, check=False)


def _parse_conntrack(line: str) -> dict | None:
    parts = line.split()
    if len(parts) < 3 or not parts[1].isdigit():
        return None
    entry: dict = {"protonum": int(parts[1])}
    for part in parts[2:]:
        key, sep, value = part.partition("=")
        if not sep or key in entry:
            continue  # the first (original-direction) tuple only
        if key in ("src", "dst"):
            entry[key] = value
        elif key in ("sport", "dport", "type", "code"):
            entry[key] = int(value)
    return entry if "src" in entry and "dst" in entry else None


def _quote(arg: str) -> str:
    if re.fullmatch(r"[-A-Za-z0-9_.:/,!=+@]+", arg):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'
