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
