"""An agent running as an unprivileged user reaches root only through rootwrap."""

from __future__ import annotations

import json
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
