"""The nfs driver against a real NFS server (nfs-ganesha), reached in user space (libnfs)."""

from __future__ import annotations

import os

import pytest
from openstack import exceptions

from tests.functional.volume.conftest import (
    nfs_overrides,
    pattern_at,
    qemu_io,
    wait_for,
    wait_status,
)

GiB = 1 << 30


def vol_files(export_dir, volume_id: str) -> list[str]:
    return sorted(f for f in os.listdir(export_dir) if volume_id in f)


@pytest.fixture
def nfs_cloud(pocketstack_cloud_factory, nfs_server, tmp_path):
    share = nfs_server.share()
    cloud = pocketstack_cloud_factory(**nfs_overrides(tmp_path, [share]))
    cloud.share = share
    cloud.export_dir = nfs_server.local(share)
    return cloud


def test_nfs_volume_lifecycle_and_snapshots(nfs_cloud):
    bs = nfs_cloud.connect().block_storage
    export = nfs_cloud.export_dir
    vol = bs.create_volume(size=1, name="on-nfs")
    vol = wait_status(lambda: bs.get_volume(vol.id), "available")
    assert vol.host.endswith("@nfs#" + nfs_cloud.share)
    base = export / f"volume-{vol.id}"
    assert base.stat().st_size == GiB and base.stat().st_blocks == 0

    # attach: the connection info is an nfs:// URL of the volume's file
    att = bs.create_attachment(vol.id, instance="11111111-1111-1111-1111-111111111111",
                               connector={"host": "compute-1"})
    info = att.connection_info
    assert info["driver_volume_type"] == "nfs"
    assert info["data"]["export"] == nfs_cloud.share
    url = info["data"]["url"]
    assert url == f"nfs://{nfs_cloud.share.replace(':', '', 1)}/volume-{vol.id}"
    qemu_io(url, "write -P 0x61 0 1M")  # the guest writes through NFS
    bs.complete_attachment(att.id)
    assert bs.get_volume(vol.id).status == "in-use"
    bs.delete_attachment(att.id)

    # a chain of snapshots: each a qcow2 overlay on the share
    snaps = []
    for i, byte in enumerate((0x62, 0x63)):
        snap = bs.create_snapshot(volume_id=vol.id, name=f"s{i}")
        snaps.append(wait_status(lambda s=snap: bs.get_snapshot(s.id), "available"))
        loc = nfs_cloud.cloud.services["volume"].manager.get_volume(
            _admin(), vol.id)["provider_location"]
        qemu_io(f"nfs://{nfs_cloud.share.replace(':', '', 1)}/{loc['chain'][-1][0]}",
                f"write -P 0x{byte:02x} 0 1M")
    assert len(vol_files(export, vol.id)) == 3

    restored = bs.create_volume(snapshot_id=snaps[0].id, name="from-s0")
    restored = wait_status(lambda: bs.get_volume(restored.id), "available")
    assert pattern_at(str(export / f"volume-{restored.id}"), 0, 1 << 20, 0x61)
    clone = bs.create_volume(source_volume_id=vol.id, size=2)
    clone = wait_status(lambda: bs.get_volume(clone.id), "available")
    assert clone.size == 2
    assert (export / f"volume-{clone.id}").stat().st_size == 2 * GiB
    assert pattern_at(str(export / f"volume-{clone.id}"), 0, 1 << 20, 0x63)

    # extending the volume grows its active overlay
    bs.extend_volume(vol, 2)
    wait_for(lambda: bs.get_volume(vol.id).size == 2 and
             bs.get_volume(vol.id).status == "available")

    # deleting the snapshots merges the chain back into the base file
    for snap in snaps:
        bs.delete_snapshot(snap)
        bs.wait_for_delete(snap, interval=0.05, wait=60)
    left = vol_files(export, vol.id)
    assert len(left) == 1  # the chain is one standalone file again
    assert pattern_at(str(export / left[0]), 0, 1 << 20, 0x63)
    assert bs.get_volume(vol.id).size == 2

    # deleting removes the files from the share
    for v in (vol, restored, clone):
        bs.delete_volume(v)
    for v in (vol, restored, clone):
        bs.wait_for_delete(v, interval=0.05, wait=60)
        assert vol_files(export, v.id) == []


def _admin():
    from pocketstack.common.context import RequestContext

    return RequestContext.internal_admin()


def test_file_and_nfs_backends_side_by_side(pocketstack_cloud_factory, nfs_server, tmp_path):
    share = nfs_server.share()
    cloud = pocketstack_cloud_factory(**nfs_overrides(tmp_path, [share],
                                                      backends=("file", "nfs")))
    out = cloud.cli("volume", "type", "create", "--property", "volume_backend_name=nfs",
                    "nfs-type")
    assert out["name"] == "nfs-type"
    on_nfs = cloud.cli("volume", "create", "--size", "1", "--type", "nfs-type", "v-nfs")
    on_file = cloud.cli("volume", "create", "--size", "1", "v-file")
    bs = cloud.connect().block_storage
    on_nfs = wait_status(lambda: bs.get_volume(on_nfs["id"]), "available")
    on_file = wait_status(lambda: bs.get_volume(on_file["id"]), "available")
    assert "@nfs#" in on_nfs.host and os.path.exists(nfs_server.local(share) /
                                                     f"volume-{on_nfs.id}")
    assert "@file#" in on_file.host
    pools = {p.name: p for p in bs.backend_pools()}
    assert any(name.endswith("#" + share) for name in pools)


def test_nfs_server_dying_during_a_create(pocketstack_cloud_factory, own_nfs_server, tmp_path):
    """The server stops mid-copy: the volume goes to error with a message, and the
    partial file is removed once the server is back."""
    server = own_nfs_server
    share = server.share("vols")
    export = server.local(share)
    cloud = pocketstack_cloud_factory(**nfs_overrides(tmp_path, [share],
                                                      **{"nfs.nfs_timeout": 3.0}))
    conn = cloud.connect()
    bs = conn.block_storage
    src = bs.create_volume(size=1, name="src")
    wait_status(lambda: bs.get_volume(src.id), "available")
    # fill the source with data that takes a while to copy
    with open(export / f"volume-{src.id}", "r+b") as f:
        for _ in range(384):
            f.write(os.urandom(1 << 20))
    copy = bs.create_volume(source_volume_id=src.id, name="copy")
    target = export / f"volume-{copy.id}"
    wait_for(target.exists, 120, interval=0.001, what="the copy to start")
    server.freeze()
    server.kill()
    copy = wait_status(lambda: bs.get_volume(copy.id), "error", timeout=120)
    # the reason is recorded as a user message
    import requests

    r = requests.get(bs.get_endpoint() + "/messages", headers={
        "X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "volume 3.3"})
    messages = [m for m in r.json()["messages"] if m["resource_uuid"] == copy.id]
    assert messages and "create volume" in messages[0]["user_message"]
    assert target.exists()  # the server is down: nothing could be cleaned yet
    # and a create while the server is down fails the same way, writing nothing
    down = bs.create_volume(size=1, name="while-down")
    wait_status(lambda: bs.get_volume(down.id), "error", timeout=120)
    server.start()
    wait_for(lambda: not vol_files(export, copy.id), 120, interval=0.05,
             what="the partial file to be removed")
    assert vol_files(export, down.id) == []
    assert vol_files(export, src.id) == [f"volume-{src.id}"]
    # the backend works again, once the scheduler has seen the share come back
    admin = cloud.connect().block_storage
    wait_for(lambda: all(p.capabilities["total_capacity_gb"] > 0
                         for p in admin.backend_pools()), 60, interval=0.05,
             what="the pool to be reported up")
    again = bs.create_volume(size=1, name="again")
    wait_status(lambda: bs.get_volume(again.id), "available")
    bs.delete_volume(copy)
    bs.wait_for_delete(copy, interval=0.05, wait=60)
    with pytest.raises(exceptions.NotFoundException):
        bs.get_volume(copy.id)


def test_volume_from_image_on_nfs(pocketstack_cloud_factory, nfs_server, tmp_path):
    import subprocess

    share = nfs_server.share()
    overrides = nfs_overrides(tmp_path, [share])
    overrides["enabled_services"] = ["identity", "image", "volume"]
    cloud = pocketstack_cloud_factory(**overrides)
    conn = cloud.connect()
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "32M"], check=True)
    qemu_io(str(disk), "write -P 0x5c 0 1M")
    image = conn.image.create_image(name="img", filename=str(disk), disk_format="qcow2",
                                    container_format="bare", wait=True)
    bs = conn.block_storage
    vol = bs.create_volume(size=1, image_id=image.id, name="boot")
    vol = wait_status(lambda: bs.get_volume(vol.id), "available")
    assert vol.is_bootable
    path = nfs_server.local(share) / f"volume-{vol.id}"
    assert path.stat().st_size == GiB
    assert pattern_at(str(path), 0, 1 << 20, 0x5c)


def test_unmountable_share_is_down_and_nothing_lands_on_local_disk(pocketstack_cloud_factory,
                                                                    tmp_path):
    """nfs_client=mount with a share that cannot be mounted (here: no kernel NFS
    client): the pool is down, volumes go to error, the mount point stays empty."""
    overrides = nfs_overrides(tmp_path, ["127.0.0.254:/nowhere"],
                              **{"nfs.nfs_client": "mount", "nfs.nfs_timeout": 5.0,
                                 "nfs.nfs_mount_point_base": str(tmp_path / "mnt")})
    cloud = pocketstack_cloud_factory(**overrides)
    bs = cloud.connect().block_storage
    vol = bs.create_volume(size=1)
    wait_status(lambda: bs.get_volume(vol.id), "error")
    for root, _dirs, names in os.walk(tmp_path / "mnt"):
        assert names == [], root
