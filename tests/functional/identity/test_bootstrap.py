"""Bootstrap on a fresh and on an existing state directory."""

from __future__ import annotations

from pocketstack.testing import start_cloud

from .conftest import Http


def _start(path, password=None):
    overrides = {"enabled_services": ["identity"]}
    if password:
        overrides["bootstrap.admin_password"] = password
    return start_cloud(str(path), overrides)


def test_restart_and_admin_password_change(tmp_path):
    cloud = _start(tmp_path, "first-password")
    http = Http(cloud)
    http.issue("admin", "first-password")
    http.issue("admin", "first-passwore", expect=401)
    http.issue("admin", "first-password" + "x" * 80, expect=401)
    http.close()
    cloud.stop()

    cloud = _start(tmp_path, "first-password")  # unchanged: nothing to redo
    http = Http(cloud)
    http.issue("admin", "first-password")
    users = cloud.connect(password="first-password").identity.users()
    assert [u.name for u in users] == ["admin"]
    http.close()
    cloud.stop()

    cloud = _start(tmp_path, "second-password")  # the config changed: bootstrap resets it
    http = Http(cloud)
    http.issue("admin", "second-password")
    http.issue("admin", "first-password", expect=401)
    http.close()
    cloud.stop()


def test_admin_password_changed_through_api_is_reset_on_restart(tmp_path):
    cloud = _start(tmp_path, "config-password")
    http = Http(cloud)
    http.token = http.admin_token()
    admin_id = http.get("/v3/users", params={"name": "admin"}).json()["users"][0]["id"]
    r = http.post(f"/v3/users/{admin_id}/password", json={"user": {
        "original_password": "config-password", "password": "api-password"}})
    assert r.status_code == 204
    http.issue("admin", "api-password")
    # the bootstrap's password, known to the cloud, no longer matches the admin's hash
    http.issue("admin", "config-password", expect=401)
    http.close()
    cloud.stop()
    # As keystone-manage bootstrap does, the configured password wins again.
    cloud = _start(tmp_path, "config-password")
    http = Http(cloud)
    http.issue("admin", "config-password")
    http.issue("admin", "api-password", expect=401)
    http.close()
    cloud.stop()


def test_generated_admin_password(tmp_path):
    cloud = start_cloud(str(tmp_path), {"enabled_services": ["identity"],
                                         "bootstrap.admin_password": None})
    password = open(tmp_path / "admin-password").read().strip()
    assert len(password) >= 16 and cloud.admin_password == password
    Http(cloud).issue("admin", password)
    cloud.stop()
    cloud = start_cloud(str(tmp_path), {"enabled_services": ["identity"],
                                         "bootstrap.admin_password": None})
    Http(cloud).issue("admin", password)
    cloud.stop()
