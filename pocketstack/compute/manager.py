"""The compute agent: runs on a host, drives its hypervisor, has no database.

It learns what to do from the conductor's messages (``rpcapi.ComputeAgentAPI``)
and reports every state change back through ``rpcapi.ConductorAPI``. At start
it re-syncs in full: it asks the conductor which servers live on its host and
converges the hypervisor to them (re-creating missing guests, finishing or
clearing interrupted tasks), so nothing stays in a task state after a restart.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import defaultdict

from pocketstack.common import rpc
from pocketstack.compute import rpcapi, states
from pocketstack.compute.virt.base import DriverError, InstanceNotFound, PowerState, load_driver

LOG = logging.getLogger(__name__)

BINARY = "pocketstack-compute"
SERVICE_VERSION = 1

# Where an interrupted task ends when the agent restarts: (vm_state, power_state).
FINISH = {
    "powering-off": (states.STOPPED, PowerState.SHUTDOWN),
    "powering-on": (states.ACTIVE, PowerState.RUNNING),
    "rebooting": (states.ACTIVE, PowerState.RUNNING),
    "rebooting_hard": (states.ACTIVE, PowerState.RUNNING),
    "pausing": (states.PAUSED, PowerState.PAUSED),
    "unpausing": (states.ACTIVE, PowerState.RUNNING),
    "suspending": (states.SUSPENDED, PowerState.SUSPENDED),
    "resuming": (states.ACTIVE, PowerState.RUNNING),
    "rescuing": (states.RESCUED, PowerState.RUNNING),
    "unrescuing": (states.ACTIVE, PowerState.RUNNING),
    "rebuilding": (states.ACTIVE, PowerState.RUNNING),
}
POWER_OF = {states.ACTIVE: PowerState.RUNNING, states.STOPPED: PowerState.SHUTDOWN,
            states.PAUSED: PowerState.PAUSED, states.SUSPENDED: PowerState.SUSPENDED,
            states.RESCUED: PowerState.RUNNING, states.RESIZED: PowerState.RUNNING,
            states.ERROR: PowerState.NOSTATE, states.SHELVED: PowerState.SHUTDOWN}


class ComputeManager:
    target_version = rpcapi.COMPUTE_VERSION

    def __init__(self, conf, host: str, transport, *, driver=None,
                 conductor_version: str = rpcapi.CONDUCTOR_VERSION):
        self.conf = conf
        self.host = host
        self.transport = transport
        self.driver = driver or load_driver(conf, host)
        self.conductor = rpcapi.ConductorAPI(transport, version=conductor_version)
        self.server = rpc.RPCServer(transport, rpcapi.COMPUTE_TOPIC, host, [self],
                                    workers=conf.max_concurrent_builds)
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.disabled = False

    # -- life cycle ----------------------------------------------------------

    def resources(self) -> dict:
        res = self.driver.get_available_resource()
        return {"vcpus": res.vcpus, "memory_mb": res.memory_mb, "local_gb": res.local_gb,
                "hypervisor_type": res.hypervisor_type,
                "hypervisor_version": res.hypervisor_version,
                "hypervisor_hostname": res.hypervisor_hostname, "host_ip": res.host_ip,
                "cpu_info": res.cpu_info}

    def start(self, *, reconcile: bool = True) -> None:
        self.driver.init_host()
        self.server.start()
        reply = self.conductor.report_service({}, self.host, BINARY, self.resources(),
                                              SERVICE_VERSION)
        self.disabled = bool((reply or {}).get("disabled"))
        if reconcile:
            self.reconcile()
        self._heartbeat = threading.Thread(target=self._beat, daemon=True,
                                           name=f"heartbeat-{self.host}")
        self._heartbeat.start()

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        try:
            self.driver.cleanup_host()
        except Exception:  # noqa: BLE001
            LOG.exception("driver cleanup on %s", self.host)

    def _beat(self) -> None:
        while not self._stop.wait(self.conf.report_interval):
            try:
                reply = self.conductor.report_service({}, self.host, BINARY, None,
                                                      SERVICE_VERSION)
                self.disabled = bool((reply or {}).get("disabled"))
            except Exception as exc:  # noqa: BLE001 - keep beating
                LOG.warning("heartbeat of %s failed: %s", self.host, exc)

    def reconcile(self) -> None:
        """Converge the hypervisor to what the conductor says lives on this host."""
        wanted = self.conductor.host_instances({}, self.host)
        present = set(self.driver.list_instances())
        for inst in wanted:
            try:
                self._reconcile_one(inst, inst["uuid"] in present)
            except Exception:  # noqa: BLE001
                LOG.exception("reconciling %s", inst["uuid"])
        known = {i["uuid"] for i in wanted}
        for orphan in present - known:
            self.driver.destroy({"uuid": orphan}, [])

    def _reconcile_one(self, inst: dict, present: bool) -> None:
        task, vm = inst["task_state"], inst["vm_state"]
        if task == states.DELETING:
            self.terminate_instance({}, inst)
            return
        if vm == states.BUILDING:
            self.build_and_run_instance({}, inst, {}, inst["network_info"], None, None)
            return
        if vm in (states.SHELVED_OFFLOADED,):
            return
        if not present and vm in POWER_OF and vm != states.ERROR:
            self.driver.spawn(inst, {}, inst["network_info"])
            target_power = POWER_OF[vm]
            self._force_power(inst, target_power)
        if task is not None:
            vm_state, power = FINISH.get(task, (vm, POWER_OF.get(vm, PowerState.NOSTATE)))
            self._force_power(inst, power)
            self._update(inst, {"vm_state": vm_state, "task_state": None,
                                "power_state": power})
        else:
            self._sync_power(inst)

    def _force_power(self, inst: dict, power: int) -> None:
        try:
            if power == PowerState.SHUTDOWN:
                self.driver.power_off(inst)
            elif power == PowerState.PAUSED:
                self.driver.pause(inst)
            elif power == PowerState.SUSPENDED:
                self.driver.suspend(inst)
        except DriverError:
            pass

    def _sync_power(self, inst: dict) -> None:
        try:
            power = self.driver.get_info(inst).state
        except InstanceNotFound:
            power = PowerState.NOSTATE
        if power != inst["power_state"]:
            self._update(inst, {"power_state": power})

    # -- helpers -------------------------------------------------------------

    def _update(self, inst: dict, updates: dict, expected=None) -> dict:
        if expected is None:
            return self.conductor.client.call(
                {}, "instance_update", instance_uuid=inst["uuid"], updates=updates)
        return self.conductor.instance_update({}, inst["uuid"], updates,
                                              expected_task_state=expected)

    def _run(self, ctx, inst: dict, operation: str, work, done: dict,
             failed: dict | None = None) -> None:
        """Run a driver operation for one guest and report its outcome."""
        with self._locks[inst["uuid"]]:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - reported as the action's error
                LOG.warning("%s of %s failed: %s", operation, inst["uuid"], exc)
                updates = {"task_state": None, **(failed or {})}
                try:
                    updates["power_state"] = self.driver.get_info(inst).state
                except DriverError:
                    pass
                self.conductor.operation_failed(ctx, inst["uuid"], operation, str(exc),
                                                updates)
                return
        self._update(inst, {"task_state": None, **done})

    # == messages from the conductor (interface 1.1) ===========================

    def build_and_run_instance(self, ctx, instance, image_meta, network_info,
                               block_device_info, admin_password, **_):
        inst = instance
        with self._locks[inst["uuid"]]:
            try:
                self.driver.spawn(inst, image_meta or {}, network_info or [],
                                  block_device_info, admin_password)
            except Exception as exc:  # noqa: BLE001
                LOG.warning("spawn of %s on %s failed: %s", inst["uuid"], self.host, exc)
                try:
                    self.driver.destroy(inst, network_info or [])
                except Exception:  # noqa: BLE001
                    pass
                self.conductor.build_failed(ctx, inst["uuid"], self.host,
                                            f"Build of instance {inst['uuid']} aborted: {exc}")
                return
        power = self.driver.get_info(inst).state
        try:
            reply = self.conductor.instance_update(
                ctx, inst["uuid"], {"vm_state": states.ACTIVE, "task_state": None,
                                    "power_state": power, "launched_at": "now"},
                expected_task_state=[states.SPAWNING, states.SCHEDULING, states.NETWORKING])
        except rpc.RPCError as exc:
            if exc.kind != "NotFound":
                raise
            reply = {"updated": False, "task_state": states.DELETING}
        if reply and not reply.get("updated") and reply.get("task_state") == states.DELETING:
            # a delete raced the build (its terminate may even have run first): the
            # guest must not outlive the server
            with self._locks[inst["uuid"]]:
                self.driver.destroy(inst, network_info or [])

    def terminate_instance(self, ctx, instance, **_):
        inst = instance
        with self._locks[inst["uuid"]]:
            try:
                self.driver.destroy(inst, inst.get("network_info") or [])
            except InstanceNotFound:
                pass
        self.conductor.instance_destroyed(ctx, inst["uuid"], self.host)
        self._locks.pop(inst["uuid"], None)

    def reboot_instance(self, ctx, instance, reboot_type="SOFT", **_):
        self._run(ctx, instance, "reboot",
                  lambda: self.driver.reboot(instance, instance["network_info"], reboot_type),
                  {"vm_state": states.ACTIVE, "power_state": PowerState.RUNNING})

    def stop_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "stop", lambda: self.driver.power_off(instance),
                  {"vm_state": states.STOPPED, "power_state": PowerState.SHUTDOWN})

    def start_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "start",
                  lambda: self.driver.power_on(instance, instance["network_info"]),
                  {"vm_state": states.ACTIVE, "power_state": PowerState.RUNNING})

    def pause_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "pause", lambda: self.driver.pause(instance),
                  {"vm_state": states.PAUSED, "power_state": PowerState.PAUSED})

    def unpause_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "unpause", lambda: self.driver.unpause(instance),
                  {"vm_state": states.ACTIVE, "power_state": PowerState.RUNNING})

    def suspend_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "suspend", lambda: self.driver.suspend(instance),
                  {"vm_state": states.SUSPENDED, "power_state": PowerState.SUSPENDED})

    def resume_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "resume",
                  lambda: self.driver.resume(instance, instance["network_info"]),
                  {"vm_state": states.ACTIVE, "power_state": PowerState.RUNNING})

    def rescue_instance(self, ctx, instance, image_meta=None, rescue_password=None, **_):
        self._run(ctx, instance, "rescue",
                  lambda: self.driver.rescue(instance, instance["network_info"],
                                             image_meta or {}, rescue_password),
                  {"vm_state": states.RESCUED, "power_state": PowerState.RUNNING})

    def unrescue_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "unrescue",
                  lambda: self.driver.unrescue(instance, instance["network_info"]),
                  {"vm_state": states.ACTIVE, "power_state": PowerState.RUNNING})

    def rebuild_instance(self, ctx, instance, image_meta, **_):
        def work():
            self.driver.destroy(instance, instance["network_info"])
            self.driver.spawn(instance, image_meta or {}, instance["network_info"])
        self._run(ctx, instance, "rebuild", work,
                  {"vm_state": states.ACTIVE, "power_state": PowerState.RUNNING,
                   "launched_at": "now"})

    def evacuate_instance(self, ctx, instance, image_meta, admin_password=None,
                          stopped=False, **_):
        """Rebuild here a server whose host is down (``stopped``: leave it off, 2.95)."""
        def work():
            self.driver.spawn(instance, image_meta or {}, instance["network_info"], None,
                              admin_password)
            if stopped:
                self.driver.power_off(instance)
        self._run(ctx, instance, "evacuate", work,
                  {"vm_state": states.STOPPED if stopped else states.ACTIVE,
                   "power_state": PowerState.SHUTDOWN if stopped else PowerState.RUNNING,
                   "host": self.host, "node": self.host, "launched_at": "now"},
                  {"vm_state": states.ERROR})

    def snapshot_instance(self, ctx, instance, image_id, **_):
        def work():
            data = self.driver.snapshot(instance, image_id)
            self.conductor.upload_snapshot(ctx, instance["uuid"], image_id,
                                           base64.b64encode(data).decode())
        self._run(ctx, instance, "createImage", work, {})

    # -- moves -----------------------------------------------------------------

    def resize_instance(self, ctx, instance, dest_host, new_flavor, **_):
        """Source side of a resize/migrate: stop the guest, hand it to ``dest_host``."""
        with self._locks[instance["uuid"]]:
            try:
                self.driver.migrate_disk_and_power_off(instance, dest_host, new_flavor,
                                                       instance["network_info"])
            except Exception as exc:  # noqa: BLE001
                self.conductor.operation_failed(ctx, instance["uuid"], "resize", str(exc),
                                                {"task_state": None})
                return
        self._update(instance, {"task_state": "resize_migrated"})
        rpcapi.ComputeAgentAPI(self.transport).cast(
            ctx, dest_host, "finish_resize", instance={**instance, "flavor": new_flavor})

    def finish_resize(self, ctx, instance, **_):
        power_on = instance.get("power_state") != PowerState.SHUTDOWN
        self._run(ctx, instance, "resize",
                  lambda: self.driver.finish_migration(instance, instance["network_info"], {},
                                                       True, None, power_on),
                  {"vm_state": states.RESIZED, "host": self.host, "node": self.host,
                   "power_state": PowerState.RUNNING if power_on else PowerState.SHUTDOWN},
                  {"vm_state": states.ERROR})

    def confirm_resize(self, ctx, instance, **_):
        """Source side: drop the guest kept for a revert."""
        def work():
            if instance.get("host") != self.host:
                self.driver.destroy(instance, instance["network_info"])
            self.driver.confirm_migration(instance, instance["network_info"])
        vm = states.STOPPED if instance.get("power_state") == PowerState.SHUTDOWN \
            else states.ACTIVE
        self._run(ctx, instance, "confirmResize", work, {"vm_state": vm})

    def revert_resize(self, ctx, instance, **_):
        """Destination side of a revert: remove the new guest, give it back to the source."""
        with self._locks[instance["uuid"]]:
            if instance.get("old_host") != self.host:
                self.driver.destroy(instance, instance["network_info"])
        rpcapi.ComputeAgentAPI(self.transport).cast(
            ctx, instance["old_host"], "finish_revert_resize",
            instance={**instance, "flavor": instance.get("old_flavor") or instance["flavor"]})

    def finish_revert_resize(self, ctx, instance, **_):
        self._run(ctx, instance, "revertResize",
                  lambda: self.driver.finish_revert_migration(instance,
                                                              instance["network_info"]),
                  {"vm_state": states.ACTIVE, "host": self.host, "node": self.host,
                   "power_state": PowerState.RUNNING})

    def live_migration(self, ctx, instance, dest_host, **_):
        with self._locks[instance["uuid"]]:
            try:
                self.driver.live_migration(instance, dest_host)
            except Exception as exc:  # noqa: BLE001
                self.conductor.operation_failed(ctx, instance["uuid"], "live-migration",
                                                str(exc), {"task_state": None,
                                                           "host": self.host,
                                                           "node": self.host})
                return
        rpcapi.ComputeAgentAPI(self.transport).cast(
            ctx, dest_host, "post_live_migration_at_destination", instance=instance)

    def post_live_migration_at_destination(self, ctx, instance, **_):
        self._run(ctx, instance, "live-migration",
                  lambda: self.driver.post_live_migration_at_destination(
                      instance, instance["network_info"]),
                  {"host": self.host, "node": self.host,
                   "power_state": instance.get("power_state") or PowerState.RUNNING})

    def shelve_offload_instance(self, ctx, instance, **_):
        self._run(ctx, instance, "shelve",
                  lambda: self.driver.destroy(instance, instance["network_info"]),
                  {"vm_state": states.SHELVED_OFFLOADED, "host": None, "node": None,
                   "power_state": PowerState.SHUTDOWN})

    # -- inspection and devices ---------------------------------------------------

    def get_console_output(self, ctx, instance, length=None, **_):
        text = self.driver.get_console_output(instance)
        if length is not None:
            text = "\n".join(text.splitlines()[-int(length):]) + ("\n" if length else "")
        return text

    def trigger_crash_dump(self, ctx, instance, **_):
        self._run(ctx, instance, "trigger_crash_dump",
                  lambda: self.driver.trigger_crash_dump(instance), {})

    def get_console(self, ctx, instance, protocol, **_):
        return self.driver.get_console(instance, protocol)

    def get_diagnostics(self, ctx, instance, **_):
        return self.driver.get_diagnostics(instance)

    def attach_interface(self, ctx, instance, vif, **_):
        self.driver.attach_interface(instance, vif)

    def detach_interface(self, ctx, instance, vif, **_):
        self.driver.detach_interface(instance, vif)

    def attach_volume(self, ctx, instance, connection_info, mountpoint, **_):
        """Hook for the block storage service: plug a volume into the guest."""
        self.driver.attach_volume(instance, connection_info, mountpoint)

    def detach_volume(self, ctx, instance, connection_info, mountpoint, **_):
        self.driver.detach_volume(instance, connection_info, mountpoint)
