"""After an unclean stop: uploads caught mid-way are killed, partial files swept."""

from __future__ import annotations

import os

from pocketstack.testing import start_cloud

from .conftest import Glance, image_files


def test_crash_mid_upload_kills_the_image(tmp_path):
    state = str(tmp_path / "cloud")
    overrides = {"enabled_services": ["identity", "image"]}
    cloud = start_cloud(state, overrides)
    try:
        glance = Glance(cloud, cloud.connect())
        caught = glance.create(name="caught-saving")
        staged = glance.create(name="caught-importing")
        glance.put(f"/v2/images/{staged['id']}/stage", content=b"staged bytes",
                   headers={"Content-Type": "application/octet-stream"})
        manager = cloud.cloud.services["image"].manager

        # What a crash leaves: rows in saving/importing, a partial temporary file.
        def crash(session):
            manager._change(session, caught["id"], status="saving")
            manager._change(session, staged["id"], status="importing")

        manager.db.transaction(crash)
        with open(os.path.join(state, "images", ".tmp-deadbeef"), "wb") as f:
            f.write(b"partial")
    finally:
        cloud.stop()

    cloud = start_cloud(state, overrides)
    try:
        glance = Glance(cloud, cloud.connect())
        assert glance.show(caught["id"])["status"] == "killed"
        assert [i["id"] for i in glance.get("/v2/images").json()["images"]] == [staged["id"]]
        assert glance.show(staged["id"])["status"] == "uploading"
        assert sorted(image_files(cloud)) == sorted(
            [f"images-staging/{staged['id']}", f"images-staging/{staged['id']}.json"])
        glance.upload(caught["id"], b"x", expect=409)
        assert glance.delete(f"/v2/images/{caught['id']}").status_code == 204
        r = glance.post(f"/v2/images/{staged['id']}/import",
                        json={"method": {"name": "glance-direct"}})
        assert r.status_code == 202
        from .test_uploads import wait_for

        wait_for(lambda: glance.show(staged["id"])["status"] == "active", "import done")
        assert glance.get(f"/v2/images/{staged['id']}/file").content == b"staged bytes"
    finally:
        cloud.stop()
