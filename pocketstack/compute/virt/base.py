"""The hypervisor driver interface every compute driver implements.

A compute agent owns one driver; the driver turns the agent's decisions into
guests on its host. Drivers never see the database or the bus: the agent
hands them plain dictionaries and reports what they return.

What the agent passes:

``instance``
    the server as the agent knows it: ``uuid``, ``name`` (the hypervisor
    name, ``instance-0000002a``), ``hostname``, ``flavor`` (``vcpus``,
    ``ram`` MiB, ``disk``/``ephemeral``/``swap`` GiB/MiB, ``extra_specs``),
    ``image_ref``, ``key_data``, ``user_data`` (base64 or None),
    ``metadata``, ``project_id``, ``user_id``, ``vm_state``.
``image_meta``
    the image as the image service describes it (``id``, ``name``,
    ``disk_format``, ``container_format``, ``size``, ``properties``), or
    ``{}`` for a server booted from a volume.
``network_info``
    one dict per port: ``id`` (port id), ``address`` (MAC), ``network``
    (``id``, ``label``, ``subnets`` [{``cidr``, ``gateway``, ``ips``:
    [{``address``, ``type``: fixed|floating, ``version``}]}], ``mtu``),
    ``devname`` (tap device name the data plane expects), ``vif_type``,
    ``details`` (binding details).
``block_device_info``
    ``{"root_device_name": "/dev/vda", "block_device_mapping": [{"volume_id",
    "device_name", "connection_info", "delete_on_termination", "boot_index"}],
    "ephemerals": [...], "swap": {...} | None}``. Boot from volume is a
    mapping with ``boot_index`` 0 and no image.

Errors: raise ``InstanceNotFound`` for a guest the host does not have and
``DriverError`` (with a message a user may read: it becomes the server's
fault) for anything else. Methods may block; the agent calls them from its
worker threads, one operation per guest at a time.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


class PowerState:
    """The guest power states, with Nova's numbers (shown as OS-EXT-STS:power_state)."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


class DriverError(Exception):
    """An operation failed; the message is shown to the user as the fault."""


class InstanceNotFound(DriverError):
    pass


class ConsoleUnavailable(DriverError):
    """The guest has no console of the asked protocol on this hypervisor."""


@dataclass
class InstanceInfo:
    """What ``get_info`` returns."""

    state: int
    max_mem_kb: int = 0
    mem_kb: int = 0
    num_cpu: int = 0
    cpu_time_ns: int = 0


@dataclass
class HostResources:
    """What ``get_available_resource`` returns: the host's capacity."""

    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    host_ip: str = "127.0.0.1"
    cpu_info: dict = field(default_factory=dict)


class ComputeDriver(abc.ABC):
    """A hypervisor. ``host`` is the compute host name the agent runs as."""

    #: capabilities the scheduler and the API may look at
    capabilities: dict = {"supports_attach_interface": True, "supports_pause": True,
                          "supports_suspend": True, "supports_rescue": True}

    def __init__(self, conf, host: str):
        self.conf = conf
        self.host = host

    # -- host --------------------------------------------------------------

    def init_host(self) -> None:
        """Called once when the agent starts, before anything else."""
        return None

    def cleanup_host(self) -> None:
        """Called when the agent stops."""
        return None

    @abc.abstractmethod
    def get_available_resource(self) -> HostResources:
        """The capacity of this host (reported to the scheduler by the agent)."""

    @abc.abstractmethod
    def list_instances(self) -> list[str]:
        """UUIDs of the guests present on this host (used to reconcile after restarts)."""

    # -- life cycle ---------------------------------------------------------

    @abc.abstractmethod
    def spawn(self, instance: dict, image_meta: dict, network_info: list[dict],
              block_device_info: dict | None = None, admin_password: str | None = None
              ) -> None:
        """Create and start the guest. Idempotent for a guest that already exists."""

    @abc.abstractmethod
    def destroy(self, instance: dict, network_info: list[dict],
                block_device_info: dict | None = None, destroy_disks: bool = True) -> None:
        """Stop and remove the guest; succeed quietly if it is already gone."""

    @abc.abstractmethod
    def get_info(self, instance: dict) -> InstanceInfo:
        """The guest's power state (raise InstanceNotFound if absent)."""

    @abc.abstractmethod
    def reboot(self, instance: dict, network_info: list[dict], reboot_type: str) -> None:
        """``reboot_type`` is "SOFT" (ask the guest) or "HARD" (reset)."""

    @abc.abstractmethod
    def power_off(self, instance: dict, timeout: int = 0) -> None: ...

    @abc.abstractmethod
    def power_on(self, instance: dict, network_info: list[dict],
                 block_device_info: dict | None = None) -> None: ...

    def pause(self, instance: dict) -> None:
        raise DriverError("pause is not supported by this hypervisor")

    def unpause(self, instance: dict) -> None:
        raise DriverError("unpause is not supported by this hypervisor")

    def suspend(self, instance: dict) -> None:
        raise DriverError("suspend is not supported by this hypervisor")

    def resume(self, instance: dict, network_info: list[dict],
               block_device_info: dict | None = None) -> None:
        raise DriverError("resume is not supported by this hypervisor")

    def rescue(self, instance: dict, network_info: list[dict], image_meta: dict,
               rescue_password: str | None) -> None:
        raise DriverError("rescue is not supported by this hypervisor")

    def unrescue(self, instance: dict, network_info: list[dict]) -> None:
        raise DriverError("unrescue is not supported by this hypervisor")

    # -- inspection ---------------------------------------------------------

    def get_console_output(self, instance: dict) -> str:
        return ""

    def trigger_crash_dump(self, instance: dict) -> None:
        """Make the guest's kernel dump its state (a non-maskable interrupt)."""
        raise DriverError("Triggering a crash dump is not supported by this hypervisor")

    def get_console(self, instance: dict, protocol: str) -> dict:
        """Where the console proxy reaches the guest's ``protocol`` console (vnc, spice,
        serial, mks): ``host``, ``port`` and ``internal_access_path``; a path
        ``unix:<socket>`` is a stream socket on ``host`` carrying the console's bytes."""
        raise ConsoleUnavailable(f"{protocol} consoles are not supported by this hypervisor")

    def get_diagnostics(self, instance: dict) -> dict:
        """Nova's standard diagnostics (2.48): state, driver, uptime, cpu/nic/disk details."""
        return {}

    # -- devices ------------------------------------------------------------

    def attach_volume(self, instance: dict, connection_info: dict, mountpoint: str) -> None:
        raise DriverError("volume attach is not supported by this hypervisor")

    def detach_volume(self, instance: dict, connection_info: dict, mountpoint: str) -> None:
        raise DriverError("volume detach is not supported by this hypervisor")

    def attach_interface(self, instance: dict, vif: dict) -> None:
        raise DriverError("interface attach is not supported by this hypervisor")

    def detach_interface(self, instance: dict, vif: dict) -> None:
        raise DriverError("interface detach is not supported by this hypervisor")

    # -- images and moves ---------------------------------------------------

    def snapshot(self, instance: dict, image_id: str) -> bytes:
        """Capture the root disk; returns its bytes (uploaded to ``image_id`` by the agent)."""
        raise DriverError("snapshot is not supported by this hypervisor")

    def migrate_disk_and_power_off(self, instance: dict, dest_host: str, flavor: dict,
                                   network_info: list[dict]) -> None:
        """Resize/migrate, source side: stop the guest and make its disk movable."""
        self.power_off(instance)

    def finish_migration(self, instance: dict, network_info: list[dict], image_meta: dict,
                         resize_instance: bool, block_device_info: dict | None = None,
                         power_on: bool = True) -> None:
        """Resize/migrate, destination side: build the guest with the new flavor."""
        self.spawn(instance, image_meta, network_info, block_device_info)
        if not power_on:
            self.power_off(instance)

    def confirm_migration(self, instance: dict, network_info: list[dict]) -> None:
        """Resize confirmed: remove what the source kept for a revert."""
        return None

    def finish_revert_migration(self, instance: dict, network_info: list[dict],
                                block_device_info: dict | None = None,
                                power_on: bool = True) -> None:
        """Resize reverted, source side: bring the original guest back."""
        self.spawn(instance, {}, network_info, block_device_info)
        if not power_on:
            self.power_off(instance)

    def live_migration(self, instance: dict, dest_host: str) -> None:
        """Move a running guest to ``dest_host`` (source side)."""
        raise DriverError("live migration is not supported by this hypervisor")

    def post_live_migration_at_destination(self, instance: dict,
                                           network_info: list[dict]) -> None:
        """Live migration, destination side: adopt the guest."""
        self.spawn(instance, {}, network_info)


def load_driver(conf, host: str) -> ComputeDriver:
    """``[DEFAULT] compute_driver``: a short name or ``module:Class``."""
    import importlib

    name = conf.compute_driver
    short = {"fake": "pocketstack.compute.virt.fake:FakeDriver",
             "fake.FakeDriver": "pocketstack.compute.virt.fake:FakeDriver"}
    path = short.get(name, name)
    module_name, _, cls_name = path.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(conf, host)
