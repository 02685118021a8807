"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

SERVER_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4",
}


def _admin_url(engine: str) -> str:
    return SERVER_URLS[engine].format(db="postgres" if engine == "postgresql" else "")


def missing(what: str):
    """A required service or binary is missing: fail in CI, skip on a dev box."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database_url(request, tmp_path):
    """A fresh, empty database on each engine; the URL has a `{service}`
    placeholder so each service gets its own database (as in production)."""
    engine = request.param
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path}/{{service}}.sqlite"
        return
    prefix = f"pst_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(_admin_url(engine), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        missing(f"{engine} server ({exc.__class__.__name__})")
    created = []

    def create(service: str) -> None:
        name = f"{prefix}_{service}"
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        created.append(name)

    request.node.create_database = create
    for service in ("identity", "objectstore", "image", "network", "compute", "volume"):
        create(service)
    yield SERVER_URLS[engine].format(db=f"{prefix}_{{service}}")
    with admin.connect() as conn:
        for name in created:
            if engine == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()
