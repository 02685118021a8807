"""An agent running as an unprivileged user reaches root only through rootwrap."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid

from tests.e2e.conftest import PYTHON

# Runs as root only long enough to import what it needs, then drops to the
# unprivileged user for good (this machine's interpreter lives under /root,
# which other users cannot traverse), then acts as an agent would.
AGENT = textwrap.dedent("""
    import json, os, subprocess, sys
    from pocketstack import rootwrap
    import oslo_rootwrap.client, multiprocessing.managers  # noqa: F401
    uid, gid, conf, ns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.chdir("/")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    result = {"euid": os.geteuid()}
    helper = rootwrap.RootHelper(
        daemon_command=["sudo", "-n", sys.executable, "-m", "pocketstack.rootwrap", "daemon", conf])
    result["in_process"] = helper.in_process
    helper.execute("ip", "netns", "add", ns)
    helper.execute("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    result["netns"] = helper.execute("ip", "netns", "list")
    result["lo"] = helper.execute("ip", "netns", "exec", ns, "ip", "-o", "link", "show", "lo")
    try:
        helper.execute("cat", "/etc/shadow")
        result["shadow"] = "allowed"
    except rootwrap.Unauthorized:
        result["shadow"] = "refused"
    try:
        helper.execute("ip", "netns", "exec", ns, "sh", "-c", "id")
        result["shell"] = "allowed"
    except rootwrap.Unauthorized:
        result["shell"] = "refused"
    direct = subprocess.run(["sudo", "-n", "cat", "/etc/shadow"], capture_output=True)
    result["sudo_direct_rc"] = direct.returncode
    result["daemon_pid"] = helper._backend.client._process.pid
    helper.execute("ip", "netns", "delete", ns)
    helper.close()
    print(json.dumps(result))
""")


def test_agent_as_unprivileged_user_uses_only_rootwrap(unprivileged_user):
    ns = f"psrw-{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run([PYTHON, "-c", AGENT, str(unprivileged_user["uid"]),
                               str(unprivileged_user["gid"]), unprivileged_user["conf"], ns],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["euid"] == unprivileged_user["uid"] != 0
        assert result["in_process"] is False
        assert ns in result["netns"]
        assert "UP" in result["lo"]
        assert result["shadow"] == "refused"
        assert result["shell"] == "refused"
        assert result["sudo_direct_rc"] != 0  # sudo allows the rootwrap command only
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in listed


# The container driver as an unprivileged agent: every root action (netns,
# loop mount, the launcher) goes through rootwrap's daemon or its one-shot
# form under sudo.
BOOT = textwrap.dedent("""
    import json, os, sys, time, uuid
    from oslo_config import cfg
    from pocketstack import rootwrap
    from pocketstack.compute.virt import container, images, launcher  # noqa: F401
    from pocketstack.compute.virt.base import PowerState
    import oslo_rootwrap.client, oslo_rootwrap.jsonrpc, multiprocessing.managers  # noqa
    import multiprocessing.connection, shlex, shutil, subprocess, hmac, hashlib  # noqa
    uid, gid, rw_conf, state, image = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                       sys.argv[4], sys.argv[5])
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("state_path")])
    rootwrap.register_opts(conf)
    container.register_opts(conf)
    conf([])
    conf.set_override("state_path", state)
    conf.set_override("daemon_command", " ".join(
        ["sudo", "-n", sys.executable, "-m", "pocketstack.rootwrap", "daemon", rw_conf]),
        group="rootwrap")
    os.chdir("/")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    drv = container.ContainerDriver(conf, "unprivileged-host")
    assert not drv.rootwrap.in_process
    inst = {"uuid": str(uuid.uuid4()), "hostname": "rw-guest",
            "flavor": {"vcpus": 1, "ram": 96}}
    out = {"euid": os.geteuid(), "uuid": inst["uuid"]}
    drv.spawn(inst, {"id": "guest", "local_path": image}, [])
    out["running"] = drv.get_info(inst).state == PowerState.RUNNING
    out["pid"] = drv._record(inst["uuid"])["pid"]
    deadline = time.monotonic() + 30
    while "pocketstack-guest: booting" not in drv.get_console_output(inst):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    out["console"] = drv.get_console_output(inst)
    drv.power_off(inst, timeout=5)
    out["stopped"] = drv.get_info(inst).state == PowerState.SHUTDOWN
    drv.destroy(inst, [])
    out["left"] = drv.list_instances()
    drv.rootwrap.close()
    print(json.dumps(out))
""")


def test_unprivileged_agent_boots_an_instance_through_rootwrap(unprivileged_user, guest_image):
    import shutil as sh
    import tempfile

    from tests.e2e.conftest import host_leftovers

    # somewhere the unprivileged user can reach (pytest's tmp is root-only)
    top = tempfile.mkdtemp(prefix="pocketstack-rw-", dir="/var/tmp")
    try:
        os.chmod(top, 0o755)
        state = os.path.join(top, "state")
        os.mkdir(state)
        os.chown(state, unprivileged_user["uid"], unprivileged_user["gid"])
        image = os.path.join(top, "guest.raw")
        sh.copyfile(guest_image, image)
        os.chmod(image, 0o644)
        proc = subprocess.run([PYTHON, "-c", BOOT, str(unprivileged_user["uid"]),
                               str(unprivileged_user["gid"]), unprivileged_user["conf"], state,
                               image], capture_output=True, text=True, timeout=180)
    finally:
        sh.rmtree(top, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["euid"] == unprivileged_user["uid"] != 0
    assert result["running"] and result["stopped"]
    assert "pocketstack-guest: booting" in result["console"]
    assert result["left"] == []
    assert host_leftovers(result["uuid"]) == []
