"""SQL driver (SQLite, PostgreSQL, MariaDB) over the tables of models.py."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc

from pocketstack.common import errors
from pocketstack.identity import models
from pocketstack.identity.backends.base import Store


def _where(table: sa.Table, filters: dict | None):
    clauses = []
    for key, value in (filters or {}).items():
        column = table.c[key]
        if isinstance(value, (list, tuple, set, frozenset)):
            clauses.append(column.in_(list(value)))
        elif value is None:
            clauses.append(column.is_(None))
        else:
            clauses.append(column == value)
    return clauses


class SqlStore(Store):
    def __init__(self, database):
        self.db = database

    def _table(self, kind: str) -> sa.Table:
        return models.KINDS[kind]

    def create(self, kind, row):
        table = self._table(kind)
        full = _with_defaults(table, row)
        try:
            with self.db.session() as s:
                s.execute(table.insert().values(**full))
        except exc.IntegrityError:
            raise errors.Conflict(f"Conflict occurred attempting to store {kind} - "
                                  "Duplicate entry.") from None
        return full

    def get(self, kind, id):
        table = self._table(kind)
        with self.db.reader() as s:
            row = s.execute(sa.select(table).where(table.c.id == id)).mappings().first()
        return dict(row) if row else None

    def list(self, kind, filters=None):
        table = self._table(kind)
        with self.db.reader() as s:
            rows = s.execute(sa.select(table).where(*_where(table, filters))).mappings().all()
        return [dict(r) for r in rows]

    def count(self, kind, filters=None):
        table = self._table(kind)
        with self.db.reader() as s:
            return s.execute(sa.select(sa.func.count()).select_from(table)
                             .where(*_where(table, filters))).scalar_one()

    def update(self, kind, id, changes):
        table = self._table(kind)
        try:
            with self.db.session() as s:
                if changes:
                    s.execute(table.update().where(table.c.id == id).values(**changes))
                row = s.execute(sa.select(table).where(table.c.id == id)).mappings().first()
        except exc.IntegrityError:
            raise errors.Conflict(f"Conflict occurred attempting to update {kind} - "
                                  "Duplicate entry.") from None
        return dict(row) if row else None

    def delete(self, kind, filters):
        table = self._table(kind)
        with self.db.session() as s:
            return s.execute(table.delete().where(*_where(table, filters))).rowcount


def _with_defaults(table: sa.Table, row: dict) -> dict:
    full = dict(row)
    for column in table.columns:
        if column.key not in full:
            default = column.default
            if default is not None and not callable(default.arg):
                full[column.key] = default.arg
            elif default is not None:
                full[column.key] = default.arg(None)
            else:
                full[column.key] = None
    return full


def create(area, conf, shared):
    store = shared.get("sql")
    if store is None:
        store = shared["sql"] = SqlStore(shared["database"])
    return store
