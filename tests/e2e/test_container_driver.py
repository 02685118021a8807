"""The container hypervisor driver on the real host: namespaces, cgroups,
overlay on a loop-mounted base image, power actions, volumes, reconcile."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from pocketstack.compute.virt.base import InstanceNotFound, PowerState
from tests.e2e.conftest import host_leftovers, make_conf, require_binaries, require_root


@pytest.fixture
def driver(tmp_path):
    require_root()
    require_binaries("ip", "losetup", "mount")
    from pocketstack.compute.virt.container import ContainerDriver

    conf = make_conf(str(tmp_path / "state"))
    drv = ContainerDriver(conf, "e2e-host")
    drv.init_host()
    yield drv
    for uid in drv.list_instances():
        drv.destroy({"uuid": uid}, [])
    drv.init_host()


def _instance(ram=96, vcpus=1):
    return {"uuid": str(uuid.uuid4()), "hostname": "guest-one",
            "flavor": {"vcpus": vcpus, "ram": ram, "disk": 1}}


def _image(path):
    return {"id": "guest-image", "local_path": path, "disk_format": "raw"}


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _pid(drv, inst) -> int:
    """PID 1 of the instance, once its sysinit mounted /proc."""
    pid = drv._record(inst["uuid"])["pid"]
    _wait(lambda: os.path.exists(f"/proc/{pid}/root/proc/1/comm")
          and os.path.exists(f"/proc/{pid}/root/run/pocketstack"))
    return pid


def _in_guest(pid: int, *cmd: str) -> str:
    """Run a command inside the instance (test harness: plain nsenter as root)."""
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w",
                           *cmd], capture_output=True, text=True, check=True).stdout


def test_spawn_real_namespaces_cgroups_and_overlay(driver, guest_image):
    inst = _instance(ram=96)
    driver.spawn(inst, _image(guest_image), [])
    assert driver.get_info(inst).state == PowerState.RUNNING
    pid = _pid(driver, inst)
    # its own namespaces
    for ns in ("pid", "mnt", "uts", "ipc", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(
        f"/run/netns/psi-{inst['uuid']}").st_ino
    # PID 1 inside is busybox init from the image
    assert _in_guest(pid, "cat", "/proc/1/comm").strip() == "init"
    assert _in_guest(pid, "hostname").strip() in ("guest-one",)
    # cgroup limit from the flavor
    cgroups = driver._record(inst["uuid"])["cgroups"]
    if "memory" in cgroups:
        with open(os.path.join(cgroups["memory"], "memory.limit_in_bytes")) as f:
            assert int(f.read()) == 96 * 1024 * 1024
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"pocketstack/{inst['uuid']}" in f.read()
    # root is an overlay: writes land in the instance's own layer only
    assert "overlay" in _in_guest(pid, "cat", "/proc/mounts").split("\n")[0] or \
        " / overlay " in _in_guest(pid, "cat", "/proc/mounts")
    _in_guest(pid, "sh", "-c", "echo hello > /root/note")
    upper = os.path.join(driver._dir(inst["uuid"]), "disk", "upper", "root", "note")
    assert open(upper).read() == "hello\n"
    base = driver.images.mountpoint("guest-image")
    assert not os.path.exists(os.path.join(base, "root", "note"))
    # the console is the guest's real output
    _wait(lambda: "pocketstack-guest: booting" in driver.get_console_output(inst))


def test_power_actions_match_host_processes(driver, guest_image):
    inst = _instance()
    driver.spawn(inst, _image(guest_image), [])
    pid = _pid(driver, inst)
    freezer = driver._record(inst["uuid"])["cgroups"].get("freezer")

    driver.pause(inst)
    assert driver.get_info(inst).state == PowerState.PAUSED
    if freezer:
        assert open(os.path.join(freezer, "freezer.state")).read().strip() == "FROZEN"
    with open(f"/proc/{pid}/status") as f:  # frozen tasks sleep in the freezer
        assert "State:" in f.read()
    driver.unpause(inst)
    assert driver.get_info(inst).state == PowerState.RUNNING

    driver.suspend(inst)
    assert driver.get_info(inst).state == PowerState.SUSPENDED
    driver.resume(inst, [])
    assert driver.get_info(inst).state == PowerState.RUNNING

    driver.power_off(inst, timeout=10)
    assert driver.get_info(inst).state == PowerState.SHUTDOWN
    assert not os.path.exists(f"/proc/{pid}")
    driver.power_on(inst, [])
    assert driver.get_info(inst).state == PowerState.RUNNING
    pid2 = _pid(driver, inst)
    assert pid2 != pid and os.path.exists(f"/proc/{pid2}")

    driver.reboot(inst, [], "HARD")
    pid3 = _pid(driver, inst)
    assert pid3 != pid2 and not os.path.exists(f"/proc/{pid2}")
    assert driver.get_info(inst).state == PowerState.RUNNING
    driver.reboot(inst, [], "SOFT")
    assert driver.get_info(inst).state == PowerState.RUNNING
    assert "pocketstack-guest: booting" in driver.get_console_output(inst)


def test_disk_survives_reboot_and_dies_with_the_instance(driver, guest_image):
    inst = _instance()
    driver.spawn(inst, _image(guest_image), [])
    _in_guest(_pid(driver, inst), "sh", "-c", "echo kept > /root/kept")
    driver.reboot(inst, [], "HARD")
    assert _in_guest(_pid(driver, inst), "cat", "/root/kept") == "kept\n"
    tag = inst["uuid"]
    driver.destroy(inst, [])
    with pytest.raises(InstanceNotFound):
        driver.get_info(inst)
    assert not os.path.exists(driver._dir(tag))
    assert host_leftovers(tag) == []
    assert host_leftovers(driver.images.dir) == []  # base released when unused


def test_volume_is_a_block_device_in_the_guest(driver, guest_image, tmp_path):
    inst = _instance()
    driver.spawn(inst, _image(guest_image), [])
    volume = tmp_path / "vol1.img"
    with open(volume, "wb") as f:
        f.truncate(8 << 20)
    driver.attach_volume(inst, {"driver_volume_type": "local",
                                "data": {"device_path": str(volume)}}, "/dev/vdb")
    driver.reboot(inst, [], "HARD")
    out = _in_guest(_pid(driver, inst), "ls", "-l", "/dev/vdb")
    assert out.startswith("b")
    size = _in_guest(_pid(driver, inst), "cat", "/sys/class/block/"
                     + os.path.basename(driver._spec(inst["uuid"])["volumes"]["vdb"]["device"])
                     + "/size")
    assert int(size) * 512 == 8 << 20
    device = driver._spec(inst["uuid"])["volumes"]["vdb"]["device"]
    driver.detach_volume(inst, {}, "/dev/vdb")
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert device + ":" not in loops


def test_reconcile_remakes_host_state_and_removes_orphans(driver, guest_image):
    keep, orphan = _instance(), _instance()
    for inst in (keep, orphan):
        driver.spawn(inst, _image(guest_image), [])
    # the host loses state behind the agent's back: guest killed, netns gone
    driver.power_off(keep, timeout=0)
    subprocess.run(["ip", "netns", "delete", f"psi-{keep['uuid']}"], check=True)
    # agent restart: re-make host state, then converge to what should exist
    from pocketstack.compute.virt.container import ContainerDriver

    again = ContainerDriver(driver.conf, "e2e-host", rootwrap=driver.rootwrap)
    again.init_host()
    assert os.path.exists(f"/run/netns/psi-{keep['uuid']}")
    assert sorted(again.list_instances()) == sorted([keep["uuid"], orphan["uuid"]])
    assert again.remove_orphans({keep["uuid"]}) == [orphan["uuid"]]
    assert host_leftovers(orphan["uuid"]) == []
    assert again.get_info(keep).state == PowerState.SHUTDOWN
    again.power_on(keep, [])
    assert again.get_info(keep).state == PowerState.RUNNING
