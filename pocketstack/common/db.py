"""Database plumbing: an engine per service, transactions, retries, schema sync.

SQLite (WAL) is the default: a file per service under ``state_path``. Write
transactions on SQLite start with ``BEGIN IMMEDIATE`` so that concurrent
writers queue on the database lock instead of failing on upgrade; reads use a
second engine and never block writers. On PostgreSQL and MariaDB the same
code runs with row locks (``with_for_update``) and deadlock retries.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

LOG = logging.getLogger(__name__)


class JSONType(TypeDecorator):
    """A JSON document kept as text (portable across the three engines)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


class UTCDateTime(TypeDecorator):
    """A naive UTC timestamp in the database, an aware datetime in Python."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=datetime.UTC)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def isotime(value: datetime.datetime | None, *, micro: bool = False, z: bool = True) -> str | None:
    """ISO 8601 as OpenStack APIs print it: 2026-11-25T18:22:18Z (or .000000Z)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S.%f" if micro else "%Y-%m-%dT%H:%M:%S")
    return text + ("Z" if z else "")


class Base(DeclarativeBase):
    """Each service subclasses this with its own ``metadata`` (see ``service_base``)."""


def service_base(name: str) -> type[DeclarativeBase]:
    """A declarative base whose tables belong to one service."""
    return type(f"{name.title()}Base", (DeclarativeBase,), {"__abstract__": True,
                                                           "metadata": sa.MetaData()})


RETRYABLE_CODES = {
    1213,  # MariaDB deadlock
    1205,  # MariaDB lock wait timeout
    "40001",  # PostgreSQL serialization failure
    "40P01",  # PostgreSQL deadlock
}


def is_retryable(error: Exception) -> bool:
    if not isinstance(error, exc.DBAPIError) or error.orig is None:
        return False
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or (orig.args[0] if orig.args else None)
    if code in RETRYABLE_CODES:
        return True
    return "database is locked" in str(orig)


class Database:
    """The database of one service."""

    def __init__(self, conf, service: str, metadata: sa.MetaData, *,
                 migrations: str | None = None, head: str | None = None):
        self.service = service
        self.metadata = metadata
        self.migrations = migrations
        self.head = head
        self.max_retries = conf.database.max_retries
        self.url = self._url(conf, service)
        self.dialect = sa.engine.make_url(self.url).get_backend_name()
        self.engine = self._make_engine(write=True, pool_size=conf.database.max_pool_size)
        self.read_engine = (self._make_engine(write=False, pool_size=conf.database.max_pool_size)
                            if self.dialect == "sqlite" else self.engine)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        self._sync_lock = threading.Lock()

    @staticmethod
    def _url(conf, service: str) -> str:
        url = conf.database.connection
        if not url:
            os.makedirs(conf.state_path, exist_ok=True)
            return f"sqlite:///{os.path.join(conf.state_path, service + '.sqlite')}"
        return url.replace("{service}", service)

    def _make_engine(self, *, write: bool, pool_size: int) -> sa.Engine:
        if self.dialect != "sqlite":
            return sa.create_engine(self.url, pool_size=pool_size, max_overflow=pool_size * 2,
                                    pool_pre_ping=True, pool_recycle=3600)
        memory = self.url in ("sqlite://", "sqlite:///:memory:")
        engine = sa.create_engine(
            self.url, connect_args={"check_same_thread": False, "timeout": 60},
            poolclass=sa.pool.StaticPool if memory else sa.pool.QueuePool,
            **({} if memory else {"pool_size": pool_size, "max_overflow": pool_size * 4}))

        @event.listens_for(engine, "connect")
        def on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        begin = "BEGIN IMMEDIATE" if write else "BEGIN"

        @event.listens_for(engine, "begin")
        def on_begin(conn):
            conn.exec_driver_sql(begin)

        return engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with self._write.begin() as session:
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only transaction (never blocks writers on SQLite)."""
        with self._read.begin() as session:
            yield session

    def transaction(self, fn, *args, **kwargs) -> Any:
        """Run ``fn(session, ...)`` in a write transaction, retrying on deadlock."""
        for attempt in range(self.max_retries + 1):
            try:
                with self.session() as session:
                    return fn(session, *args, **kwargs)
            except exc.DBAPIError as error:
                if attempt >= self.max_retries or not is_retryable(error):
                    raise
                time.sleep(random.uniform(0, 0.01 * (2 ** min(attempt, 6))))

    # -- schema ------------------------------------------------------------

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.service}"

    def current_revision(self) -> str | None:
        insp = sa.inspect(self.engine)
        if not insp.has_table(self.version_table):
            return None
        with self.engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT version_num FROM {self.version_table}")).scalar()

    def sync(self) -> None:
        """Bring the schema to head: a fresh database is created from the models
        and stamped; an existing one is upgraded by its Alembic migrations."""
        with self._sync_lock:
            current = self.current_revision()
            if self.head is not None and current == self.head:
                return
            if current is None and not self._has_tables():
                self.metadata.create_all(self.engine)
                if self.head is not None:
                    with self.engine.begin() as conn:
                        conn.execute(sa.text(
                            f"CREATE TABLE IF NOT EXISTS {self.version_table} "
                            "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
                        conn.execute(sa.text(f"INSERT INTO {self.version_table} VALUES (:v)"),
                                     {"v": self.head})
                return
            self.upgrade()

    def _has_tables(self) -> bool:
        names = set(sa.inspect(self.engine).get_table_names())
        return any(t in names for t in self.metadata.tables)

    def alembic_config(self):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", self.migrations)
        cfg.set_main_option("version_table", self.version_table)
        cfg.attributes["database"] = self
        return cfg

    def upgrade(self, revision: str = "heads") -> None:
        from alembic import command

        command.upgrade(self.alembic_config(), revision)

    def drop_all(self) -> None:
        self.metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.version_table}"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def run_migrations_online(context) -> None:
    """The body of every service's alembic env.py."""
    database: Database = context.config.attributes["database"]
    with database.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=database.metadata,
                          version_table=database.version_table,
                          render_as_batch=database.dialect == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


def retry_on_deadlock(fn):
    """Decorate a method of an object with a ``db`` attribute: retried whole on deadlock."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        for attempt in range(self.db.max_retries + 1):
            try:
                return fn(self, *args, **kwargs)
            except exc.DBAPIError as error:
                if attempt >= self.db.max_retries or not is_retryable(error):
                    raise
                time.sleep(random.uniform(0, 0.01 * (2 ** min(attempt, 6))))

    return wrapper
