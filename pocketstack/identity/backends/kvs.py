"""In-memory driver: every kind a dict, lost when the process ends."""

from __future__ import annotations

import copy
import threading

from pocketstack.common import errors
from pocketstack.identity import models
from pocketstack.identity.backends.base import Store
from pocketstack.identity.backends.sql import _with_defaults


def _matches(row: dict, filters: dict | None) -> bool:
    for key, value in (filters or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            if row.get(key) not in value:
                return False
        elif row.get(key) != value:
            return False
    return True


class KvsStore(Store):
    def __init__(self):
        self._data: dict[str, dict[tuple, dict]] = {kind: {} for kind in models.KINDS}
        self._lock = threading.RLock()

    @staticmethod
    def _key(kind: str, row: dict) -> tuple:
        return tuple(row[c.key] for c in models.KINDS[kind].primary_key.columns)

    def _unique_sets(self, kind):
        table = models.KINDS[kind]
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                yield [c.key for c in constraint.columns]
        for column in table.columns:
            if column.unique:
                yield [column.key]

    def _check_unique(self, kind, row, ignore_key=None):
        rows = self._data[kind]
        for columns in self._unique_sets(kind):
            wanted = tuple(row.get(c) for c in columns)
            for key, other in rows.items():
                if key != ignore_key and tuple(other.get(c) for c in columns) == wanted:
                    raise errors.Conflict(f"Conflict occurred attempting to store {kind} - "
                                          "Duplicate entry.")

    def create(self, kind, row):
        full = _with_defaults(models.KINDS[kind], row)
        key = self._key(kind, full)
        with self._lock:
            if key in self._data[kind]:
                raise errors.Conflict(f"Conflict occurred attempting to store {kind} - "
                                      "Duplicate entry.")
            self._check_unique(kind, full)
            self._data[kind][key] = copy.deepcopy(full)
        return full

    def get(self, kind, id):
        with self._lock:
            row = self._data[kind].get((id,))
            return copy.deepcopy(row) if row else None

    def list(self, kind, filters=None):
        with self._lock:
            return [copy.deepcopy(r) for r in self._data[kind].values() if _matches(r, filters)]

    def update(self, kind, id, changes):
        with self._lock:
            row = self._data[kind].get((id,))
            if row is None:
                return None
            updated = {**row, **copy.deepcopy(changes)}
            self._check_unique(kind, updated, ignore_key=(id,))
            self._data[kind][(id,)] = updated
            return copy.deepcopy(updated)

    def delete(self, kind, filters):
        with self._lock:
            doomed = [k for k, r in self._data[kind].items() if _matches(r, filters)]
            for key in doomed:
                del self._data[kind][key]
            return len(doomed)


def create(area, conf, shared):
    store = shared.get("kvs")
    if store is None:
        store = shared["kvs"] = KvsStore()
    return store
