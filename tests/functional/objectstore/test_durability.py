"""`pocketstack up` killed with SIGKILL: acknowledged objects survive, exactly listed;
an upload cut by the crash leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
import urllib.parse

from pocketstack.testing import start_cloud_process

from .conftest import Swift

SERVICES = {"enabled_services": "identity,objectstore"}


def server_pid(state_path: str) -> int:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"up" in argv and state_path.encode() in argv:
            return int(pid)
    raise AssertionError("pocketstack up is not running")


def test_crash_keeps_acknowledged_objects_only(tmp_path):
    state = str(tmp_path / "cloud")
    cloud = start_cloud_process(state, SERVICES)
    try:
        swift = Swift(cloud)
        assert swift.put("keep").status_code == 201
        bodies = {f"o{i}": os.urandom(1000 + i) for i in range(20)}
        for name, body in bodies.items():
            assert swift.put(f"keep/{name}", content=body).status_code == 201
        assert swift.delete("keep/o0").status_code == 204
        del bodies["o0"]
        # An upload in flight when the server dies.
        url = urllib.parse.urlsplit(cloud.url)
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall((f"PUT /object-store/v1/{swift.account}/keep/partial HTTP/1.1\r\n"
                      f"Host: x\r\nX-Auth-Token: {swift.token}\r\n"
                      f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode()
                     + os.urandom(1024 * 1024))
        time.sleep(0.5)
        os.kill(server_pid(state), signal.SIGKILL)
        sock.close()
        swift.client.close()
    finally:
        cloud.stop()

    again = start_cloud_process(state, SERVICES)
    try:
        swift = Swift(again)
        listed = swift.get("keep", params={"format": "json"}).json()
        assert [o["name"] for o in listed] == sorted(bodies)
        for o in listed:
            assert o["hash"] == hashlib.md5(bodies[o["name"]]).hexdigest()
        head = swift.head("keep").headers
        assert head["x-container-object-count"] == str(len(bodies))
        assert int(head["x-container-bytes-used"]) == sum(map(len, bodies.values()))
        for name, body in bodies.items():
            assert swift.get(f"keep/{name}").content == body
        assert swift.head("keep/partial").status_code == 404
        assert swift.head("keep/o0").status_code == 404
        assert os.listdir(os.path.join(state, "objects", "tmp")) == []
        swift.client.close()
    finally:
        again.stop()
    with open(os.path.join(state, "up.log")) as f:
        assert "not stopped cleanly: rebuilding its index" in f.read()
    # A clean stop leaves no "running" marker: the next start skips the rebuild.
    assert not os.path.exists(os.path.join(state, "objects", "running"))
