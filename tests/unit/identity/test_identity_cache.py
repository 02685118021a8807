"""The read cache in front of identity's drivers."""

from __future__ import annotations

import pytest

from pocketstack.identity.backends.base import Store
from pocketstack.identity.backends.cache import CachedStore, CacheMiss, cache_only
from pocketstack.identity.backends.kvs import KvsStore


class Counting(KvsStore):
    def __init__(self):
        super().__init__()
        self.reads = 0

    def get(self, kind, id):
        self.reads += 1
        return super().get(kind, id)

    def list(self, kind, filters=None):
        self.reads += 1
        return super().list(kind, filters)


def _user(id, name):
    return {"id": id, "name": name, "domain_id": "default"}


def test_reads_cached_until_a_write():
    inner = Counting()
    store = CachedStore(inner, ttl=60)
    store.create("user", _user("u1", "alice"))
    assert store.get("user", "u1")["name"] == "alice"
    assert store.get("user", "u1")["name"] == "alice"
    assert store.list("user", {"name": ["alice"]})[0]["id"] == "u1"
    assert store.list("user", {"name": ["alice"]})[0]["id"] == "u1"
    assert inner.reads == 2
    store.update("user", "u1", {"name": "bob"})
    assert store.get("user", "u1")["name"] == "bob"
    assert store.list("user", {"name": ["alice"]}) == []
    # Other kinds keep their entries.
    store.get("group", "g")
    reads = inner.reads
    store.create("user", _user("u2", "carol"))
    store.get("group", "g")
    assert inner.reads == reads


def test_returned_rows_are_copies():
    store = CachedStore(KvsStore(), ttl=60)
    store.create("user", _user("u1", "alice"))
    store.get("user", "u1")["name"] = "mallory"
    store.list("user")[0]["name"] = "mallory"
    assert store.get("user", "u1")["name"] == "alice"


def test_read_racing_a_write_is_not_kept():
    inner = Counting()
    store = CachedStore(inner, ttl=60)
    store.create("user", _user("u1", "alice"))
    real_get = inner.get

    def slow_get(kind, id):
        row = real_get(kind, id)  # read before the write below lands
        store.update("user", "u1", {"name": "bob"})
        return row

    inner.get = slow_get
    assert store.get("user", "u1")["name"] == "alice"  # the racing read itself
    inner.get = real_get
    assert store.get("user", "u1")["name"] == "bob"  # but it was not cached


def test_cache_only_mode():
    inner = Counting()
    store = CachedStore(inner, ttl=60)
    store.create("user", _user("u1", "alice"))
    with cache_only(), pytest.raises(CacheMiss):
        store.get("user", "u1")
    store.get("user", "u1")
    with cache_only():
        assert store.get("user", "u1")["name"] == "alice"
        with pytest.raises(CacheMiss):
            store.update("user", "u1", {"name": "x"})
    assert store.get("user", "u1")["name"] == "alice"


def test_uncacheable_store_passes_through():
    class Outside(KvsStore):
        cacheable = False

    inner = Outside()
    store = CachedStore(inner, ttl=60, enabled=inner.cacheable)
    inner.create("user", _user("u1", "alice"))  # changed behind pocketstack's back
    assert store.get("user", "u1")["name"] == "alice"
    inner.update("user", "u1", {"name": "bob"})
    assert store.get("user", "u1")["name"] == "bob"
    assert store.version("user") is None
    with cache_only(), pytest.raises(CacheMiss):
        store.list("user")
    assert isinstance(inner, Store)
