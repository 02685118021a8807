"""The Open vSwitch L2 back end: ``br-int``, a tunnel bridge and external bridges.

The agent runs its own ``ovsdb-server`` and ``ovs-vswitchd`` (:class:`OvsDaemons`)
with the user-space ``netdev`` datapath, so no openvswitch kernel module is
needed (at a cost in speed, as the seed notes). Operators inspect it with
the usual tools (``ovs-vsctl show``, ``ovs-ofctl dump-flows br-int``,
``ovs-appctl dpctl/dump-flows``) when ``run_dir`` is the default
``/var/run/openvswitch``.

Layout (what Neutron's OVS agent does, in our own words):

- ``br-int``: every port of this host. A network gets a *local VLAN* on it
  (kept in ``br-int``'s ``external_ids`` so a restarted agent finds it again);
  ports are access ports with that tag, so networks are separated on the
  bridge and the ``NORMAL`` action switches within a network.
- ports are *hybrid-plugged* (as Neutron's iptables firewall with OVS): the
  device (an instance's ``tap<port>``, a router's or DHCP port's host end)
  goes on a small Linux bridge ``qbr<id>``, joined to ``br-int`` by a veth
  ``qvb<id>``/``qvo<id>``. Security groups then work exactly as with the
  Linux-bridge back end (iptables ``physdev`` on ``qbr``), and the kernel
  fills in TCP/UDP checksums on ``qvb`` (its checksum offload is off), which
  the user-space datapath does not do for veth peers;
- flat and VLAN provider networks: an external bridge per physical network
  (``br-<physnet>`` unless mapped) holding the physical interface, patched
  to ``br-int`` (``int-<bridge>`` / ``phy-<bridge>``); flows translate the
  local VLAN to untagged (flat) or the provider VLAN id and back;
- VXLAN: ``br-tun`` patched to ``br-int``, one ``vxlan`` port per peer host
  (``options:key=flow``); flows map local VLAN <-> VNI and flood to the
  peers that have the network (the user-space datapath carries tunnels
  only when the local endpoint address is on an OVS bridge: see
  ``tunnel_bridge_ip``).
"""

from __future__ import annotations

import json
import logging
import os
import time

from pocketstack.network.agents.l2 import L2Backend

LOG = logging.getLogger(__name__)
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
KEY_PREFIX = "ps-net-"


class OvsDaemons:
    """ovsdb-server + ovs-vswitchd of this host, started and stopped by the agent."""

    def __init__(self, rootwrap, run_dir: str = "/var/run/openvswitch",
                 db_file: str | None = None):
        self.rw = rootwrap
        self.run_dir = run_dir
        self.db_file = db_file or os.path.join(run_dir, "conf.db")
        self.db_sock = os.path.join(run_dir, "db.sock")

    def path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)

    def _alive(self, name: str) -> bool:
        try:
            with open(self.path(f"{name}.pid")) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return name.encode() in f.read()
        except (OSError, ValueError):
            return False

    def start(self) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs("/var/run/openvswitch", exist_ok=True)
        if not os.path.exists(self.db_file):
            self.rw.execute("ovsdb-tool", "create", self.db_file, SCHEMA)
        if not self._alive("ovsdb-server"):
            self.rw.execute("ovsdb-server", self.db_file, f"--remote=punix:{self.db_sock}",
                            f"--pidfile={self.path('ovsdb-server.pid')}",
                            f"--unixctl={self.path('ovsdb-server.ctl')}",
                            f"--log-file={self.path('ovsdb-server.log')}", "--detach")
            self.vsctl("--no-wait", "init")
        if not self._alive("ovs-vswitchd"):
            self.rw.execute("ovs-vswitchd", f"unix:{self.db_sock}",
                            f"--pidfile={self.path('ovs-vswitchd.pid')}",
                            f"--unixctl={self.path('ovs-vswitchd.ctl')}",
                            f"--log-file={self.path('ovs-vswitchd.log')}", "--detach")

    def running(self) -> bool:
        return self._alive("ovsdb-server") and self._alive("ovs-vswitchd")

    def stop(self) -> None:
        for name in ("ovs-vswitchd", "ovsdb-server"):
            if self._alive(name):
                self.rw.run("ovs-appctl", "-t", self.path(f"{name}.ctl"), "exit")
        for name in ("ovs-vswitchd", "ovsdb-server"):
            for _ in range(100):
                if not self._alive(name):
                    break
                time.sleep(0.05)

    def vsctl(self, *args: str, check: bool = True) -> str:
        cmd = ["ovs-vsctl", f"--db=unix:{self.db_sock}", "--timeout=10", *args]
        if check:
            return self.rw.execute(*cmd)
        return self.rw.run(*cmd)[1]

    def ofctl(self, bridge: str, *args: str, stdin: str | None = None) -> str:
        return self.rw.execute("ovs-ofctl", args[0], f"unix:/var/run/openvswitch/{bridge}.mgmt",
                               *args[1:], stdin=stdin)

    def appctl(self, *args: str) -> str:
        return self.rw.execute("ovs-appctl", "-t", self.path("ovs-vswitchd.ctl"), *args)

    def bridges(self) -> list[str]:
        return self.vsctl("list-br").split()

    def leftovers(self) -> list[str]:
        return [f"ovs bridge {b}" for b in self.bridges()] if self._alive("ovsdb-server") \
            else []


class OvsBackend(L2Backend):
    def __init__(self, daemons: OvsDaemons, physical_interfaces: dict[str, str],
                 vxlan_local_ip: str, *, integration_bridge: str = "br-int",
                 tunnel_bridge: str = "br-tun", bridge_mappings: dict[str, str] | None = None,
                 bridge_prefix: str = ""):
        """``bridge_prefix`` renames the bridges (``<prefix>-int``...) so that
        tests may run beside another switch on the host."""
        self.ovs = daemons
        self.physical = physical_interfaces
        self.local_ip = vxlan_local_ip
        if bridge_prefix:
            integration_bridge = f"{bridge_prefix}-int"
            tunnel_bridge = f"{bridge_prefix}-tun"
        self.br_int = integration_bridge
        self.br_tun = tunnel_bridge
        self.bridge_mappings = dict(bridge_mappings or {})
        self.bridge_prefix = bridge_prefix
        self._ready = False
        self._vlans: dict[str, int] | None = None
        self._plugged: dict[str, int] = {}  # qvo -> tag, as set by this object

    # -- bridges ------------------------------------------------------------------------
    def _ensure_bridge(self, name: str) -> None:
        self.ovs.vsctl("--may-exist", "add-br", name, "--", "set", "Bridge", name,
                       "datapath_type=netdev", "fail_mode=secure",
                       "other_config:disable-in-band=true")

    def _ensure_base(self) -> None:
        if self._ready:
            return
        self.ovs.start()
        self._ensure_bridge(self.br_int)
        self._patch(self.br_int, self.br_tun, "patch-tun", "patch-int")
        self._ready = True
        self._reflow_int()

    def _patch(self, a: str, b: str, a_port: str, b_port: str) -> None:
        self._ensure_bridge(b)
        self.ovs.vsctl("--may-exist", "add-port", a, a_port, "--", "set", "Interface",
                       a_port, "type=patch", f"options:peer={b_port}", "--",
                       "--may-exist", "add-port", b, b_port, "--", "set", "Interface", b_port,
                       "type=patch", f"options:peer={a_port}")

    def _ofport(self, port: str) -> int:
        out = self.ovs.vsctl("get", "Interface", port, "ofport").strip()
        return int(out)

    def external_bridge(self, physnet: str) -> str:
        name = self.bridge_mappings.get(physnet)
        if name:
            return name
        return (f"{self.bridge_prefix}-{physnet}" if self.bridge_prefix
                else f"br-{physnet}")[:15]

    # -- local VLANs ----------------------------------------------------------------------
    def vlans(self) -> dict[str, int]:
        if self._vlans is None:
            out = self.ovs.vsctl("--format=json", "get", "Bridge", self.br_int, "external_ids")
            self._vlans = {}
            text = out.strip()
            if text.startswith("{"):
                for item in text.strip("{}").split(","):
                    key, _, value = item.strip().partition("=")
                    key = key.strip('"')
                    if key.startswith(KEY_PREFIX):
                        self._vlans[key[len(KEY_PREFIX):]] = int(value.strip('"'))
        return self._vlans

    def local_vlan(self, network_id: str) -> int:
        vlans = self.vlans()
        if network_id not in vlans:
            used = set(vlans.values())
            vlan = next(v for v in range(1, 4095) if v not in used)
            self.ovs.vsctl("set", "Bridge", self.br_int,
                           f'external_ids:"{KEY_PREFIX}{network_id}"="{vlan}"')
            vlans[network_id] = vlan
        return vlans[network_id]

    # -- L2Backend -------------------------------------------------------------------------
    def switch_for(self, network: dict) -> str:
        return f"ovs:{network['id']}"

    def _present(self) -> bool:
        return self.ovs.running() and self.br_int in self.ovs.bridges()

    def switches(self) -> list[str]:
        if not self._present():
            return []
        return [f"ovs:{n}" for n in self.vlans()]

    def ensure_network(self, network: dict, peers: list[str]) -> None:
        self._ensure_base()
        net_id = network["id"]
        vlan = self.local_vlan(net_id)
        ntype = network.get("provider:network_type") or "local"
        physnet = network.get("provider:physical_network")
        seg = network.get("provider:segmentation_id")
        if ntype in ("flat", "vlan") and physnet and self.physical.get(physnet):
            bridge = self.external_bridge(physnet)
            int_port, phy_port = f"int-{bridge}"[:15], f"phy-{bridge}"[:15]
            self._patch(self.br_int, bridge, int_port, phy_port)
            nic = self.physical[physnet]
            if os.path.exists(f"/sys/class/net/{nic}"):
                self.ovs.vsctl("--may-exist", "add-port", bridge, nic)
            self._flows_external(bridge, int_port, phy_port, net_id, vlan,
                                 None if ntype == "flat" else int(seg))
        elif ntype == "vxlan" and seg is not None:
            self._tunnels(peers)
            self._flows_tunnel(net_id, vlan, int(seg))
        self._collect(net_id)

    def plug(self, network: dict, device: str) -> None:
        if not os.path.exists(f"/sys/class/net/{device}"):
            return
        self._ensure_base()
        vlan = self.local_vlan(network["id"])
        suffix = device[3:14]
        qbr, qvb, qvo = f"qbr{suffix}", f"qvb{suffix}", f"qvo{suffix}"
        rw = self.ovs.rw

        def master(dev: str) -> str | None:
            try:
                return os.path.basename(os.readlink(f"/sys/class/net/{dev}/master"))
            except OSError:
                return None

        def up(dev: str) -> bool:
            try:
                with open(f"/sys/class/net/{dev}/flags") as f:
                    return bool(int(f.read(), 16) & 1)
            except (OSError, ValueError):
                return False

        if not os.path.exists(f"/sys/class/net/{qbr}"):
            rw.execute("ip", "link", "add", qbr, "type", "bridge", "stp_state", "0",
                       "forward_delay", "0")
        if not os.path.exists(f"/sys/class/net/{qvb}"):
            rw.run("ip", "link", "delete", qvo)
            rw.execute("ip", "link", "add", qvb, "type", "veth", "peer", "name", qvo)
            # the user-space datapath forwards what it gets: let the kernel
            # complete checksums before packets leave the bridge for it
            rw.run("ethtool", "-K", qvb, "tx", "off")
        for dev in (qbr, qvo):
            if not up(dev):
                rw.execute("ip", "link", "set", dev, "up")
        for dev in (qvb, device):
            if master(dev) != qbr or not up(dev):
                rw.execute("ip", "link", "set", dev, "master", qbr, "up")
        if self._plugged.get(qvo) != vlan:
            # no need to wait for ovs-vswitchd: nothing here uses the port's number
            self.ovs.vsctl("--no-wait", "--may-exist", "add-port", self.br_int, qvo, "--",
                           "set", "Port", qvo, f"tag={vlan}", "--", "set", "Interface", qvo,
                           f'external_ids:attached-network="{network["id"]}"',
                           f'external_ids:ps-device="{device}"')
            self._plugged[qvo] = vlan

    def remove_network(self, switch: str) -> None:
        net_id = switch.partition(":")[2]
        if not net_id or not self._present():
            return
        vlan = self.vlans().get(net_id)
        for port, _device in self._ports_of(net_id):
            self._unplug(port)
        if vlan is not None:
            for bridge in self.ovs.bridges():
                self.ovs.rw.run("ovs-ofctl", "del-flows",
                                f"unix:/var/run/openvswitch/{bridge}.mgmt",
                                f"cookie={self._cookie(net_id)}/-1")
            self.ovs.vsctl("remove", "Bridge", self.br_int, "external_ids",
                           f'"{KEY_PREFIX}{net_id}"')
            self.vlans().pop(net_id, None)
        self._collect_bridges()

    # -- ports ------------------------------------------------------------------------------
    def _ports_of(self, net_id: str | None) -> list[tuple[str, str]]:
        out = self.ovs.vsctl("--format=json", "--columns=name,external_ids", "find",
                             "Interface", f'external_ids:attached-network="{net_id}"'
                             if net_id else "external_ids:ps-device!=\"\"")
        rows = json.loads(out).get("data", [])
        result = []
        for name, ext in rows:
            ids = dict(ext[1]) if isinstance(ext, list) else {}
            result.append((name, ids.get("ps-device", "")))
        return result

    def _unplug(self, qvo: str) -> None:
        suffix = qvo[3:]
        self._plugged.pop(qvo, None)
        self.ovs.vsctl("--if-exists", "del-port", self.br_int, qvo)
        rw = self.ovs.rw
        for dev in (f"qvb{suffix}", f"qbr{suffix}"):
            if os.path.exists(f"/sys/class/net/{dev}"):
                rw.run("ip", "link", "delete", dev)

    def _collect(self, net_id: str) -> None:
        """Hybrid plugs whose device is gone (instance deleted, router port removed)."""
        for qvo, device in self._ports_of(net_id):
            if device and not os.path.exists(f"/sys/class/net/{device}"):
                self._unplug(qvo)

    def _collect_bridges(self) -> None:
        """Drop what no network uses any more: everything when no network is left."""
        if self.vlans():
            return
        for bridge in self.ovs.bridges():
            if bridge == self.br_int or bridge == self.br_tun or \
                    bridge in self._external_bridges():
                self.ovs.vsctl("--if-exists", "del-br", bridge)
        self._ready = False
        self._vlans = None
        self._plugged.clear()

    def _external_bridges(self) -> set[str]:
        return {self.external_bridge(p) for p in self.physical}

    # -- flows ----------------------------------------------------------------------------
    @staticmethod
    def _cookie(net_id: str) -> str:
        return "0x" + net_id.replace("-", "")[:16]

    def _reflow_int(self) -> None:
        """br-int's base: NORMAL switching; nothing enters from the patch ports
        unless a network's flow lets it (those are added per network)."""
        self.ovs.ofctl(self.br_int, "add-flow", "table=0,priority=0,actions=NORMAL")
        for port in self.ovs.vsctl("list-ports", self.br_int).split():
            if port.startswith(("int-", "patch-tun")):
                self.ovs.ofctl(self.br_int, "add-flow",
                               f"table=0,priority=2,in_port={port},actions=drop")
        self.ovs.ofctl(self.br_tun, "add-flow", "table=0,priority=0,actions=drop")

    def _flows_external(self, bridge: str, int_port: str, phy_port: str, net_id: str,
                        vlan: int, seg: int | None) -> None:
        cookie = self._cookie(net_id)
        int_of, phy_of = self._ofport(int_port), self._ofport(phy_port)
        ofctl = self.ovs.ofctl
        ofctl(self.br_int, "add-flow", f"table=0,priority=2,in_port={int_of},actions=drop")
        ofctl(bridge, "add-flow", "table=0,priority=0,actions=NORMAL")
        ofctl(bridge, "add-flow", f"table=0,priority=2,in_port={phy_of},actions=drop")
        if seg is None:
            ofctl(bridge, "add-flow", f"cookie={cookie},table=0,priority=4,in_port={phy_of},"
                                      f"dl_vlan={vlan},actions=strip_vlan,NORMAL")
            ofctl(self.br_int, "add-flow", f"cookie={cookie},table=0,priority=3,"
                                           f"in_port={int_of},vlan_tci=0x0000/0x1fff,"
                                           f"actions=mod_vlan_vid:{vlan},NORMAL")
        else:
            ofctl(bridge, "add-flow", f"cookie={cookie},table=0,priority=4,in_port={phy_of},"
                                      f"dl_vlan={vlan},actions=mod_vlan_vid:{seg},NORMAL")
            ofctl(self.br_int, "add-flow", f"cookie={cookie},table=0,priority=3,"
                                           f"in_port={int_of},dl_vlan={seg},"
                                           f"actions=mod_vlan_vid:{vlan},NORMAL")

    def _tunnels(self, peers: list[str]) -> None:
        wanted = {f"vxlan-{''.join(f'{int(o):02x}' for o in p.split('.'))}": p
                  for p in peers if p != self.local_ip}
        have = [p for p in self.ovs.vsctl("list-ports", self.br_tun).split()
                if p.startswith("vxlan-")]
        for name, peer in wanted.items():
            if name not in have:
                self.ovs.vsctl("--may-exist", "add-port", self.br_tun, name, "--", "set",
                               "Interface", name, "type=vxlan", f"options:remote_ip={peer}",
                               f"options:local_ip={self.local_ip}", "options:key=flow",
                               "options:dst_port=4789")
        for name in have:
            if name not in wanted:
                self.ovs.vsctl("--if-exists", "del-port", self.br_tun, name)

    def _flows_tunnel(self, net_id: str, vlan: int, vni: int) -> None:
        cookie = self._cookie(net_id)
        ofctl = self.ovs.ofctl
        patch_int = self._ofport("patch-int")
        patch_tun = self._ofport("patch-tun")
        tunnels = [self._ofport(p) for p in self.ovs.vsctl("list-ports", self.br_tun).split()
                   if p.startswith("vxlan-")]
        ofctl(self.br_int, "add-flow", f"table=0,priority=3,in_port={patch_tun},"
                                       "actions=NORMAL")
        actions = (f"strip_vlan,set_tunnel:{vni}," + ",".join(f"output:{t}" for t in tunnels)
                   if tunnels else "drop")
        ofctl(self.br_tun, "add-flow", f"cookie={cookie},table=0,priority=4,"
                                       f"in_port={patch_int},dl_vlan={vlan},actions={actions}")
        for t in tunnels:
            ofctl(self.br_tun, "add-flow", f"cookie={cookie},table=0,priority=4,in_port={t},"
                                           f"tun_id={vni},actions=mod_vlan_vid:{vlan},"
                                           f"output:{patch_int}")
