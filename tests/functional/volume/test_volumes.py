"""Volumes, snapshots, types, quotas and attachments on the file backend, through openstacksdk."""

from __future__ import annotations

import os

import pytest
from openstack import exceptions

from tests.functional.volume.conftest import pattern_at, qemu_io, wait_for, wait_status

GiB = 1 << 30


def files(cloud) -> list[str]:
    path = os.path.join(cloud.state_path, "volumes", "file")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def volume_path(cloud, volume_id: str) -> str:
    return os.path.join(cloud.state_path, "volumes", "file", f"volume-{volume_id}")


def active_file(cloud, vol) -> str:
    svc = cloud.cloud.services["volume"]
    loc = svc.manager.get_volume(svc_ctx(), vol.id)["provider_location"]
    return os.path.join(loc["pool"], loc["chain"][-1][0])


def svc_ctx():
    from pocketstack.common.context import RequestContext

    return RequestContext.internal_admin()


def test_create_show_list_update_delete(volume_cloud):
    bs = volume_cloud.connect().block_storage
    vol = bs.create_volume(size=1, name="v1", description="d", metadata={"k": "v"})
    assert vol.status == "creating"
    vol = wait_status(lambda: bs.get_volume(vol.id), "available")
    assert vol.size == 1 and vol.name == "v1" and vol.metadata == {"k": "v"}
    assert vol.volume_type == "__DEFAULT__" and vol.availability_zone == "nova"
    assert vol.is_bootable is False and vol.attachments == []
    path = volume_path(volume_cloud, vol.id)
    assert os.stat(path).st_size == GiB
    assert os.stat(path).st_blocks == 0  # sparse
    assert [v.id for v in bs.volumes(name="v1")] == [vol.id]
    bs.update_volume(vol, name="renamed")
    assert bs.get_volume(vol.id).name == "renamed"
    bs.delete_volume(vol)
    bs.wait_for_delete(vol, interval=0.05, wait=60)
    assert not os.path.exists(path)


def test_delete_zeroes_the_bytes(volume_cloud):
    """volume_clear=zero (the default): the data is overwritten before the file goes."""
    bs = volume_cloud.connect().block_storage
    vol = bs.create_volume(size=1, name="secret")
    wait_status(lambda: bs.get_volume(vol.id), "available")
    path = volume_path(volume_cloud, vol.id)
    qemu_io(path, "write -P 0x5a 1M 2M")
    keep = os.path.join(volume_cloud.state_path, "witness")
    os.link(path, keep)  # a second name for the same inode shows what was left behind
    bs.delete_volume(vol)
    bs.wait_for_delete(vol, interval=0.05, wait=60)
    assert not os.path.exists(path)
    with open(keep, "rb") as f:
        f.seek(1 << 20)
        assert f.read(2 << 20) == bytes(2 << 20)
    os.unlink(keep)


def test_bad_sizes_are_refused_and_nothing_is_written(volume_cloud):
    bs = volume_cloud.connect().block_storage
    for size in (0, -1, "abc"):
        with pytest.raises(exceptions.BadRequestException):
            bs.create_volume(size=size, name="bad")
    assert list(bs.volumes()) == [] and files(volume_cloud) == []


def test_extend_and_refuse_shrinking(volume_cloud):
    bs = volume_cloud.connect().block_storage
    vol = bs.create_volume(size=1)
    wait_status(lambda: bs.get_volume(vol.id), "available")
    bs.extend_volume(vol, 3)
    vol = wait_for(lambda: (v := bs.get_volume(vol.id)).size == 3 and v.status == "available"
                   and v)
    assert os.stat(volume_path(volume_cloud, vol.id)).st_size == 3 * GiB
    for size in (3, 2):
        with pytest.raises(exceptions.BadRequestException):
            bs.extend_volume(vol, size)
    assert bs.get_volume(vol.id).size == 3


def test_snapshots_are_overlays_and_keep_their_data(volume_cloud):
    bs = volume_cloud.connect().block_storage
    vol = bs.create_volume(size=1, name="base")
    wait_status(lambda: bs.get_volume(vol.id), "available")
    qemu_io(active_file(volume_cloud, vol), "write -P 0x11 0 1M")
    snap1 = bs.create_snapshot(volume_id=vol.id, name="s1")
    wait_status(lambda: bs.get_snapshot(snap1.id), "available")
    qemu_io(active_file(volume_cloud, vol), "write -P 0x22 0 1M")
    snap2 = bs.create_snapshot(volume_id=vol.id, name="s2")
    wait_status(lambda: bs.get_snapshot(snap2.id), "available")
    qemu_io(active_file(volume_cloud, vol), "write -P 0x33 0 1M")
    assert len([f for f in files(volume_cloud) if vol.id in f]) == 3

    from1 = bs.create_volume(snapshot_id=snap1.id, name="from-s1")
    from1 = wait_status(lambda: bs.get_volume(from1.id), "available")
    assert from1.snapshot_id == snap1.id and from1.size == 1
    assert pattern_at(volume_path(volume_cloud, from1.id), 0, 1 << 20, 0x11)

    # deleting the older snapshot merges the chain; the newer one keeps its data
    bs.delete_snapshot(snap1)
    bs.wait_for_delete(snap1, interval=0.05, wait=60)
    assert len([f for f in files(volume_cloud) if vol.id in f]) == 2
    from2 = bs.create_volume(snapshot_id=snap2.id, size=2)
    from2 = wait_status(lambda: bs.get_volume(from2.id), "available")
    assert from2.size == 2
    assert pattern_at(volume_path(volume_cloud, from2.id), 0, 1 << 20, 0x22)
    assert pattern_at(active_file(volume_cloud, vol), 0, 1 << 20, 0x33)

    clone = bs.create_volume(source_volume_id=vol.id)
    clone = wait_status(lambda: bs.get_volume(clone.id), "available")
    assert pattern_at(volume_path(volume_cloud, clone.id), 0, 1 << 20, 0x33)

    # a volume with snapshots is not deleted, unless cascade
    with pytest.raises(exceptions.BadRequestException):
        bs.delete_volume(vol)
    bs.delete_volume(vol, cascade=True)
    bs.wait_for_delete(vol, interval=0.05, wait=60)
    assert not [f for f in files(volume_cloud) if vol.id in f]
    assert list(bs.snapshots(volume_id=vol.id)) == []


def test_snapshot_metadata_through_the_cli(volume_cloud):
    bs = volume_cloud.connect().block_storage
    vol = wait_status(lambda: bs.get_volume(bs.create_volume(size=1).id), "available")
    snap = bs.create_snapshot(volume_id=vol.id, name="meta-snap", metadata={"a": "1"})
    wait_status(lambda: bs.get_snapshot(snap.id), "available")
    volume_cloud.cli("volume", "snapshot", "set", "--property", "b=2", snap.id, parse=False)
    assert volume_cloud.cli("volume", "snapshot", "show", snap.id)["properties"] == {
        "a": "1", "b": "2"}
    volume_cloud.cli("volume", "snapshot", "unset", "--property", "a", snap.id, parse=False)
    assert bs.get_snapshot(snap.id).metadata == {"b": "2"}
    with pytest.raises(exceptions.NotFoundException):
        bs.delete_snapshot_metadata(snap, keys=["missing"])
    assert bs.get_snapshot(snap.id).metadata == {"b": "2"}


def test_snapshot_of_missing_volume_is_404(volume_cloud):
    bs = volume_cloud.connect().block_storage
    with pytest.raises(exceptions.NotFoundException):
        bs.create_snapshot(volume_id="00000000-0000-0000-0000-000000000000")


def test_other_tenants_volume_is_404(volume_cloud):
    admin = volume_cloud.connect().block_storage
    vol = admin.create_volume(size=1, name="admins")
    wait_status(lambda: admin.get_volume(vol.id), "available")
    user = volume_cloud.make_user()
    bs = volume_cloud.connect(username=user["username"], password=user["password"],
                              project_name=user["project_name"]).block_storage
    for call in (lambda: bs.get_volume(vol.id), lambda: bs.delete_volume(vol.id, ignore_missing=False),
                 lambda: bs.extend_volume(vol.id, 2),
                 lambda: bs.create_snapshot(volume_id=vol.id),
                 lambda: bs.create_volume(source_volume_id=vol.id)):
        with pytest.raises(exceptions.NotFoundException):
            call()
    assert [v.id for v in bs.volumes()] == []
    assert admin.get_volume(vol.id).status == "available"


def test_quota_exceeded_is_413(volume_cloud):
    admin = volume_cloud.connect()
    user = volume_cloud.make_user()
    admin.block_storage.update_quota_set(user["project_id"], volumes=2, gigabytes=3)
    bs = volume_cloud.connect(username=user["username"], password=user["password"],
                              project_name=user["project_name"]).block_storage
    first = bs.create_volume(size=2)
    with pytest.raises(exceptions.HttpException) as err:
        bs.create_volume(size=2)
    assert err.value.status_code == 413
    bs.create_volume(size=1)
    with pytest.raises(exceptions.HttpException) as err:
        bs.create_volume(size=1)
    assert err.value.status_code == 413
    wait_status(lambda: bs.get_volume(first.id), "available")
    with pytest.raises(exceptions.HttpException) as err:
        bs.extend_volume(first, 3)
    assert err.value.status_code == 413
    limits = bs.get_limits().absolute
    assert limits.total_volumes_used == 2 and limits.max_total_volumes == 2
    assert limits.total_gigabytes_used == 3


def test_attachments_api_and_in_use_rules(volume_cloud):
    bs = volume_cloud.connect().block_storage
    vol = bs.create_volume(size=1)
    wait_status(lambda: bs.get_volume(vol.id), "available")
    att = bs.create_attachment(vol.id, instance="11111111-1111-1111-1111-111111111111")
    assert att.status == "reserved"
    assert bs.get_volume(vol.id).status == "reserved"
    att = bs.update_attachment(att.id, connector={"host": "compute-1", "initiator": None})
    info = att.connection_info
    assert info["driver_volume_type"] == "file"
    assert info["data"]["path"] == volume_path(volume_cloud, vol.id)
    bs.complete_attachment(att.id)
    vol = bs.get_volume(vol.id)
    assert vol.status == "in-use"
    assert vol.attachments[0]["server_id"] == "11111111-1111-1111-1111-111111111111"
    # a second attachment of a non-multiattach volume is refused, and so is deleting it
    with pytest.raises(exceptions.BadRequestException):
        bs.create_attachment(vol.id, instance="22222222-2222-2222-2222-222222222222")
    with pytest.raises(exceptions.BadRequestException):
        bs.delete_volume(vol)
    # snapshots of in-use volumes need force
    with pytest.raises(exceptions.BadRequestException):
        bs.create_snapshot(volume_id=vol.id)
    snap = bs.create_snapshot(volume_id=vol.id, force=True)
    wait_status(lambda: bs.get_snapshot(snap.id), "available")
    bs.delete_attachment(att.id)
    vol = bs.get_volume(vol.id)
    assert vol.status == "available" and vol.attachments == []


def test_volume_types_select_backends(pocketstack_cloud_factory, tmp_path):
    cloud = pocketstack_cloud_factory(**{
        "enabled_services": ["identity", "volume"], "enabled_backends": ["file", "file2"],
        "volume_cleanup_interval": 0.2})
    bs = cloud.connect().block_storage
    fast = bs.create_type(name="fast", extra_specs={"volume_backend_name": "file2"})
    assert fast.extra_specs == {"volume_backend_name": "file2"}
    vol = bs.create_volume(size=1, volume_type="fast")
    vol = wait_status(lambda: bs.get_volume(vol.id), "available")
    assert vol.host.split("@")[1].startswith("file2#") and vol.volume_type == "fast"
    assert os.path.exists(os.path.join(cloud.state_path, "volumes", "file2",
                                       f"volume-{vol.id}"))
    # retype to a type of the other backend (same driver) moves the data
    bs.create_type(name="plain", extra_specs={"volume_backend_name": "file"})
    qemu_io(os.path.join(cloud.state_path, "volumes", "file2", f"volume-{vol.id}"),
            "write -P 0x44 0 64k")
    bs.retype_volume(vol, "plain", migration_policy="on-demand")
    vol = wait_for(lambda: (v := bs.get_volume(vol.id)).volume_type == "plain" and
                   v.status == "available" and v)
    assert vol.host.split("@")[1].startswith("file#")
    assert pattern_at(os.path.join(cloud.state_path, "volumes", "file", f"volume-{vol.id}"),
                      0, 65536, 0x44)
    wait_for(lambda: not os.path.exists(os.path.join(
        cloud.state_path, "volumes", "file2", f"volume-{vol.id}")))
    # a type naming no running backend: the volume goes to error with a message
    bs.create_type(name="nowhere", extra_specs={"volume_backend_name": "nope"})
    bad = bs.create_volume(size=1, volume_type="nowhere")
    wait_status(lambda: bs.get_volume(bad.id), "error")
    # private types and their access list
    private = bs.create_type(name="private", is_public=False)
    user = cloud.make_user()
    ubs = cloud.connect(username=user["username"], password=user["password"],
                        project_name=user["project_name"]).block_storage
    assert "private" not in [t.name for t in ubs.types()]
    bs.add_type_access(private, user["project_id"])
    assert "private" in [t.name for t in ubs.types()]
    with pytest.raises(exceptions.HttpException):
        ubs.create_type(name="mine")


def test_pagination_and_microversions(volume_cloud):
    conn = volume_cloud.connect()
    bs = conn.block_storage
    ids = {bs.create_volume(size=1, name=f"p{i}").id for i in range(5)}
    seen = [v.id for v in bs.volumes(limit=2)]
    assert set(seen) == ids and len(seen) == 5
    import requests

    token = conn.auth_token
    url = bs.get_endpoint()
    r = requests.get(url + "/volumes?limit=2&with_count=true",
                     headers={"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.45"})
    body = r.json()
    assert r.headers["OpenStack-API-Version"] == "volume 3.45"
    assert len(body["volumes"]) == 2 and body["count"] == 5
    assert body["volumes_links"][0]["rel"] == "next"
    r = requests.get(body["volumes_links"][0]["href"], headers={"X-Auth-Token": token})
    assert len(r.json()["volumes"]) == 2
    r = requests.get(url + "/volumes", headers={"X-Auth-Token": token,
                                                "OpenStack-API-Version": "volume 3.99"})
    assert r.status_code == 406
    r = requests.get(url + "/volumes", headers={"X-Auth-Token": token,
                                                "OpenStack-API-Version": "volume 3.x"})
    assert r.status_code == 400 and "badRequest" in r.json()
    root = requests.get(url.rsplit("/v3", 1)[0] + "/")
    assert root.status_code == 300
    assert root.json()["versions"][0]["version"] == "3.50"
    # the project-scoped URL form (before 3.67) works too
    project = conn.current_project_id
    r = requests.get(f"{url}/{project}/volumes", headers={"X-Auth-Token": token})
    assert r.status_code == 200 and len(r.json()["volumes"]) == 5


def test_quota_holds_under_parallel_creates(pocketstack_cloud_factory, database_url):
    """16 creates at once against a quota of 5 volumes: exactly 5 are made (each engine)."""
    from concurrent.futures import ThreadPoolExecutor

    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity", "volume"],
                                         "database.connection": database_url})
    admin = cloud.connect()
    user = cloud.make_user()
    admin.block_storage.update_quota_set(user["project_id"], volumes=5)
    creds = dict(username=user["username"], password=user["password"],
                 project_name=user["project_name"])

    def create(i):
        bs = cloud.connect(**creds).block_storage
        try:
            bs.create_volume(size=1, name=f"q{i}")
            return 202
        except exceptions.HttpException as exc:
            return exc.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, range(16)))
    assert sorted(codes) == [202] * 5 + [413] * 11
    bs = cloud.connect(**creds).block_storage
    assert len(list(bs.volumes())) == 5


def test_multiattach_volumes_take_several_attachments(volume_cloud):
    bs = volume_cloud.connect().block_storage
    bs.create_type(name="shared", extra_specs={"multiattach": "<is> True"})
    vol = bs.create_volume(size=1, volume_type="shared")
    vol = wait_status(lambda: bs.get_volume(vol.id), "available")
    assert vol.is_multiattach is True
    atts = []
    for server in ("55555555-5555-5555-5555-555555555555",
                   "66666666-6666-6666-6666-666666666666"):
        att = bs.create_attachment(vol.id, instance=server, connector={"host": "h"})
        bs.complete_attachment(att.id)
        atts.append(att)
    vol = bs.get_volume(vol.id)
    assert vol.status == "in-use" and len(vol.attachments) == 2
    # the same server twice is refused
    with pytest.raises(exceptions.BadRequestException):
        bs.create_attachment(vol.id, instance="55555555-5555-5555-5555-555555555555")
    bs.delete_attachment(atts[0].id)
    assert bs.get_volume(vol.id).status == "in-use"
    bs.delete_attachment(atts[1].id)
    assert bs.get_volume(vol.id).status == "available"
