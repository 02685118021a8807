"""pytest plugin: a fresh pocketstack cloud per test, as moto gives AWS users.

    def test_my_tool(pocketstack_cloud):
        conn = pocketstack_cloud.connect()          # openstacksdk, as admin
        conn.identity.create_project(name="p1")
        pocketstack_cloud.cli("project", "list")    # the openstack CLI, parsed JSON

The cloud runs in-process on a free port with its state in a temporary
directory; ``pocketstack_cloud_process`` runs it as a subprocess instead.
``pocketstack_cloud_factory(**overrides)`` builds clouds with config
overrides ("group.option": value).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field

import pytest

FAST_DEFAULTS = {
    # bcrypt at cost 4 keeps a cloud per test cheap; production keeps 12.
    "identity.password_hash_rounds": 4,
    "bootstrap.admin_password": "pocketstack-admin",
    # test clouds do not download and build the guest image behind `up`
    "guest_image.register": False,
}


@dataclass
class RunningCloud:
    url: str
    admin_password: str
    state_path: str
    cloud: object = None  # the in-process Cloud, None for a subprocess
    _stop: object = None
    _connections: list = field(default_factory=list)

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity"

    def auth(self, username="admin", password=None, project_name="admin",
             domain="Default", **scope) -> dict:
        auth = {"auth_url": self.auth_url, "username": username,
                "password": password or self.admin_password,
                "user_domain_name": domain}
        if project_name:
            auth.update(project_name=project_name, project_domain_name=domain)
        auth.update(scope)
        return auth

    def connect(self, **auth):
        """An openstacksdk connection (admin unless other credentials are given)."""
        import openstack

        conn = openstack.connect(auth=self.auth(**auth), region_name="RegionOne",
                                 identity_api_version="3", load_yaml_config=False,
                                 load_envvars=False)
        self._connections.append(conn)
        return conn

    def env(self, username="admin", password=None, project_name="admin") -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_AUTH_URL=self.auth_url, OS_USERNAME=username,
                   OS_PASSWORD=password or self.admin_password, OS_PROJECT_NAME=project_name,
                   OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
                   OS_REGION_NAME="RegionOne", OS_IDENTITY_API_VERSION="3",
                   OS_INTERFACE="public")
        return env

    def cli(self, *args: str, parse: bool = True, check: bool = True,
            username="admin", password=None, project_name="admin", timeout: float = 120):
        """Run the `openstack` CLI; returns parsed JSON output when ``parse``."""
        argv = [shutil.which("openstack") or "openstack", *args]
        if parse:
            argv += ["-f", "json"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=self.env(username, password, project_name))
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stderr}\n{proc.stdout}")
        if not parse or proc.returncode != 0:
            return proc
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def make_user(self, name: str | None = None, project: str | None = None,
                  role: str = "member", password: str = "secret-pass") -> dict:
        """A new project and a user with ``role`` on it; returns their credentials."""
        conn = self.connect()
        name = name or f"user-{uuid.uuid4().hex[:8]}"
        project_name = project or f"project-{uuid.uuid4().hex[:8]}"
        found = conn.identity.find_project(project_name)
        proj = found or conn.identity.create_project(name=project_name, domain_id="default")
        user = conn.identity.create_user(name=name, password=password, domain_id="default",
                                         default_project_id=proj.id)
        role_obj = conn.identity.find_role(role)
        conn.identity.assign_project_role_to_user(proj, user, role_obj)
        return {"username": name, "password": password, "project_name": project_name,
                "user_id": user.id, "project_id": proj.id}

    def stop(self) -> None:
        for conn in self._connections:
            try:
                conn.close()
            except Exception:
                pass
        if self._stop is not None:
            self._stop()
            self._stop = None


def start_cloud(state_path: str | None = None, overrides: dict | None = None) -> RunningCloud:
    """Start a cloud in this process on a free port."""
    from pocketstack import cloud as cloud_mod
    from pocketstack import config

    state_path = state_path or tempfile.mkdtemp(prefix="pocketstack-")
    settings = {**FAST_DEFAULTS, "state_path": state_path, "bind_port": 0,
                **(overrides or {})}
    conf = config.load([], settings)
    sock = cloud_mod.bind_socket(conf)
    cloud = cloud_mod.Cloud(conf)
    cloud.start()
    server = cloud_mod.Server(cloud, sock)
    server.start()

    def stop():
        server.stop()
        cloud.stop()

    return RunningCloud(url=cloud.public_url, admin_password=conf.bootstrap.admin_password
                        or cloud.services["identity"].admin_password(),
                        state_path=state_path, cloud=cloud, _stop=stop)


def start_cloud_process(state_path: str | None = None, overrides: dict | None = None,
                        timeout: float = 30) -> RunningCloud:
    """Start `pocketstack up` as a subprocess (a config file carries the overrides)."""
    import socket

    state_path = state_path or tempfile.mkdtemp(prefix="pocketstack-")
    os.makedirs(state_path, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = {**FAST_DEFAULTS, **(overrides or {})}
    sections: dict[str, list[str]] = {}
    for key, value in settings.items():
        group, _, name = key.rpartition(".")
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        sections.setdefault(group or "DEFAULT", []).append(f"{name} = {value}")
    conf_path = os.path.join(state_path, "test.conf")
    with open(conf_path, "w") as f:
        for group, lines in sections.items():
            f.write(f"[{group}]\n" + "\n".join(lines) + "\n\n")
    log = open(os.path.join(state_path, "up.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pocketstack", "up", "--config-file",
                             conf_path, "--state-path", state_path, "--port", str(port),
                             "--no-user-clouds-yaml"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    import httpx

    while True:
        try:
            if httpx.get(url + "/identity/v3", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            with open(os.path.join(state_path, "up.log")) as f:
                raise RuntimeError(f"pocketstack up did not start:\n{f.read()}")
        time.sleep(0.02)

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    return RunningCloud(url=url, admin_password=settings["bootstrap.admin_password"],
                        state_path=state_path, _stop=stop)


@pytest.fixture
def pocketstack_cloud_factory(tmp_path):
    clouds = []

    def make(**overrides) -> RunningCloud:
        path = tmp_path / f"cloud{len(clouds)}"
        running = start_cloud(str(path), overrides)
        clouds.append(running)
        return running

    yield make
    for running in clouds:
        running.stop()


@pytest.fixture
def pocketstack_cloud(pocketstack_cloud_factory) -> RunningCloud:
    """A fresh in-process cloud (SQLite, in-process bus) for one test."""
    return pocketstack_cloud_factory()


@pytest.fixture
def pocketstack_cloud_process(tmp_path) -> RunningCloud:
    """A fresh cloud run by `pocketstack up` in a subprocess."""
    running = start_cloud_process(str(tmp_path / "cloud"))
    yield running
    running.stop()
