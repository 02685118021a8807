"""openstacksdk's `conn.image` calls beyond create/upload/download."""

from __future__ import annotations

from .conftest import Glance


def test_sdk_calls(cloud):
    conn = cloud.connect()
    glance = Glance(cloud, conn)
    for i in range(30):
        glance.create(name=f"many-{i:02d}")
    # The SDK follows `next` links past the default page of 25.
    assert len(list(conn.image.images())) == 30
    assert [i.name for i in conn.image.images(sort="name:asc", limit=5)][:3] == [
        "many-00", "many-01", "many-02"]

    image = conn.image.find_image("many-07")
    conn.image.add_tag(image, "gold")
    assert conn.image.get_image(image).tags == ["gold"]
    assert [i.name for i in conn.image.images(tag="gold")] == ["many-07"]
    conn.image.remove_tag(image, "gold")
    assert conn.image.get_image(image).tags == []

    other = cloud.make_user()
    member = conn.image.add_member(image, member_id=other["project_id"])
    assert member.status == "pending"
    assert [m.member_id for m in conn.image.members(image)] == [other["project_id"]]
    theirs = cloud.connect(username=other["username"], password=other["password"],
                           project_name=other["project_name"])
    theirs.image.update_member(other["project_id"], image, status="accepted")
    assert [i.id for i in theirs.image.images()] == [image.id]
    conn.image.remove_member(other["project_id"], image)
    assert list(theirs.image.images()) == []

    glance.upload(image.id, b"bits")
    conn.image.deactivate_image(image)
    assert conn.image.get_image(image).status == "deactivated"
    conn.image.reactivate_image(image)
    assert conn.image.get_image(image).status == "active"

    assert "glance-direct" in conn.image.get_import_info().import_methods["value"]
    assert [s.id for s in conn.image.stores()] == ["file"]
    schema = conn.image.get_images_schema()
    assert schema.properties["images"]["type"] == "array"
    assert conn.image.get_image_schema().properties["os_hidden"]["type"] == "boolean"
    assert conn.image.get_member_schema().properties["status"]["enum"] == [
        "pending", "accepted", "rejected"]
