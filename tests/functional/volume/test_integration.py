"""Block storage with the image and object storage services (in-process), through the CLI."""

from __future__ import annotations

import os
import subprocess

from tests.functional.volume.conftest import pattern_at, qemu_io, wait_for, wait_status

GiB = 1 << 30


def volume_file(cloud, volume_id: str) -> str:
    return os.path.join(cloud.state_path, "volumes", "file", f"volume-{volume_id}")


def test_volume_from_image_and_back(pocketstack_cloud_factory, tmp_path):
    cloud = pocketstack_cloud_factory(enabled_services=["identity", "image", "volume"],
                                      volume_cleanup_interval=0.2)
    image_path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image_path), "64M"],
                   check=True)
    qemu_io(str(image_path), "write -P 0x77 1M 1M")
    image = cloud.cli("image", "create", "--disk-format", "qcow2", "--container-format",
                      "bare", "--file", str(image_path), "cirros-ish")
    vol = cloud.cli("volume", "create", "--size", "1", "--image", image["id"], "from-image")
    bs = cloud.connect().block_storage
    vol = wait_status(lambda: bs.get_volume(vol["id"]), "available")
    assert vol.is_bootable is True
    assert vol.volume_image_metadata["image_id"] == image["id"]
    assert vol.volume_image_metadata["disk_format"] == "qcow2"
    path = volume_file(cloud, vol.id)
    assert os.path.getsize(path) == GiB  # the image's 64M, grown to the volume's size
    assert pattern_at(path, 1 << 20, 1 << 20, 0x77)
    assert pattern_at(path, 0, 1 << 20, 0x00)

    # too small a volume for the image is refused
    small = cloud.cli("volume", "create", "--size", "1", "--image", image["id"], "ok")
    assert small["size"] == 1

    # the volume back into the image service (os-volume_upload_image)
    qemu_io(path, "write -P 0x78 0 64k")
    out = cloud.cli("image", "create", "--volume", vol.id, "--disk-format", "raw",
                    "--container-format", "bare", "from-volume")
    image_id = out.get("image_id") or out.get("id")
    images = cloud.connect().image
    wait_for(lambda: images.get_image(image_id).status == "active", 120,
             what="the uploaded image")
    uploaded = images.get_image(image_id)
    assert uploaded.disk_format == "raw" and uploaded.size == GiB
    wait_status(lambda: bs.get_volume(vol.id), "available")
    data = b"".join(images.download_image(uploaded, stream=True).iter_content(1 << 20))
    assert data[:65536] == b"\x78" * 65536 and data[1 << 20:(1 << 20) + 16] == b"\x77" * 16

    # an image that is not there: 400, nothing created
    before = len(list(bs.volumes()))
    bad = cloud.cli("volume", "create", "--size", "1", "--image",
                    "00000000-0000-0000-0000-000000000000", "nope", check=False)
    assert bad.returncode != 0
    assert len(list(bs.volumes())) == before


def test_backups_into_object_storage(pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(enabled_services=["identity", "objectstore", "volume"],
                                      volume_cleanup_interval=0.2,
                                      backup_swift_object_size=4 << 20)
    bs = cloud.connect().block_storage
    vol = cloud.cli("volume", "create", "--size", "1", "data")
    vol = wait_status(lambda: bs.get_volume(vol["id"]), "available")
    path = volume_file(cloud, vol.id)
    qemu_io(path, "write -P 0x31 0 1M")
    qemu_io(path, "write -P 0x32 512M 1M")

    backup = cloud.cli("volume", "backup", "create", "--name", "b1", vol.id)
    backup = wait_status(lambda: bs.get_backup(backup["id"]), "available")
    assert backup.size == 1 and backup.volume_id == vol.id
    assert backup.object_count == 3  # two data chunks (the rest is zeros) + metadata
    assert bs.get_volume(vol.id).status == "available"
    objects = cloud.connect().object_store.objects("volumebackups")
    assert len(list(objects)) == 3

    # incremental: only the changed chunk is stored
    qemu_io(path, "write -P 0x33 0 4k")
    inc = bs.create_backup(volume_id=vol.id, name="b2", is_incremental=True)
    inc = wait_status(lambda: bs.get_backup(inc.id), "available")
    assert inc.is_incremental and inc.object_count == 2

    # restore both into new volumes
    restored = bs.restore_backup(backup, name="r1")
    r1 = wait_status(lambda: bs.get_volume(restored.volume_id), "available")
    assert pattern_at(volume_file(cloud, r1.id), 0, 1 << 20, 0x31)
    assert pattern_at(volume_file(cloud, r1.id), 512 << 20, 1 << 20, 0x32)
    restored = bs.restore_backup(inc, name="r2")
    r2 = wait_status(lambda: bs.get_volume(restored.volume_id), "available")
    assert pattern_at(volume_file(cloud, r2.id), 0, 4096, 0x33)
    assert pattern_at(volume_file(cloud, r2.id), 4096, (1 << 20) - 4096, 0x31)
    assert pattern_at(volume_file(cloud, r2.id), 512 << 20, 1 << 20, 0x32)

    # restore over an existing volume
    qemu_io(path, "write -P 0x00 0 1M")
    bs.restore_backup(backup, volume_id=vol.id)
    wait_status(lambda: bs.get_volume(vol.id), "available")
    assert pattern_at(path, 0, 1 << 20, 0x31)

    # the parent of an incremental backup cannot go first; deleting removes objects
    import pytest
    from openstack import exceptions

    with pytest.raises(exceptions.BadRequestException):
        bs.delete_backup(backup)
    bs.delete_backup(inc)
    bs.wait_for_delete(inc, interval=0.05, wait=60)
    bs.delete_backup(backup)
    bs.wait_for_delete(backup, interval=0.05, wait=60)
    assert list(cloud.connect().object_store.objects("volumebackups")) == []
