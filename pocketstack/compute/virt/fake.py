"""The fake hypervisor: a simulated host that keeps its guests in memory.

It behaves like a hypervisor that always succeeds (optionally after
``[fake] boot_delay`` seconds), so the whole control plane (scheduling,
claims, state machine, networking, images) runs for real without guests.
Hosts listed in ``[fake] fail_hosts`` fail every spawn.
"""

from __future__ import annotations

import threading
import time

from pocketstack.compute.virt.base import (
    ComputeDriver,
    DriverError,
    HostResources,
    InstanceInfo,
    InstanceNotFound,
    PowerState,
)

FAKE_CONSOLE_PORTS = {"vnc": 5900, "spice": 5901, "serial": 10000, "mks": 6999}


class FakeDriver(ComputeDriver):
    def __init__(self, conf, host: str):
        super().__init__(conf, host)
        self._guests: dict[str, dict] = {}
        self._lock = threading.Lock()

    def get_available_resource(self) -> HostResources:
        fake = self.conf.fake
        return HostResources(vcpus=fake.vcpus, memory_mb=fake.memory_mb, local_gb=fake.local_gb,
                             hypervisor_type="fake", hypervisor_version=1000,
                             hypervisor_hostname=self.host,
                             cpu_info={"arch": "x86_64", "model": "fake", "vendor": "fake",
                                       "topology": {"cores": fake.vcpus, "sockets": 1,
                                                    "threads": 1}, "features": []})

    def list_instances(self) -> list[str]:
        with self._lock:
            return list(self._guests)

    def _guest(self, instance: dict) -> dict:
        guest = self._guests.get(instance["uuid"])
        if guest is None:
            raise InstanceNotFound(f"Instance {instance['uuid']} could not be found.")
        return guest

    def _set(self, instance: dict, state: int, *, expect: tuple[int, ...] | None = None) -> None:
        with self._lock:
            guest = self._guest(instance)
            if expect is not None and guest["state"] not in expect:
                raise DriverError(f"guest {instance['uuid']} is in power state "
                                  f"{guest['state']}")
            guest["state"] = state

    def spawn(self, instance, image_meta, network_info, block_device_info=None,
              admin_password=None):
        if self.host in self.conf.fake.fail_hosts:
            raise DriverError(f"Simulated failure spawning on {self.host}")
        if self.conf.fake.boot_delay:
            time.sleep(self.conf.fake.boot_delay)
        with self._lock:
            self._guests[instance["uuid"]] = {
                "state": PowerState.RUNNING, "flavor": dict(instance.get("flavor") or {}),
                "vifs": {v["id"]: v for v in network_info or []}, "volumes": {},
                "started": time.time(), "name": instance.get("name"),
                "console": [f"fake-console: {instance.get('hostname') or instance['uuid']} "
                            "booted"]}

    def destroy(self, instance, network_info, block_device_info=None, destroy_disks=True):
        with self._lock:
            self._guests.pop(instance["uuid"], None)

    def get_info(self, instance) -> InstanceInfo:
        with self._lock:
            guest = self._guest(instance)
            flavor = guest["flavor"]
            mem = int(flavor.get("ram", 0)) * 1024
            return InstanceInfo(state=guest["state"], max_mem_kb=mem, mem_kb=mem,
                                num_cpu=int(flavor.get("vcpus", 0)))

    def reboot(self, instance, network_info, reboot_type):
        self._set(instance, PowerState.RUNNING)
        self._console(instance, f"fake-console: {reboot_type.lower()} reboot")

    def power_off(self, instance, timeout=0):
        self._set(instance, PowerState.SHUTDOWN)

    def power_on(self, instance, network_info, block_device_info=None):
        self._set(instance, PowerState.RUNNING)

    def pause(self, instance):
        self._set(instance, PowerState.PAUSED, expect=(PowerState.RUNNING,))

    def unpause(self, instance):
        self._set(instance, PowerState.RUNNING, expect=(PowerState.PAUSED,))

    def suspend(self, instance):
        self._set(instance, PowerState.SUSPENDED, expect=(PowerState.RUNNING,))

    def resume(self, instance, network_info, block_device_info=None):
        self._set(instance, PowerState.RUNNING, expect=(PowerState.SUSPENDED,))

    def rescue(self, instance, network_info, image_meta, rescue_password):
        self._set(instance, PowerState.RUNNING)

    def unrescue(self, instance, network_info):
        self._set(instance, PowerState.RUNNING)

    def _console(self, instance, line: str) -> None:
        with self._lock:
            guest = self._guests.get(instance["uuid"])
            if guest is not None:
                guest["console"].append(line)

    def get_console_output(self, instance) -> str:
        with self._lock:
            return "\n".join(self._guest(instance)["console"]) + "\n"

    def trigger_crash_dump(self, instance):
        with self._lock:
            self._guest(instance)
        self._console(instance, "fake-console: NMI received, dumping the kernel's state")

    def get_console(self, instance, protocol) -> dict:
        """Every protocol, as Nova's fake driver: connection details with nothing behind
        them (the proxy tells a client so)."""
        with self._lock:
            self._guest(instance)
        return {"host": self.host, "port": FAKE_CONSOLE_PORTS[protocol],
                "internal_access_path": None}

    def get_diagnostics(self, instance) -> dict:
        with self._lock:
            guest = self._guest(instance)
            flavor = guest["flavor"]
            names = {PowerState.RUNNING: "running", PowerState.PAUSED: "paused",
                     PowerState.SHUTDOWN: "shutdown", PowerState.SUSPENDED: "suspended"}
            return {
                "state": names.get(guest["state"], "pending"), "driver": "fake",
                "hypervisor": "fake", "hypervisor_os": "fake-os",
                "uptime": int(time.time() - guest["started"]), "config_drive": False,
                "num_cpus": int(flavor.get("vcpus", 0)), "num_nics": len(guest["vifs"]),
                "num_disks": 1,
                "cpu_details": [{"id": i, "time": 0, "utilisation": None}
                                for i in range(int(flavor.get("vcpus", 0)))],
                "nic_details": [{"mac_address": v.get("address"), "rx_octets": 0,
                                 "rx_errors": 0, "rx_drop": 0, "rx_packets": 0,
                                 "rx_rate": None, "tx_octets": 0, "tx_errors": 0,
                                 "tx_drop": 0, "tx_packets": 0, "tx_rate": None}
                                for v in guest["vifs"].values()],
                "disk_details": [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0,
                                  "write_requests": 0, "errors_count": 0}],
                "memory_details": {"maximum": int(flavor.get("ram", 0)), "used": 0},
            }

    def attach_volume(self, instance, connection_info, mountpoint):
        with self._lock:
            self._guest(instance)["volumes"][mountpoint] = connection_info

    def detach_volume(self, instance, connection_info, mountpoint):
        with self._lock:
            self._guest(instance)["volumes"].pop(mountpoint, None)

    def attach_interface(self, instance, vif):
        with self._lock:
            self._guest(instance)["vifs"][vif["id"]] = vif

    def detach_interface(self, instance, vif):
        with self._lock:
            self._guest(instance)["vifs"].pop(vif["id"], None)

    def snapshot(self, instance, image_id) -> bytes:
        with self._lock:
            self._guest(instance)
        return f"fake disk of {instance['uuid']}\n".encode()

    def live_migration(self, instance, dest_host):
        with self._lock:
            self._guests.pop(instance["uuid"], None)
