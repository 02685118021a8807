"""e2e fixtures: root, real namespaces; every host object a test makes is removed."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys

import pytest

from tests.conftest import missing

PYTHON = sys.executable


def require_root():
    if os.geteuid() != 0:
        missing("root (e2e tests use real namespaces)")


def require_binaries(*names: str):
    for name in names:
        if shutil.which(name) is None and not os.path.exists(f"/usr/sbin/{name}"):
            missing(f"binary {name}")


@pytest.fixture
def unprivileged_user(tmp_path):
    """A Linux user allowed by sudo to run only the rootwrap command, and a
    root-owned rootwrap.conf for the shipped filters."""
    require_root()
    require_binaries("sudo", "useradd")
    from pocketstack import rootwrap

    name = "pocketstack-rw"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        name], check=True)
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    conf_path = rootwrap.write_config(str(conf_dir / "rootwrap.conf"))
    sudoers = f"/etc/sudoers.d/pocketstack-rw-{os.getpid()}"
    with open(sudoers, "w") as f:
        f.write(f"{name} ALL=(root) NOPASSWD: {PYTHON} -m pocketstack.rootwrap *\n")
    os.chmod(sudoers, 0o440)
    entry = pwd.getpwnam(name)
    try:
        yield {"name": name, "uid": entry.pw_uid, "gid": entry.pw_gid, "conf": conf_path}
    finally:
        os.unlink(sudoers)


GUEST_CACHE = os.environ.get("POCKETSTACK_GUEST_CACHE", "/var/tmp/pocketstack-test-guest")


@pytest.fixture(scope="session")
def guest_image():
    """The guest image, built once (and cached across runs by its inputs)."""
    require_root()
    require_binaries("apt-get", "dpkg-deb", "mkfs.ext4", "readelf")
    from pocketstack.guest import builder

    return builder.cached_image(GUEST_CACHE)


def make_conf(state_path: str, **overrides):
    """A configuration with just what the data-plane pieces read."""
    from oslo_config import cfg

    from pocketstack import rootwrap

    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("state_path"), cfg.StrOpt("host", default="e2e-host")])
    rootwrap.register_opts(conf)
    conf([])
    conf.set_override("state_path", state_path)
    for key, value in overrides.items():
        group, _, name = key.rpartition(".")
        conf.set_override(name, value, group=group or None)
    return conf


def host_leftovers(tag: str) -> list[str]:
    """Host objects whose names contain ``tag``: namespaces, links, mounts,
    loop devices, processes, cgroups."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if tag in line]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {line}" for line in links.splitlines() if tag in line]
    with open("/proc/mounts") as f:
        found += [f"mount {line.strip()}" for line in f if tag in line]
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    found += [f"loop {line}" for line in loops.splitlines() if tag in line]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        if (tag in cmd and "pytest" not in cmd) or tag in cg:
            found.append(f"process {pid} {cmd[:100]}")
    return found


class MetadataService:
    """Stands in for compute's metadata service (its contract: a proxied
    request carries X-Instance-ID signed with the shared secret)."""

    def __init__(self, secret: str):
        import hashlib
        import hmac
        import http.server
        import json
        import threading

        self.secret = secret
        self.instances: dict[str, dict] = {}
        self.requests: list[dict] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                iid = self.headers.get("X-Instance-ID", "")
                sig = self.headers.get("X-Instance-ID-Signature", "")
                want = hmac.new(service.secret.encode(), iid.encode(),
                                hashlib.sha256).hexdigest()
                service.requests.append({"path": self.path, "instance": iid,
                                         "tenant": self.headers.get("X-Tenant-ID"),
                                         "ip": self.headers.get("X-Forwarded-For")})
                inst = service.instances.get(iid)
                if not hmac.compare_digest(sig, want) or inst is None:
                    self.send_response(403)
                    self.end_headers()
                    return
                if self.path.endswith("/meta_data.json"):
                    body = json.dumps({"uuid": iid, "hostname": inst["hostname"],
                                       "name": inst["hostname"],
                                       "public_keys": {"key": inst["key"] + "\n"},
                                       "project_id": inst.get("project_id")}).encode()
                    ctype = "application/json"
                elif self.path.endswith("/user_data") and inst.get("user_data"):
                    body, ctype = inst["user_data"].encode(), "text/plain"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata_service():
    service = MetadataService("e2e-shared-secret")
    yield service
    service.stop()
