"""Compute's hot-path SQL helpers on a real SQLite file: one-pass row decoding and
group commit on plain connections."""

from __future__ import annotations

import datetime
import threading

import pytest
import sqlalchemy as sa

from pocketstack.common.groupcommit import GroupCommit
from pocketstack.compute import models as m
from pocketstack.compute import sql, views


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'compute.sqlite'}")
    m.metadata.create_all(engine)
    yield engine
    engine.dispose()


def insert_server(conn, uuid: str, **values) -> None:
    now = datetime.datetime(2026, 11, 25, 18, 8, 59, 123456, tzinfo=datetime.UTC)
    row = dict(uuid=uuid, project_id="p", user_id="u", vm_state="active",
               flavor={"name": "m1.nano", "vcpus": 1, "extra_specs": {"a": "b"}},
               meta={"k": "v"}, system_metadata={}, tags=["x"], security_groups=[],
               network_info=[{"id": "port", "network": {"label": "net"}}], block_devices=[],
               request_spec={}, fault=None, created_at=now, updated_at=None,
               launched_at=now, config_drive="", locked=False)
    row.update(values)
    conn.execute(m.instance.insert().values(**row))


def test_decoded_rows_equal_sqlalchemy_rows(engine):
    with engine.begin() as conn:
        insert_server(conn, "a")
        insert_server(conn, "b", fault={"code": 500}, meta={}, launched_at=None)
    columns = list(m.instance.c)
    with engine.connect() as conn:
        typed = [dict(r) for r in conn.execute(
            sa.select(*columns).order_by(m.instance.c.uuid)).mappings()]
        plain = sql.decode_rows(conn.execute(
            sql.plain_select(columns).order_by(m.instance.c.uuid)))
    assert len(plain) == len(typed) == 2
    for got, want in zip(plain, typed, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, datetime.datetime):
                # naive UTC from decode_rows, aware UTC from UTCDateTime: shown alike
                assert got[key].tzinfo is None
                assert got[key] == value.replace(tzinfo=None)
                assert views.micro(got[key]) == views.micro(value)
                assert views.zulu(got[key]) == views.zulu(value)
            else:
                assert got[key] == value, key
    assert views.micro(typed[0]["launched_at"]) == "2026-11-25T18:08:59.123456"
    assert views.zulu(typed[0]["created_at"]) == "2026-11-25T18:08:59Z"


def test_group_commit_on_plain_connections(engine):
    """Concurrent writers share commits; a failing one leaves nothing behind and
    gets its own error; the others' rows are all there."""
    group = GroupCommit(None, begin=engine.begin)
    results: dict[str, object] = {}

    def write(conn, uuid):
        insert_server(conn, uuid)
        if uuid == "bad":
            raise ValueError("refused")
        return uuid

    def worker(uuid):
        try:
            results[uuid] = group.run(write, uuid)
        except ValueError as exc:
            results[uuid] = exc

    names = [f"s{i}" for i in range(12)] + ["bad"]
    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(results.pop("bad"), ValueError)
    assert results == {n: n for n in names if n != "bad"}
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(m.instance.c.uuid)).scalars())
    assert stored == {n for n in names if n != "bad"}


def test_group_commit_nested_call_joins_the_unit(engine):
    group = GroupCommit(None, begin=engine.begin)

    def outer(conn):
        insert_server(conn, "outer")
        return group.run(lambda inner: inner is conn)

    assert group.run(outer) is True
