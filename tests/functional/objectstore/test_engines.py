"""The index on each database engine: byte-ordered names, listings, exact counts."""

from __future__ import annotations

import concurrent.futures

from .conftest import Swift


def test_listing_and_counts_on_each_engine(pocketstack_cloud_factory, database_url):
    cloud = pocketstack_cloud_factory(enabled_services=["identity", "objectstore"],
                                      **{"database.connection": database_url})
    swift = Swift(cloud)
    try:
        assert swift.put("c").status_code == 201
        # Byte order (Swift's): "B" < "a" < "\u00e9" < "\U0001f600", whatever the collation.
        names = ["a/1", "B", "a/2", "\u00e9t\u00e9", "\U0001f600", "a"]

        def put(n):
            return swift.put(f"c/{n}", content=n.encode()).status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert set(pool.map(put, names)) == {201}
        listed = swift.get("c", params={"format": "json"}).json()
        assert [o["name"] for o in listed] == sorted(names, key=lambda s: s.encode())
        assert swift.get("c", params={"delimiter": "/"}).text.splitlines() == [
            "B", "a", "a/", "\u00e9t\u00e9", "\U0001f600"]
        assert swift.get("c", params={"prefix": "a/", "reverse": "1"}).text.splitlines() == [
            "a/2", "a/1"]
        head = swift.head("c").headers
        assert head["x-container-object-count"] == "6"
        assert int(head["x-container-bytes-used"]) == sum(len(n.encode()) for n in names)
        assert swift.delete("c/a/1").status_code == 204
        assert swift.head("").headers["x-account-object-count"] == "5"
        assert swift.delete("c").status_code == 409
    finally:
        swift.client.close()
