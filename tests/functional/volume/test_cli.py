"""The `openstack volume ...` commands the issue names, on the default file backend."""

from __future__ import annotations

from tests.functional.volume.conftest import wait_for, wait_status


def test_volume_snapshot_and_resize_commands(volume_cloud):
    cloud = volume_cloud
    bs = cloud.connect().block_storage
    vol = cloud.cli("volume", "create", "--size", "1", "v1")
    assert vol["size"] == 1 and vol["name"] == "v1"
    wait_status(lambda: bs.get_volume(vol["id"]), "available")

    snap = cloud.cli("volume", "snapshot", "create", "--volume", "v1", "s1")
    assert snap["volume_id"] == vol["id"]
    wait_status(lambda: bs.get_snapshot(snap["id"]), "available")
    listed = cloud.cli("volume", "snapshot", "list")
    assert [s["Name"] for s in listed] == ["s1"]

    v2 = cloud.cli("volume", "create", "--snapshot", "s1", "--size", "2", "v2")
    assert v2["snapshot_id"] == snap["id"]
    wait_status(lambda: bs.get_volume(v2["id"]), "available")

    cloud.cli("volume", "set", "--size", "3", "v2", parse=False)
    shown = wait_status(lambda: bs.get_volume(v2["id"]), "available")
    assert shown.size == 3
    shrink = cloud.cli("volume", "set", "--size", "1", "v2", parse=False, check=False)
    assert shrink.returncode != 0
    assert bs.get_volume(v2["id"]).size == 3

    shown = cloud.cli("volume", "show", "v2")
    assert shown["size"] == 3 and shown["status"] == "available"
    assert shown["type"] == "__DEFAULT__"
    names = sorted(v["Name"] for v in cloud.cli("volume", "list"))
    assert names == ["v1", "v2"]
    zones = cloud.cli("availability", "zone", "list", "--volume")
    assert [z["Zone Name"] for z in zones] == ["nova"]
    limits = {row["Name"]: row["Value"] for row in cloud.cli("limits", "show", "--absolute")}
    assert limits["total_volumes_used"] == 2 and limits["total_gigabytes_used"] == 5

    bad = cloud.cli("volume", "create", "--size", "0", "zero", parse=False, check=False)
    assert bad.returncode != 0
    missing = cloud.cli("volume", "snapshot", "create", "--volume", "nope", "s", parse=False,
                        check=False)
    assert missing.returncode != 0

    cloud.cli("volume", "snapshot", "delete", "s1", parse=False)
    wait_for(lambda: not list(bs.snapshots()), what="the snapshot to go")
    cloud.cli("volume", "delete", "v1", "v2", parse=False)
    wait_for(lambda: not list(bs.volumes()), what="the volumes to go")
    assert cloud.cli("volume", "list") == []


def test_type_and_quota_commands(volume_cloud):
    cloud = volume_cloud
    t = cloud.cli("volume", "type", "create", "--property", "volume_backend_name=file",
                  "--description", "local files", "gold")
    assert t["name"] == "gold"
    shown = cloud.cli("volume", "type", "show", "gold")
    assert "volume_backend_name" in str(shown["properties"])
    types = sorted(x["Name"] for x in cloud.cli("volume", "type", "list"))
    assert types == ["__DEFAULT__", "gold"]
    vol = cloud.cli("volume", "create", "--size", "1", "--type", "gold", "g1")
    assert vol["type"] == "gold"
    user = cloud.make_user()
    cloud.cli("quota", "set", "--volumes", "1", user["project_id"], parse=False)
    quota = cloud.cli("quota", "show", user["project_id"])
    rows = quota if isinstance(quota, list) else [{"Resource": k, "Limit": v}
                                                  for k, v in quota.items()]
    assert any(r.get("Resource") == "volumes" and r.get("Limit") == 1 for r in rows)
    creds = dict(username=user["username"], password=user["password"],
                 project_name=user["project_name"])
    cloud.cli("volume", "create", "--size", "1", "mine", **creds)
    over = cloud.cli("volume", "create", "--size", "1", "second", parse=False, check=False,
                     **creds)
    assert over.returncode != 0 and "413" in over.stderr + over.stdout
