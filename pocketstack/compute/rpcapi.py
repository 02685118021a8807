"""The versioned interfaces between compute's components.

``ConductorAPI`` is what agents send to the conductor; ``ComputeAgentAPI``
what the conductor sends to the agent of a host. Each bumps its minor
version when it gains a method or an argument; receivers accept every
older minor version of their major (see ``pocketstack.common.rpc``).

Conductor interface history:
  1.0  report_service, instance_update(instance_uuid, values), build_failed,
       instance_destroyed, host_instances, upload_snapshot
  1.1  instance_update(instance_uuid, updates, expected_task_state): the
       ``values`` argument is renamed ``updates``; the state change may be
       conditional on the current task state
  1.2  report_service returns the service's disabled flag and the host's
       aggregate metadata

Compute agent interface history:
  1.0  build_and_run_instance, terminate_instance, reboot/stop/start/pause/
       unpause/suspend/resume/rescue/unrescue_instance, rebuild_instance,
       snapshot_instance, resize_instance, finish_resize, confirm_resize,
       revert_resize, finish_revert_resize, live_migration,
       post_live_migration_at_destination, shelve_offload_instance,
       get_console_output, get_diagnostics, attach_interface, detach_interface,
       attach_volume, detach_volume
  1.1  get_console(instance, protocol): where the console proxy reaches a
       guest's console; evacuate_instance(instance, image_meta,
       admin_password, stopped): rebuild a server whose host is down;
       trigger_crash_dump(instance)
"""

from __future__ import annotations

from pocketstack.common.rpc import RPCClient

CONDUCTOR_VERSION = "1.2"
COMPUTE_VERSION = "1.1"
CONDUCTOR_TOPIC = "conductor"
COMPUTE_TOPIC = "compute"


class ConductorAPI:
    def __init__(self, transport, *, version: str = CONDUCTOR_VERSION, timeout: float = 60):
        self.client = RPCClient(transport, CONDUCTOR_TOPIC, version=version, timeout=timeout)

    def report_service(self, ctx, host, binary, resources, version):
        return self.client.call(ctx, "report_service", host=host, binary=binary,
                                topic=COMPUTE_TOPIC, resources=resources, version=version)

    def instance_update(self, ctx, instance_uuid, updates, expected_task_state=None):
        return self.client.call(ctx, "instance_update", instance_uuid=instance_uuid,
                                updates=updates, expected_task_state=expected_task_state)

    def build_failed(self, ctx, instance_uuid, host, reason):
        return self.client.call(ctx, "build_failed", instance_uuid=instance_uuid, host=host,
                                reason=reason)

    def instance_destroyed(self, ctx, instance_uuid, host):
        return self.client.call(ctx, "instance_destroyed", instance_uuid=instance_uuid,
                                host=host)

    def host_instances(self, ctx, host):
        return self.client.call(ctx, "host_instances", host=host)

    def upload_snapshot(self, ctx, instance_uuid, image_id, data_b64):
        return self.client.call(ctx, "upload_snapshot", instance_uuid=instance_uuid,
                                image_id=image_id, data_b64=data_b64)

    def operation_failed(self, ctx, instance_uuid, operation, reason, updates):
        return self.client.call(ctx, "operation_failed", instance_uuid=instance_uuid,
                                operation=operation, reason=reason, updates=updates)


class ComputeAgentAPI:
    def __init__(self, transport, *, timeout: float = 60):
        self.client = RPCClient(transport, COMPUTE_TOPIC, version=COMPUTE_VERSION,
                                timeout=timeout)

    def cast(self, ctx, host: str, method: str, **kwargs) -> None:
        self.client.prepare(server=host).cast(ctx, method, **kwargs)

    def call(self, ctx, host: str, method: str, **kwargs):
        return self.client.prepare(server=host).call(ctx, method, **kwargs)
