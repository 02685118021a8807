"""`pocketstack manage fernet rotate` against a running `pocketstack up`."""

from __future__ import annotations

import os
import subprocess
import sys

from pocketstack.testing import start_cloud_process

from .conftest import Http, assert_error


def _rotate(cloud) -> str:
    proc = subprocess.run([sys.executable, "-m", "pocketstack", "manage", "fernet", "rotate",
                           "--config-file", os.path.join(cloud.state_path, "test.conf"),
                           "--state-path", cloud.state_path],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _keys(cloud) -> list[int]:
    return sorted(int(n) for n in os.listdir(os.path.join(cloud.state_path, "fernet-keys"))
                  if n.isdigit())


def test_rotation_keeps_live_tokens(tmp_path):
    cloud = start_cloud_process(str(tmp_path / "cloud"),
                                {"enabled_services": ["identity"],
                                 "fernet_tokens.max_active_keys": 4})
    try:
        http = Http(cloud)
        first = http.admin_token()
        http.token = first
        assert http.get("/v3/users").status_code == 200
        assert _keys(cloud) == [0, 1]

        assert "key 2 is now primary" in _rotate(cloud)
        assert _keys(cloud) == [0, 1, 2]
        # The token signed by the old primary still validates, as subject and as auth.
        assert http.get("/v3/auth/tokens", headers={"X-Subject-Token": first}).status_code == 200
        second = http.admin_token()
        assert second != first
        for token in (first, second):
            assert http.get("/v3/users", token=token).status_code == 200
            assert http.get("/v3/auth/tokens", token=second,
                            headers={"X-Subject-Token": token}).status_code == 200

        _rotate(cloud)
        assert _keys(cloud) == [0, 1, 2, 3]
        third = http.admin_token()
        for token in (first, second, third):
            assert http.get("/v3/auth/tokens", token=third,
                            headers={"X-Subject-Token": token}).status_code == 200

        # One more rotation drops key 1 (max_active_keys = 4): tokens it signed are dead,
        # as Keystone's are once their key leaves the repository.
        _rotate(cloud)
        assert _keys(cloud) == [0, 2, 3, 4]
        assert_error(http.get("/v3/auth/tokens", token=third,
                              headers={"X-Subject-Token": first}), 404)
        for token in (second, third):
            assert http.get("/v3/auth/tokens", token=third,
                            headers={"X-Subject-Token": token}).status_code == 200
        http.close()
    finally:
        cloud.stop()


def test_restart_keeps_tokens_and_state(tmp_path):
    path = str(tmp_path / "cloud")
    cloud = start_cloud_process(path, {"enabled_services": ["identity"]})
    try:
        http = Http(cloud)
        token = http.admin_token()
        http.token = token
        pid = http.post("/v3/projects", json={"project": {"name": "kept"}}).json()["project"]["id"]
        http.close()
    finally:
        cloud.stop()
    cloud = start_cloud_process(path, {"enabled_services": ["identity"]})
    try:
        http = Http(cloud, token)
        assert http.get(f"/v3/projects/{pid}").json()["project"]["name"] == "kept"
        http.close()
    finally:
        cloud.stop()
