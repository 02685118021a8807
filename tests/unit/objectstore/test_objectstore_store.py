"""The store below the API: durability layout, streaming, crash recovery."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from pocketstack import config
from pocketstack.common import errors
from pocketstack.common.db import Database
from pocketstack.objectstore import models
from pocketstack.objectstore.core import ObjectStore
from pocketstack.objectstore.storage import TMP_PREFIX, XATTR, ObjectMeta


def make_store(path, **overrides) -> ObjectStore:
    conf = config.load([], {"state_path": str(path), **overrides})
    db = Database(conf, "objectstore", models.metadata,
                  migrations="pocketstack.objectstore:migrations", head=models.SCHEMA_HEAD)
    db.sync()
    store = ObjectStore(conf, db)
    store.setup()
    return store


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path)
    yield s
    s.stop()
    s.db.dispose()


@pytest.fixture
def direct_store(tmp_path):
    """A store keeping big objects out of the page cache (``direct_io``)."""
    s = make_store(tmp_path / "direct", **{"objectstore.direct_io": True})
    yield s
    s.stop()
    s.db.dispose()


async def agen(*chunks):
    for c in chunks:
        yield c


def test_put_get_head_delete_in_process(store):
    store.ensure_container("AUTH_x", "images")

    async def run():
        info = await store.put("AUTH_x", "images", "img1", agen(b"a" * 70000, b"b" * 3),
                               metadata={"kind": "qcow2"})
        assert info.etag == hashlib.md5(b"a" * 70000 + b"b" * 3).hexdigest()
        assert info.size == 70003
        head = await store.head("AUTH_x", "images", "img1")
        assert head.headers == {"X-Object-Meta-Kind": "qcow2"}
        got, body = await store.get("AUTH_x", "images", "img1", start=69999, end=70002)
        assert b"".join([c async for c in body]) == b"abb"
        await store.delete("AUTH_x", "images", "img1")
        with pytest.raises(errors.NotFound):
            await store.head("AUTH_x", "images", "img1")

    asyncio.run(run())


def test_file_like_bodies_and_metadata_on_the_file(store, tmp_path):
    store.ensure_container("AUTH_x", "c")
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 1))

    async def run():
        with open(src, "rb") as f:
            return await store.put("AUTH_x", "c", "big", f,
                                   content_length=src.stat().st_size)

    info = asyncio.run(run())
    path = store.disk.path("AUTH_x", "c", "big")
    with open(path, "rb") as f:
        assert f.read() == src.read_bytes()
    meta = ObjectMeta.unpack(os.getxattr(path, XATTR))
    assert (meta.name, meta.etag, meta.size) == ("big", info.etag, src.stat().st_size)
    assert os.listdir(store.disk.tmp_dir) == []


def test_failed_upload_leaves_nothing(store):
    store.ensure_container("AUTH_x", "c")

    async def broken():
        yield b"x" * (2 * 1024 * 1024)
        raise ConnectionError("client went away")

    async def run():
        with pytest.raises(ConnectionError):
            await store.put("AUTH_x", "c", "o", broken())
        with pytest.raises(errors.UnprocessableEntity):
            await store.put("AUTH_x", "c", "o", agen(b"abc"), etag="0" * 32)
        with pytest.raises(errors.NotFound):
            await store.put("AUTH_x", "nocontainer", "o", agen(b"abc"))

    asyncio.run(run())
    assert os.listdir(store.disk.tmp_dir) == []
    assert store.read_meta("AUTH_x", "c", "o") is None
    assert store.container_stats("AUTH_x", "c") == (0, 0)


def test_index_rebuilt_after_unclean_stop(tmp_path):
    store = make_store(tmp_path)
    store.ensure_container("AUTH_x", "c")

    async def run():
        for i in range(5):
            await store.put("AUTH_x", "c", f"o{i}", agen(b"12345"))

    asyncio.run(run())
    assert store.container_stats("AUTH_x", "c") == (5, 25)
    # A crash: the last index writes were lost, one object's file is gone, and
    # the process never stopped cleanly.
    store.index.stop()
    with store.db.engine.begin() as conn:
        conn.execute(models.object_.delete().where(models.object_.c.name.in_(["o1", "o2"])))
    os.unlink(store.disk.path("AUTH_x", "c", "o4"))
    # ...and an upload was caught between its seal (metadata on, fsync'd) and its
    # rename into place: never acknowledged, so it must not come back.
    path = store.disk.path("AUTH_x", "c", "o9")
    caught = store.disk.writer(5, hold=True)
    caught.write(b"lost!")
    caught.seal(ObjectMeta("AUTH_x", "c", "o9", "1.0", "x", "text/plain"), path)
    assert os.path.basename(caught.tmp_path).startswith(TMP_PREFIX)
    assert os.path.dirname(caught.tmp_path) == os.path.dirname(path)
    store.pool.shutdown()
    store.db.dispose()
    assert os.path.exists(store.disk.marker)

    again = make_store(tmp_path)
    try:
        names = [r.name for r in again.list_objects("AUTH_x", "c")]
        assert names == ["o0", "o1", "o2", "o3"]
        assert again.container_stats("AUTH_x", "c") == (4, 20)
        assert not os.path.exists(caught.tmp_path)
    finally:
        again.stop()
        again.db.dispose()
    assert not os.path.exists(again.disk.marker)


def test_migration_builds_the_models_schema(tmp_path):
    """Alembic's 0001 and models.py describe the same tables."""
    import sqlalchemy as sa

    conf = config.load([], {"state_path": str(tmp_path)})
    db = Database(conf, "objectstore", models.metadata,
                  migrations="pocketstack.objectstore:migrations", head=models.SCHEMA_HEAD)
    db.upgrade()
    assert db.current_revision() == models.SCHEMA_HEAD
    insp = sa.inspect(db.engine)
    for table in models.metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
        assert set(insp.get_pk_constraint(table.name)["constrained_columns"]) == {
            c.name for c in table.primary_key}
    db.dispose()


@pytest.mark.parametrize("direct", [False, True])
def test_big_reads_at_any_offset(request, direct):
    """Ranges of a big object, through the page cache or with O_DIRECT: unaligned
    starts and ends, the tail."""
    store = request.getfixturevalue("direct_store" if direct else "store")
    store.ensure_container("AUTH_x", "c")
    data = os.urandom(20 * 1024 * 1024 + 12345)

    async def run():
        await store.put("AUTH_x", "c", "big", agen(data))
        for start, end in ((0, None), (1, 9 * 1024 * 1024 + 7), (4095, 4097),
                           (len(data) - 10, None), (3, 8 * 1024 * 1024 + 3)):
            _info, body = await store.get("AUTH_x", "c", "big", start=start, end=end)
            got = b"".join([c async for c in body])
            assert got == data[start:end], (start, end)

    asyncio.run(run())


def test_one_handle_serves_big_then_small_ranges(direct_store):
    """A multi-range GET: after a big range turns the file to O_DIRECT, small ranges
    of the same open file still read right."""
    store = direct_store
    store.ensure_container("AUTH_x", "c")
    data = os.urandom(10 * 1024 * 1024 + 3)

    async def run():
        await store.put("AUTH_x", "c", "big", agen(data))
        handle = store.open_object("AUTH_x", "c", "big")
        parts = store.parts_of(handle)
        try:
            for start, end in ((0, 9 * 1024 * 1024), (5, 10), (100000, 300000),
                               (len(data) - 1, len(data))):
                got = b"".join([c async for c in store.stream(parts, start, end)])
                assert got == data[start:end], (start, end)
            assert handle.direct
        finally:
            handle.close()

    asyncio.run(run())
