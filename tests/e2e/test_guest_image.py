"""`pocketstack image build`: a bootable ext4 root file system, made without
mounting; `up`'s registration puts it in the image service once."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.conftest import require_binaries


def _debugfs(image: str, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, image], capture_output=True,
                          text=True).stdout


def test_image_build_cli_makes_a_bootable_root(tmp_path):
    require_binaries("apt-get", "dpkg-deb", "mkfs.ext4", "debugfs", "readelf", "qemu-img")
    out = tmp_path / "guest.qcow2"
    proc = subprocess.run([sys.executable, "-m", "pocketstack", "image", "build", "--format",
                           "qcow2", "--output", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["format"] == "qcow2" and "busybox-static" in info["packages"]
    assert "libtomcrypt.so.1" in info["libraries"] and "libc.so.6" in info["libraries"]
    fmt = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(out)],
                                    capture_output=True, text=True, check=True).stdout)
    assert fmt["format"] == "qcow2"
    raw = tmp_path / "guest.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(out), str(raw)], check=True)
    # inspect the file system without mounting it
    listing = _debugfs(str(raw), "ls -l /sbin")
    assert "init" in listing
    assert "../bin/busybox" in _debugfs(str(raw), "stat /sbin/init")
    inittab = _debugfs(str(raw), "cat /etc/inittab")
    assert "::sysinit:/etc/init.d/rcS" in inittab and "::shutdown:" in inittab
    boot = _debugfs(str(raw), "cat /etc/init.d/metadata")
    assert "169.254.169.254" in boot and "authorized_keys" in boot and "user_data" in boot
    for path in ("/usr/sbin/dropbear", "/lib64/ld-linux-x86-64.so.2",
                 "/lib/x86_64-linux-gnu/libtomcrypt.so.1", "/etc/udhcpc.script"):
        assert "File not found" not in _debugfs(str(raw), f"stat {path}"), path
    # root owns everything even though nothing was mounted
    assert "User:     0" in _debugfs(str(raw), "stat /usr/sbin/dropbear")


def test_guest_image_registered_once(pocketstack_cloud_factory):
    require_binaries("apt-get", "dpkg-deb", "mkfs.ext4", "readelf")
    from pocketstack.guest import integration

    cloud = pocketstack_cloud_factory(enabled_services=["identity", "image"])
    first = integration.register_guest_image(cloud.cloud)
    second = integration.register_guest_image(cloud.cloud)
    assert first == second
    conn = cloud.connect()
    images = [i for i in conn.image.images() if i.name == "pocketstack-guest"]
    assert len(images) == 1
    image = images[0]
    assert image.status == "active" and image.visibility == "public"
    assert image.disk_format == "raw"
    assert image.os_command_line.startswith("root=/dev/vda")
