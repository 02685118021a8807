"""Visibility and members: tenants never see each other's private images."""

from __future__ import annotations

from .conftest import tenant


def ids(glance, **params) -> set[str]:
    r = glance.get("/v2/images", params=params)
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()["images"]}


def test_private_images_stay_private(cloud, admin):
    alice, _ = tenant(cloud)
    bob, _ = tenant(cloud)
    secret = alice.create(name="secret", visibility="private")
    alice.upload(secret["id"], b"alice's data")
    shared = alice.create(name="shared-not-yet")
    assert ids(alice) == {secret["id"], shared["id"]}
    assert ids(bob) == set()
    assert ids(bob, visibility="all") == set()
    assert ids(bob, visibility="private") == set()
    assert ids(bob, visibility="shared") == set()
    for path in ("", "/file", "/members"):
        assert bob.get(f"/v2/images/{secret['id']}{path}").status_code == 404
    assert bob.get(f"/v2/images/{shared['id']}").status_code == 404
    # Writes from another tenant: 404, and nothing changes.
    r = bob.patch(secret["id"], [{"op": "replace", "path": "/name", "value": "mine"}],
                  expect=404)
    assert r.json()["message"]
    assert bob.delete(f"/v2/images/{secret['id']}").status_code == 404
    assert bob.put(f"/v2/images/{secret['id']}/tags/x").status_code == 404
    assert bob.post(f"/v2/images/{secret['id']}/actions/deactivate").status_code == 404
    r = bob.put(f"/v2/images/{shared['id']}/file", content=b"bob's data",
                headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 404
    assert alice.show(secret["id"])["name"] == "secret"
    assert alice.show(shared["id"])["status"] == "queued"
    # A marker from someone else's image is not found either.
    assert bob.get("/v2/images", params={"marker": secret["id"]}).status_code == 400
    # The admin sees everything.
    assert {secret["id"], shared["id"]} <= ids(admin)


def test_public_and_community(cloud, admin):
    alice, _ = tenant(cloud)
    bob, _ = tenant(cloud)
    r = alice.post("/v2/images", json={"name": "pub", "visibility": "public"})
    assert r.status_code == 403  # publicizing is the admin's
    public = admin.create(name="pub", visibility="public")
    community = alice.create(name="comm", visibility="community")
    assert public["id"] in ids(bob)
    assert community["id"] not in ids(bob)  # community images are not listed by default
    assert community["id"] in ids(bob, visibility="community")
    assert community["id"] in ids(alice)
    assert bob.show(community["id"])["name"] == "comm"
    assert bob.patch(community["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                     expect=403)
    assert alice.patch(community["id"],
                       [{"op": "replace", "path": "/visibility", "value": "public"}],
                       expect=403)


def test_members_share_accept_reject(cloud):
    alice, _ = tenant(cloud)
    bob, bob_creds = tenant(cloud)
    carol, carol_creds = tenant(cloud)
    image = alice.create(name="for-bob")
    alice.upload(image["id"], b"shared bits")
    path = f"/v2/images/{image['id']}/members"

    # Members only on shared images.
    private = alice.create(name="private", visibility="private")
    r = alice.post(f"/v2/images/{private['id']}/members", json={"member": bob_creds["project_id"]})
    assert r.status_code == 403

    r = alice.post(path, json={"member": bob_creds["project_id"]})
    assert r.status_code == 200, r.text
    member = r.json()
    assert set(member) == {"created_at", "image_id", "member_id", "schema", "status",
                           "updated_at"}
    assert member["status"] == "pending" and member["schema"] == "/v2/schemas/member"
    assert alice.post(path, json={"member": bob_creds["project_id"]}).status_code == 409
    assert alice.post(path, json={"memb": "x"}).status_code == 400

    # Pending: bob can see the image but it is not in his default list.
    assert bob.show(image["id"])["name"] == "for-bob"
    assert image["id"] not in ids(bob)
    assert image["id"] in ids(bob, member_status="pending")
    assert bob.get(f"{path}").json()["members"][0]["member_id"] == bob_creds["project_id"]
    # Carol is no member: nothing.
    assert carol.get(f"/v2/images/{image['id']}").status_code == 404
    assert carol.get(f"/v2/images/{image['id']}/file").status_code == 404
    assert image["id"] not in ids(carol, member_status="all", visibility="all")

    # Only the member sets its status; the owner cannot accept for it.
    member_path = f"{path}/{bob_creds['project_id']}"
    assert alice.put(member_path, json={"status": "accepted"}).status_code == 403
    assert bob.put(member_path, json={"status": "maybe"}).status_code == 400
    r = bob.put(member_path, json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert image["id"] in ids(bob)
    assert bob.get(f"/v2/images/{image['id']}/file").content == b"shared bits"
    # A member cannot change or share the image.
    bob.patch(image["id"], [{"op": "replace", "path": "/name", "value": "bob's"}], expect=403)
    assert bob.post(path, json={"member": carol_creds["project_id"]}).status_code == 403
    assert bob.delete(member_path).status_code == 403

    r = bob.put(member_path, json={"status": "rejected"})
    assert r.json()["status"] == "rejected"
    assert image["id"] not in ids(bob)
    assert image["id"] in ids(bob, member_status="rejected")

    # The owner sees all members; carol is added then removed.
    alice.post(path, json={"member": carol_creds["project_id"]})
    listed = alice.get(path).json()
    assert listed["schema"] == "/v2/schemas/members"
    assert {m["member_id"] for m in listed["members"]} == {bob_creds["project_id"],
                                                            carol_creds["project_id"]}
    assert [m["member_id"] for m in bob.get(path).json()["members"]] == [bob_creds["project_id"]]
    assert alice.get(f"{path}/{carol_creds['project_id']}").json()["status"] == "pending"
    assert bob.get(f"{path}/{carol_creds['project_id']}").status_code == 404
    assert alice.delete(f"{path}/{carol_creds['project_id']}").status_code == 204
    assert alice.delete(f"{path}/{carol_creds['project_id']}").status_code == 404
    assert carol.get(f"/v2/images/{image['id']}").status_code == 404


def test_member_quota(cloud_factory):
    cloud = cloud_factory(image_member_quota=1)
    alice, _ = tenant(cloud)
    image = alice.create(name="q")
    path = f"/v2/images/{image['id']}/members"
    assert alice.post(path, json={"member": "p1"}).status_code == 200
    assert alice.post(path, json={"member": "p2"}).status_code == 413
    assert len(alice.get(path).json()["members"]) == 1


def test_reader_cannot_write(cloud):
    reader, _ = tenant(cloud, role="reader")
    r = reader.post("/v2/images", json={"name": "nope"})
    assert r.status_code == 403
    assert reader.get("/v2/images").status_code == 200
