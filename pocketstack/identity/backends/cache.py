"""A read cache in front of a driver, so token validation does not touch the database.

Every write goes through the manager, hence through this wrapper: a write to a kind
bumps that kind's version and drops its cached reads. A read stores its result only
if no write to the kind happened meanwhile, so a cached entry is never older than
the last write made by this process. Entries also expire after ``ttl`` seconds, which
bounds staleness when another process writes to the same database.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time

from pocketstack.identity.backends.base import Store

# Set while a handler runs on the event loop: anything that would block (a read the
# cache cannot answer, a password hash) raises CacheMiss instead, and the handler is
# run again in the thread pool.
_CACHE_ONLY = contextvars.ContextVar("identity_cache_only", default=False)


class CacheMiss(Exception):
    """Raised in cache-only mode where the work would block."""


@contextlib.contextmanager
def cache_only():
    token = _CACHE_ONLY.set(True)
    try:
        yield
    finally:
        _CACHE_ONLY.reset(token)


def may_block() -> None:
    """Call before blocking work (I/O, hashing)."""
    if _CACHE_ONLY.get():
        raise CacheMiss()


def _key(filters: dict | None):
    if not filters:
        return ()
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple, set, frozenset)) else v)
                        for k, v in filters.items()))


class CachedStore:
    """Wraps a ``Store``; behaves as one (other attributes pass through)."""

    def __init__(self, store: Store, ttl: float, enabled: bool = True):
        self._store = store
        self._ttl = ttl
        self._enabled = enabled and ttl > 0
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._entries: dict[str, dict] = {}
        self._born: dict[str, float] = {}

    def __getattr__(self, name):
        return getattr(self._store, name)

    # -- bookkeeping -------------------------------------------------------

    def _entries_of(self, kind: str) -> tuple[int, dict]:
        entries = self._entries.get(kind)
        if entries is None or time.monotonic() - self._born[kind] > self._ttl:
            with self._lock:
                entries = self._entries[kind] = {}
                self._born[kind] = time.monotonic()
        return self._versions.get(kind, 0), entries

    MAX_ENTRIES = 20000  # per kind: lookups of many distinct ids cannot grow it unbounded

    def _remember(self, kind: str, version: int, key, value) -> None:
        with self._lock:
            entries = self._entries.get(kind)
            if self._versions.get(kind, 0) == version and entries is not None:
                if len(entries) >= self.MAX_ENTRIES:
                    entries.clear()
                entries[key] = value

    def version(self, kind: str):
        """Changes whenever what this store holds of ``kind`` may have; None when the
        store is not cached (its data changes behind pocketstack's back)."""
        if not self._enabled:
            return None
        self._entries_of(kind)
        return self._versions.get(kind, 0), self._born[kind]

    def invalidate(self, kind: str | None = None) -> None:
        with self._lock:
            for k in [kind] if kind else list(self._entries):
                self._versions[k] = self._versions.get(k, 0) + 1
                self._entries.pop(k, None)

    # -- reads -------------------------------------------------------------

    def get(self, kind, id):
        if not self._enabled:
            may_block()
            return self._store.get(kind, id)
        version, entries = self._entries_of(kind)
        key = ("get", id)
        if key in entries:
            row = entries[key]
        else:
            may_block()
            row = self._store.get(kind, id)
            self._remember(kind, version, key, row)
        return dict(row) if row is not None else None

    def list(self, kind, filters=None):
        if not self._enabled:
            may_block()
            return self._store.list(kind, filters)
        version, entries = self._entries_of(kind)
        key = ("list", _key(filters))
        rows = entries.get(key)
        if rows is None:
            may_block()
            rows = self._store.list(kind, filters)
            self._remember(kind, version, key, rows)
        return [dict(r) for r in rows]

    def count(self, kind, filters=None):
        return len(self.list(kind, filters))

    def authenticate(self, user: dict, password: str):
        if type(self._store).authenticate is not Store.authenticate:
            may_block()  # the driver checks the password itself (PAM)
        return self._store.authenticate(user, password)

    # -- writes ------------------------------------------------------------

    def create(self, kind, row):
        may_block()
        try:
            return self._store.create(kind, row)
        finally:
            self.invalidate(kind)

    def update(self, kind, id, changes):
        may_block()
        try:
            return self._store.update(kind, id, changes)
        finally:
            self.invalidate(kind)

    def delete(self, kind, filters):
        may_block()
        try:
            return self._store.delete(kind, filters)
        finally:
            self.invalidate(kind)
