"""Identity on SQLite, PostgreSQL and MariaDB: the Alembic migration, db sync, real use."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pocketstack import config
from pocketstack.common.db import Database
from pocketstack.identity import models

from .conftest import Http, assert_error


def _database(url, tmp_path) -> Database:
    conf = config.load([], {"state_path": str(tmp_path), "database.connection": url})
    return Database(conf, "identity", models.metadata,
                    migrations="pocketstack.identity:migrations", head=models.SCHEMA_HEAD)


def test_migration_matches_models(database_url, tmp_path):
    db = _database(database_url, tmp_path)
    try:
        assert db.current_revision() is None
        db.upgrade()
        assert db.current_revision() == models.SCHEMA_HEAD == "0001"
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": db.version_table})
            diff = compare_metadata(ctx, models.metadata)
        assert diff == []
        db.sync()  # already at head: nothing to do
        assert db.current_revision() == "0001"
    finally:
        db.drop_all()
        db.dispose()


def test_db_sync_command_and_use(database_url, tmp_path):
    conf_path = tmp_path / "pocketstack.conf"
    conf_path.write_text(f"[DEFAULT]\nenabled_services = identity\nstate_path = {tmp_path}\n\n"
                         f"[database]\nconnection = {database_url}\n")
    proc = subprocess.run([sys.executable, "-m", "pocketstack", "manage", "db", "sync",
                           "--config-file", str(conf_path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "POCKETSTACK_CONF": ""})
    assert proc.returncode == 0, proc.stderr
    assert "identity: schema at 0001" in proc.stdout
    db = _database(database_url, tmp_path)
    try:
        assert db.current_revision() == "0001"
        assert set(sa.inspect(db.engine).get_table_names()) >= set(models.metadata.tables)
    finally:
        db.dispose()


def test_identity_works_on_engine(database_url, pocketstack_cloud_factory):
    cloud = pocketstack_cloud_factory(**{"enabled_services": ["identity"],
                                         "database.connection": database_url})
    http = Http(cloud)
    http.token = http.admin_token()
    creds = cloud.make_user()
    token, body = http.issue(creds["username"], creds["password"],
                             scope={"project": {"id": creds["project_id"]}})
    assert {r["name"] for r in body["token"]["roles"]} == {"member", "reader"}
    # Unique keys hold on every engine (roles without a domain included).
    assert_error(http.post("/v3/users", json={"user": {"name": creds["username"]}}), 409)
    assert_error(http.post("/v3/roles", json={"role": {"name": "member"}}), 409)
    r = http.post("/v3/users", json={"user": {"name": "extra", "blob": {"k": [1, 2]}}})
    assert r.json()["user"]["blob"] == {"k": [1, 2]}
    assert http.delete("/v3/auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
    assert_error(http.get("/v3/auth/projects", token=token), 401)
    rows = http.get("/v3/role_assignments", params={"include_names": "1"}
                    ).json()["role_assignments"]
    assert any(r["user"]["name"] == creds["username"] for r in rows)
    http.close()
