"""The container hypervisor: an instance is Linux namespaces + cgroups.

Each instance gets a named network namespace (``psi-<uuid>``) holding its
ports (veth pairs; the host end ``tap<port-id[:11]>`` goes on the network's
bridge, the guest end is ``eth<N>`` with the port's MAC and the port id as
an altname), and a PID 1 started by :mod:`launcher` (through rootwrap) in
new mount/PID/UTS/IPC/cgroup namespaces with cgroup limits from the flavor
(memory = RAM, pids, CPU weight from vCPUs), on an overlay of the image's
read-only base (:mod:`images`) and its own copy-on-write layer under
``<state_path>/instances/<uuid>/disk`` that is removed with the instance.

Power actions act on real processes: stop asks busybox init to power off
(SIGUSR2; SIGKILL after the timeout), reboot re-starts PID 1 (soft: SIGTERM
first), pause/unpause freeze/thaw the cgroup, suspend freezes it and marks
the instance suspended (no memory image is written: containers keep their
memory). ``get_info`` reads the state from the host: the recorded PID 1
(checked by its cgroup), the freezer state. The console is a file the
guest's PID 1 writes to (its stdout/stderr), a pty that is also the
serial console (:mod:`console_relay`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from oslo_config import cfg

from pocketstack import rootwrap as rootwrap_mod
from pocketstack.compute.virt import console_relay, images
from pocketstack.compute.virt.base import (
    ComputeDriver,
    ConsoleUnavailable,
    DriverError,
    HostResources,
    InstanceInfo,
    InstanceNotFound,
    PowerState,
)

LOG = logging.getLogger(__name__)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NETNS_PREFIX = "psi-"
CONSOLE_MAX = 1 << 20  # bytes of console log kept

opts = [
    cfg.IntOpt("pids_max", default=1024, help="Most processes an instance may run."),
    cfg.IntOpt("shutdown_timeout", default=10,
               help="Seconds a guest gets to power off cleanly before it is killed."),
    cfg.BoolOpt("keep_base_mounted", default=False,
                help="Keep an image's base mounted when no instance uses it."),
]


def register_opts(conf) -> None:
    try:
        conf.register_opts(opts, group="container")
    except cfg.DuplicateOptError:
        pass


def netns_name(uuid: str) -> str:
    return NETNS_PREFIX + uuid


def tap_name(port_id: str) -> str:
    return ("tap" + port_id)[:14]


class ContainerDriver(ComputeDriver):
    capabilities = {"supports_attach_interface": True, "supports_pause": True,
                    "supports_suspend": True, "supports_rescue": False}

    def __init__(self, conf, host: str, rootwrap=None):
        super().__init__(conf, host)
        register_opts(conf)
        self.state_path = conf.state_path
        self.instances_dir = os.path.join(self.state_path, "instances")
        self.rootwrap = rootwrap or rootwrap_mod.get(conf)
        self.images = images.ImageCache(self.state_path, self.rootwrap)
        self._lock = threading.Lock()

    # -- paths ---------------------------------------------------------------

    def _dir(self, uuid: str) -> str:
        if not UUID_RE.match(uuid or ""):
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        return os.path.join(self.instances_dir, uuid)

    def _record(self, uuid: str) -> dict:
        try:
            with open(os.path.join(self._dir(uuid), "launch.json")) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {}

    def _spec(self, uuid: str) -> dict:
        try:
            with open(os.path.join(self._dir(uuid), "instance.json")) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {}

    def _launcher(self, action: str, uuid: str, *extra: str, check: bool = True) -> int:
        rc, _out, err = self.rootwrap.run(
            sys.executable, "-m", "pocketstack.compute.virt.launcher",
            action, self._dir(uuid), *extra)
        if check and rc != 0:
            raise DriverError(f"{action} of instance {uuid} failed: {err.strip()}")
        return rc

    # -- host -----------------------------------------------------------------

    def init_host(self) -> None:
        """Re-make host state after a restart: base mounts and network
        namespaces of the instances this host has (the agent's reconcile
        then restarts guests that should run and destroys orphans)."""
        os.makedirs(self.instances_dir, exist_ok=True)
        for uuid in self.list_instances():
            spec = self._spec(uuid)
            try:
                if spec.get("image"):
                    self.images.ensure(spec["image"])
                self._ensure_netns(uuid)
                self._plug_vifs(uuid, spec.get("network_info") or [])
            except Exception:  # noqa: BLE001
                LOG.exception("re-making host state of %s", uuid)
        self._release_unused_bases()

    def cleanup_host(self) -> None:
        return None

    def get_available_resource(self) -> HostResources:
        mem_kb = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        os.makedirs(self.instances_dir, exist_ok=True)
        st = os.statvfs(self.instances_dir)
        return HostResources(vcpus=os.cpu_count() or 1, memory_mb=mem_kb // 1024,
                             local_gb=st.f_blocks * st.f_frsize // (1 << 30),
                             hypervisor_type="container", hypervisor_version=1000,
                             hypervisor_hostname=self.host,
                             cpu_info={"arch": os.uname().machine, "model": "host",
                                       "vendor": "host", "features": [],
                                       "topology": {"cores": os.cpu_count() or 1,
                                                    "sockets": 1, "threads": 1}})

    def list_instances(self) -> list[str]:
        if not os.path.isdir(self.instances_dir):
            return []
        return sorted(n for n in os.listdir(self.instances_dir) if UUID_RE.match(n)
                      and os.path.exists(os.path.join(self.instances_dir, n, "instance.json")))

    # -- networking --------------------------------------------------------------

    def _netns_list(self) -> list[str]:
        try:
            return os.listdir("/run/netns")
        except FileNotFoundError:
            return []

    def _ensure_netns(self, uuid: str) -> str:
        ns = netns_name(uuid)
        if not os.path.exists(f"/run/netns/{ns}"):
            self.rootwrap.execute("ip", "netns", "add", ns)
            self.rootwrap.execute("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def _plug_vifs(self, uuid: str, network_info: list[dict]) -> None:
        ns = netns_name(uuid)
        existing = self.rootwrap.execute("ip", "-n", ns, "-o", "link", "show")
        for index, vif in enumerate(network_info):
            self._plug_vif(ns, index, vif, existing)

    def _plug_vif(self, ns: str, index: int, vif: dict, existing: str = "") -> None:
        port_id = vif["id"]
        tap = vif.get("devname") or tap_name(port_id)
        guest = f"eth{index}"
        bridge = (vif.get("details") or {}).get("bridge_name")
        mtu = (vif.get("network") or {}).get("mtu")
        if not mtu and bridge:  # the network's MTU, as its bridge has it
            try:
                with open(f"/sys/class/net/{bridge}/mtu") as f:
                    mtu = int(f.read())
            except (OSError, ValueError):
                mtu = None
        mtu = str(mtu or 1500)
        if f" {guest}:" in existing or f" {guest}@" in existing:
            if os.path.exists(f"/sys/class/net/{tap}"):
                return
            self.rootwrap.run("ip", "-n", ns, "link", "delete", guest)
        if os.path.exists(f"/sys/class/net/{tap}"):
            self.rootwrap.run("ip", "link", "delete", tap)
        self.rootwrap.execute("ip", "link", "add", tap, "mtu", mtu, "type", "veth", "peer",
                              "name", guest, "mtu", mtu, "netns", ns)
        self.rootwrap.execute("ip", "-n", ns, "link", "set", guest, "address", vif["address"])
        self.rootwrap.run("ip", "-n", ns, "link", "property", "add", "dev", guest,
                          "altname", f"port-{port_id}"[:127])
        if bridge:  # as os-vif does: make the bridge if the agent has not yet
            if not os.path.exists(f"/sys/class/net/{bridge}"):
                self.rootwrap.run("ip", "link", "add", bridge, "type", "bridge")
                self.rootwrap.run("ip", "link", "set", bridge, "up")
            self.rootwrap.run("ip", "link", "set", tap, "master", bridge)
        self.rootwrap.execute("ip", "link", "set", tap, "up")

    def attach_interface(self, instance: dict, vif: dict) -> None:
        uuid = instance["uuid"]
        spec = self._spec(uuid)
        vifs = [v for v in spec.get("network_info") or [] if v["id"] != vif["id"]] + [vif]
        spec["network_info"] = vifs
        self._save_spec(uuid, spec)
        ns = self._ensure_netns(uuid)
        self._plug_vif(ns, len(vifs) - 1, vif,
                       self.rootwrap.execute("ip", "-n", ns, "-o", "link", "show"))

    def detach_interface(self, instance: dict, vif: dict) -> None:
        uuid = instance["uuid"]
        spec = self._spec(uuid)
        spec["network_info"] = [v for v in spec.get("network_info") or []
                                if v["id"] != vif["id"]]
        self._save_spec(uuid, spec)
        tap = vif.get("devname") or tap_name(vif["id"])
        if os.path.exists(f"/sys/class/net/{tap}"):
            self.rootwrap.run("ip", "link", "delete", tap)

    # -- life cycle ----------------------------------------------------------------

    def _save_spec(self, uuid: str, spec: dict) -> None:
        path = os.path.join(self._dir(uuid), "instance.json")
        with open(path + ".tmp", "w") as f:
            json.dump(spec, f)
        os.replace(path + ".tmp", path)

    def spawn(self, instance, image_meta, network_info, block_device_info=None,
              admin_password=None):
        uuid = instance["uuid"]
        directory = self._dir(uuid)
        os.makedirs(directory, exist_ok=True)
        spec = self._spec(uuid)
        flavor = instance.get("flavor") or spec.get("flavor") or {}
        image = dict(image_meta) if image_meta and image_meta.get("id") else spec.get("image")
        if not image:
            raise DriverError("the container driver boots from an image (no image given)")
        spec.update({"uuid": uuid, "image": image, "flavor": {
            "vcpus": int(flavor.get("vcpus") or 1), "ram": int(flavor.get("ram") or 0),
            "disk": int(flavor.get("disk") or 0)},
            "hostname": instance.get("hostname") or spec.get("hostname") or "instance",
            "network_info": list(network_info or spec.get("network_info") or []),
            "volumes": spec.get("volumes", {})})
        self._save_spec(uuid, spec)
        self.images.ensure(image)
        self._ensure_netns(uuid)
        self._plug_vifs(uuid, spec["network_info"])
        self._start(uuid)

    def _start(self, uuid: str) -> None:
        spec = self._spec(uuid)
        if self._alive(uuid):
            return
        lower = self.images.ensure(spec["image"])
        launch = {"lower": lower, "netns": self._ensure_netns(uuid),
                  "hostname": _safe_hostname(spec.get("hostname")),
                  "memory_mb": spec["flavor"]["ram"], "vcpus": spec["flavor"]["vcpus"],
                  "pids_max": self.conf.container.pids_max,
                  "volumes": [{"device": v["device"], "name": v["name"]}
                              for v in spec.get("volumes", {}).values()]}
        console = os.path.join(self._dir(uuid), "console.log")
        _trim(console)
        with open(console, "ab") as out:
            proc = self.rootwrap.spawn(
                sys.executable, "-m", "pocketstack.compute.virt.launcher",
                "start", self._dir(uuid), stdin=subprocess.PIPE, stdout=out,
                stderr=subprocess.PIPE)
        _out, err = proc.communicate(json.dumps(launch).encode(), timeout=60)
        if proc.returncode != 0:
            raise DriverError(f"starting instance {uuid} failed: "
                              f"{err.decode(errors='replace').strip()}")
        try:  # a fresh boot is never suspended
            os.unlink(os.path.join(self._dir(uuid), "suspended"))
        except FileNotFoundError:
            pass

    def _alive(self, uuid: str) -> bool:
        record = self._record(uuid)
        pid = record.get("pid")
        if not pid:
            return False
        try:
            with open(f"/proc/{pid}/stat") as f:
                start_time = f.read().rsplit(")", 1)[1].split()[19]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
        return start_time == record.get("start_time")

    def _frozen(self, uuid: str) -> bool:
        cgroups = self._record(uuid).get("cgroups") or {}
        if "v2" in cgroups:
            try:
                with open(os.path.join(cgroups["v2"], "cgroup.freeze")) as f:
                    return f.read().strip() == "1"
            except FileNotFoundError:
                return False
        path = cgroups.get("freezer")
        if not path:
            return False
        try:
            with open(os.path.join(path, "freezer.state")) as f:
                return f.read().strip() in ("FROZEN", "FREEZING")
        except FileNotFoundError:
            return False

    def _wait_dead(self, uuid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(uuid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _stop(self, uuid: str, timeout: float, graceful_signal: str = "USR2") -> None:
        if self._alive(uuid):
            if self._frozen(uuid):
                self._launcher("thaw", uuid, check=False)
            if timeout > 0:
                self._launcher("signal", uuid, graceful_signal, check=False)
            if not self._wait_dead(uuid, timeout):
                self._launcher("signal", uuid, "KILL", check=False)
                self._wait_dead(uuid, 10)
        self._launcher("cleanup", uuid, check=False)

    def destroy(self, instance, network_info, block_device_info=None, destroy_disks=True):
        uuid = instance["uuid"]
        directory = self._dir(uuid)
        if not os.path.isdir(directory):
            self._remove_netns(uuid)
            return
        spec = self._spec(uuid)
        self._stop(uuid, 0)
        self._launcher("delete", uuid, check=False)
        for vol in (spec.get("volumes") or {}).values():
            self.rootwrap.run("losetup", "-d", vol["device"])
        self._remove_netns(uuid)
        shutil.rmtree(directory, ignore_errors=True)
        self._release_unused_bases()

    def _remove_netns(self, uuid: str) -> None:
        ns = netns_name(uuid)
        if os.path.exists(f"/run/netns/{ns}"):
            # deleting the namespace deletes the guest ends and so the veth pairs
            self.rootwrap.run("ip", "netns", "delete", ns)

    def _release_unused_bases(self) -> None:
        if self.conf.container.keep_base_mounted:
            return
        used = {str((self._spec(u).get("image") or {}).get("id")) for u in self.list_instances()}
        for image_id in self.images.mounted():
            if image_id not in used:
                try:
                    self.images.release(image_id)
                except Exception:  # noqa: BLE001
                    LOG.exception("releasing base image %s", image_id)

    def get_info(self, instance) -> InstanceInfo:
        uuid = instance["uuid"]
        spec = self._spec(uuid)
        if not spec:
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        flavor = spec.get("flavor") or {}
        max_kb = int(flavor.get("ram") or 0) * 1024
        if not self._alive(uuid):
            return InstanceInfo(state=PowerState.SHUTDOWN, max_mem_kb=max_kb,
                                num_cpu=int(flavor.get("vcpus") or 1))
        if self._frozen(uuid):
            state = (PowerState.SUSPENDED
                     if os.path.exists(os.path.join(self._dir(uuid), "suspended"))
                     else PowerState.PAUSED)
        else:
            state = PowerState.RUNNING
        cgroups = self._record(uuid).get("cgroups") or {}
        return InstanceInfo(state=state, max_mem_kb=max_kb, mem_kb=_memory_kb(cgroups),
                            num_cpu=int(flavor.get("vcpus") or 1),
                            cpu_time_ns=_cpu_ns(cgroups))

    def reboot(self, instance, network_info, reboot_type):
        uuid = instance["uuid"]
        if not self._spec(uuid):
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        # SOFT: busybox init's SIGTERM = run the shutdown actions, then reboot
        timeout = self.conf.container.shutdown_timeout if reboot_type == "SOFT" else 0
        self._stop(uuid, timeout, graceful_signal="TERM")
        if network_info:
            self._plug_vifs(uuid, network_info)
        self._start(uuid)

    def power_off(self, instance, timeout=0):
        uuid = instance["uuid"]
        if not self._spec(uuid):
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        self._stop(uuid, timeout or self.conf.container.shutdown_timeout)

    def power_on(self, instance, network_info, block_device_info=None):
        uuid = instance["uuid"]
        if not self._spec(uuid):
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        self._ensure_netns(uuid)
        self._plug_vifs(uuid, network_info or self._spec(uuid).get("network_info") or [])
        self._start(uuid)

    def _require_running(self, uuid: str) -> None:
        if not self._alive(uuid):
            raise DriverError(f"instance {uuid} is not running")

    def pause(self, instance):
        self._require_running(instance["uuid"])
        self._launcher("freeze", instance["uuid"])

    def unpause(self, instance):
        self._require_running(instance["uuid"])
        self._launcher("thaw", instance["uuid"])

    def suspend(self, instance):
        uuid = instance["uuid"]
        self._require_running(uuid)
        with open(os.path.join(self._dir(uuid), "suspended"), "w"):
            pass
        self._launcher("freeze", uuid)

    def resume(self, instance, network_info, block_device_info=None):
        uuid = instance["uuid"]
        if not self._alive(uuid):
            self.power_on(instance, network_info)
        self._launcher("thaw", uuid)
        try:
            os.unlink(os.path.join(self._dir(uuid), "suspended"))
        except FileNotFoundError:
            pass

    def get_console_output(self, instance) -> str:
        path = os.path.join(self._dir(instance["uuid"]), "console.log")
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 100_000))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            raise InstanceNotFound(f"Instance {instance['uuid']} could not be found.") from None

    def get_console(self, instance, protocol) -> dict:
        """The serial console is the guest's console pty (see console_relay)."""
        uuid = instance["uuid"]
        if protocol != "serial":
            raise ConsoleUnavailable(f"container instances have no {protocol} console")
        self._dir(uuid)  # a valid instance UUID
        sock = console_relay.socket_path(uuid)
        if not self._alive(uuid) or not os.path.exists(sock):
            raise ConsoleUnavailable(f"instance {uuid} has no running console")
        return {"host": self.host, "port": None, "internal_access_path": f"unix:{sock}"}

    def get_diagnostics(self, instance) -> dict:
        info = self.get_info(instance)
        record = self._record(instance["uuid"])
        return {"state": {1: "running", 3: "paused", 4: "shutdown", 7: "suspended"}.get(
            info.state, "pending"), "driver": "container", "hypervisor": "container",
            "hypervisor_os": "linux", "uptime": int(time.time() - record.get("started_at", 0))
            if info.state == PowerState.RUNNING else 0, "num_cpus": info.num_cpu,
            "num_nics": len(self._spec(instance["uuid"]).get("network_info") or []),
            "num_disks": 1, "memory_details": {"maximum": info.max_mem_kb // 1024,
                                               "used": info.mem_kb // 1024},
            "cpu_details": [], "nic_details": [], "disk_details": [],
            "config_drive": False}

    # -- volumes ---------------------------------------------------------------

    def attach_volume(self, instance, connection_info, mountpoint):
        """A volume is a file on this host (local/file/NFS-mounted): it becomes
        a loop block device, visible in the guest as ``mountpoint`` (/dev/vdX);
        a running guest sees it after its next (re)start."""
        uuid = instance["uuid"]
        spec = self._spec(uuid)
        if not spec:
            raise InstanceNotFound(f"Instance {uuid} could not be found.")
        data = (connection_info or {}).get("data") or {}
        path = data.get("device_path") or data.get("path")
        if not path or not os.path.exists(path):
            raise DriverError(f"volume file {path!r} is not on this host")
        name = os.path.basename(mountpoint or "")
        if not re.match(r"^vd[b-z]$", name):
            raise DriverError(f"bad device name {mountpoint!r}")
        volumes = spec.setdefault("volumes", {})
        if name in volumes:
            return
        device = self.rootwrap.execute("losetup", "--find", "--show", path).strip()
        volumes[name] = {"device": device, "name": name, "path": path,
                         "volume_id": data.get("volume_id")}
        self._save_spec(uuid, spec)

    def detach_volume(self, instance, connection_info, mountpoint):
        uuid = instance["uuid"]
        spec = self._spec(uuid)
        name = os.path.basename(mountpoint or "")
        vol = (spec.get("volumes") or {}).pop(name, None)
        if vol is None:
            return
        self.rootwrap.run("losetup", "-d", vol["device"])
        self._save_spec(uuid, spec)

    # -- reconcile ----------------------------------------------------------------

    def remove_orphans(self, known: set[str]) -> list[str]:
        """Destroy every instance (and namespace) this host has that is not in ``known``."""
        removed = []
        for uuid in self.list_instances():
            if uuid not in known:
                self.destroy({"uuid": uuid}, [])
                removed.append(uuid)
        return removed


def _safe_hostname(name) -> str:
    name = re.sub(r"[^-a-zA-Z0-9.]", "-", str(name or "instance"))[:63].strip("-.")
    return name or "instance"


def _trim(path: str) -> None:
    try:
        if os.path.getsize(path) > CONSOLE_MAX:
            with open(path, "rb") as f:
                f.seek(-CONSOLE_MAX // 2, os.SEEK_END)
                tail = f.read()
            with open(path, "wb") as f:
                f.write(tail)
    except FileNotFoundError:
        pass


def _memory_kb(cgroups: dict) -> int:
    for path in (os.path.join(cgroups.get("memory", ""), "memory.usage_in_bytes"),
                 os.path.join(cgroups.get("v2", ""), "memory.current")):
        try:
            with open(path) as f:
                return int(f.read()) // 1024
        except (FileNotFoundError, ValueError, NotADirectoryError):
            continue
    return 0


def _cpu_ns(cgroups: dict) -> int:
    path = cgroups.get("cpuacct", "")
    if not path:
        return 0
    try:
        with open(os.path.join(path, "cpuacct.usage")) as f:
            return int(f.read())
    except (FileNotFoundError, ValueError):
        return 0
