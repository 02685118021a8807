"""The commands issue 4 names, run with the real `openstack` CLI."""

from __future__ import annotations

import hashlib

from .conftest import image_files


def test_image_create_save_set_share(cloud, qcow2, tmp_path):
    image = cloud.cli("image", "create", "--file", str(qcow2), "--disk-format", "qcow2",
                      "--container-format", "bare", "--property", "os_distro=cirros",
                      "--tag", "base", "cirros")
    data = qcow2.read_bytes()
    assert image["name"] == "cirros" and image["status"] == "active"
    assert image["disk_format"] == "qcow2" and image["container_format"] == "bare"
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["size"] == len(data)
    assert image["virtual_size"] == 1024 ** 3
    assert image_files(cloud) == [f"images/{image['id']}"]

    out = tmp_path / "saved.qcow2"
    proc = cloud.cli("image", "save", "--file", str(out), "cirros", parse=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == data

    proc = cloud.cli("image", "set", "--property", "hw_disk_bus=scsi", "--property",
                     "owner_note=golden", "--min-ram", "128", "cirros", parse=False)
    assert proc.returncode == 0, proc.stderr
    shown = cloud.cli("image", "show", "cirros")
    assert shown["min_ram"] == 128
    props = shown["properties"]
    assert props["hw_disk_bus"] == "scsi" and props["owner_note"] == "golden"
    assert props["os_distro"] == "cirros"

    # Share with another project; its user accepts and then sees the image.
    bob = cloud.make_user()
    member = cloud.cli("image", "add", "project", "cirros", bob["project_name"])
    assert member["member_id"] == bob["project_id"] and member["status"] == "pending"
    creds = {"username": bob["username"], "password": bob["password"],
             "project_name": bob["project_name"]}
    listed = cloud.cli("image", "list", **creds)
    assert [i["Name"] for i in listed] == []
    proc = cloud.cli("image", "set", "--accept", image["id"], parse=False, **creds)
    assert proc.returncode == 0, proc.stderr
    listed = cloud.cli("image", "list", **creds)
    assert [i["Name"] for i in listed] == ["cirros"]
    members = cloud.cli("image", "member", "list", "cirros")
    assert [(m["Member ID"], m["Status"]) for m in members] == [(bob["project_id"],
                                                                  "accepted")]
    proc = cloud.cli("image", "remove", "project", "cirros", bob["project_name"], parse=False)
    assert proc.returncode == 0, proc.stderr
    assert cloud.cli("image", "list", **creds) == []

    listed = cloud.cli("image", "list", "--property", "hw_disk_bus=scsi")
    assert [i["Name"] for i in listed] == ["cirros"]
    proc = cloud.cli("image", "delete", "cirros", parse=False)
    assert proc.returncode == 0, proc.stderr
    assert cloud.cli("image", "list") == []
    assert image_files(cloud) == []


def test_cli_errors(cloud, tmp_path):
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    proc = cloud.cli("image", "create", "--disk-format", "floppy", "bad", parse=False,
                     check=False)
    assert proc.returncode != 0
    assert cloud.cli("image", "list") == []
    proc = cloud.cli("image", "show", "no-such-image", parse=False, check=False)
    assert proc.returncode != 0
