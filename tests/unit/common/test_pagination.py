"""Keyset pagination returns every row exactly once, in order, on every engine."""

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column
from starlette.datastructures import QueryParams

from pocketstack import config
from pocketstack.common import db, errors, pagination

Base = db.service_base("pagetest")


class Thing(Base):
    __tablename__ = "pagetest_thing"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    size: Mapped[int] = mapped_column(sa.Integer)


@pytest.fixture
def database(database_url, tmp_path, request):
    if hasattr(request.node, "create_database"):
        request.node.create_database("pagetest")
    conf = config.load([], {"state_path": str(tmp_path), "database.connection": database_url})
    database = db.Database(conf, "pagetest", Base.metadata)
    database.sync()
    yield database
    database.drop_all()
    database.dispose()


def _pages(database, sort, limit):
    seen, marker = [], None
    while True:
        with database.reader() as s:
            stmt = pagination.apply(sa.select(Thing), Thing, sort, limit=limit, marker=marker)
            rows = s.scalars(stmt).all()
        seen += [r.id for r in rows]
        if len(rows) < limit:
            return seen
        marker = rows[-1]


@pytest.mark.parametrize("sort", [[("size", "asc")], [("size", "desc")],
                                  [("name", "asc"), ("size", "desc")],
                                  [("name", "desc")]])
def test_pages_cover_everything_once(database, sort):
    with database.session() as s:
        for i in range(57):
            s.add(Thing(id=f"{i:04d}", name=None if i % 7 == 0 else f"n{i % 5}", size=i % 4))
    with database.reader() as s:
        expected = [t.id for t in s.scalars(
            pagination.apply(sa.select(Thing), Thing, sort)).all()]
    got = _pages(database, sort, limit=10)
    assert got == expected
    assert sorted(got) == [f"{i:04d}" for i in range(57)]


def test_parse_sort_and_limit():
    q = QueryParams("sort_key=name&sort_dir=desc&sort_key=size&limit=5")
    assert pagination.parse_sort(q, {"name", "size"}, [("id", "asc")]) == [
        ("name", "desc"), ("size", "desc")]
    assert pagination.parse_limit(q, maximum=3) == 3
    assert pagination.parse_sort(QueryParams("sort=size:asc,name"), {"name", "size"},
                                 []) == [("size", "asc"), ("name", "asc")]
    with pytest.raises(errors.BadRequest):
        pagination.parse_sort(QueryParams("sort_key=password"), {"name"}, [])
    with pytest.raises(errors.BadRequest):
        pagination.parse_sort(QueryParams("sort_key=name&sort_dir=sideways"), {"name"}, [])
    with pytest.raises(errors.BadRequest):
        pagination.parse_limit(QueryParams("limit=-1"))
    with pytest.raises(errors.BadRequest):
        pagination.parse_limit(QueryParams("limit=ten"))
