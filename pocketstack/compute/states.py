"""Server states as Nova defines them: vm_state, task_state, power_state, status."""

from __future__ import annotations

ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

# task states
SCHEDULING = "scheduling"
NETWORKING = "networking"
SPAWNING = "spawning"
DELETING = "deleting"

POWER = {0: "NOSTATE", 1: "RUNNING", 3: "PAUSED", 4: "SHUTDOWN", 6: "CRASHED", 7: "SUSPENDED"}

_TASK_STATUS = {
    "rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT", "rebuilding": "REBUILD",
    "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD",
    "updating_password": "PASSWORD", "resize_prep": "RESIZE", "resize_migrating": "RESIZE",
    "resize_migrated": "RESIZE", "resize_finish": "RESIZE", "migrating": "MIGRATING",
    "resize_reverting": "REVERT_RESIZE",
}

_VM_STATUS = {
    ACTIVE: "ACTIVE", BUILDING: "BUILD", STOPPED: "SHUTOFF", RESIZED: "VERIFY_RESIZE",
    PAUSED: "PAUSED", SUSPENDED: "SUSPENDED", RESCUED: "RESCUE", ERROR: "ERROR",
    DELETED: "DELETED", SOFT_DELETED: "SOFT_DELETED", SHELVED: "SHELVED",
    SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
}


def status(vm_state: str, task_state: str | None) -> str:
    if task_state:
        if vm_state == ACTIVE and task_state in _TASK_STATUS:
            return _TASK_STATUS[task_state]
        if vm_state == STOPPED and task_state in ("resize_prep", "resize_migrating",
                                                   "resize_migrated", "resize_finish"):
            return "RESIZE"
        if vm_state == RESIZED and task_state == "resize_reverting":
            return "REVERT_RESIZE"
        if vm_state == STOPPED and task_state in ("rebooting_hard", "reboot_pending_hard",
                                                   "reboot_started_hard"):
            return "HARD_REBOOT"
        if vm_state == STOPPED and task_state == "rebuilding":
            return "REBUILD"
    return _VM_STATUS.get(vm_state, "UNKNOWN")


# status filter (?status=) -> vm_states (and task states for the task-only statuses)
STATUS_FILTER = {
    "ACTIVE": ([ACTIVE], None), "BUILD": ([BUILDING], None), "SHUTOFF": ([STOPPED], None),
    "ERROR": ([ERROR], None), "PAUSED": ([PAUSED], None), "SUSPENDED": ([SUSPENDED], None),
    "RESCUE": ([RESCUED], None), "VERIFY_RESIZE": ([RESIZED], None),
    "DELETED": ([DELETED], None), "SOFT_DELETED": ([SOFT_DELETED], None),
    "SHELVED": ([SHELVED], None), "SHELVED_OFFLOADED": ([SHELVED_OFFLOADED], None),
    "REBOOT": ([ACTIVE], ["rebooting", "reboot_pending", "reboot_started"]),
    "HARD_REBOOT": ([ACTIVE, STOPPED], ["rebooting_hard", "reboot_pending_hard",
                                         "reboot_started_hard"]),
    "REBUILD": ([ACTIVE, STOPPED], ["rebuilding", "rebuild_spawning"]),
    "RESIZE": ([ACTIVE, STOPPED], ["resize_prep", "resize_migrating", "resize_migrated",
                                    "resize_finish"]),
    "MIGRATING": ([ACTIVE], ["migrating"]), "REVERT_RESIZE": ([RESIZED], ["resize_reverting"]),
    "PASSWORD": ([ACTIVE], ["updating_password"]),
}

PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}
