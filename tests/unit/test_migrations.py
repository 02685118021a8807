"""Every service's Alembic migrations build exactly the schema of its models,
on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from pocketstack import config
from pocketstack.common.db import Database

SERVICES = ["identity", "objectstore", "image", "network", "compute", "volume"]


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_the_models(service, database_url, tmp_path):
    models = importlib.import_module(f"pocketstack.{service}.models")
    conf = config.load([], {"state_path": str(tmp_path), "database.connection": database_url})
    db = Database(conf, service, models.metadata, migrations=f"pocketstack.{service}:migrations",
                  head=models.SCHEMA_HEAD)
    try:
        script = ScriptDirectory.from_config(db.alembic_config())
        assert script.get_heads() == [models.SCHEMA_HEAD]
        assert db.current_revision() is None
        db.upgrade()
        assert db.current_revision() == models.SCHEMA_HEAD
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": db.version_table,
                                                         "compare_type": True})
            assert compare_metadata(ctx, models.metadata) == []
    finally:
        db.drop_all()
        db.dispose()
