"""Identity backends. Each area (identity, resource, assignment, catalog) has a
driver chosen by ``[<area>] driver``; every driver is a ``Store`` of the
entity kinds of its area (see ``base.AREAS``)."""

from __future__ import annotations

import importlib

from pocketstack.identity.backends.base import AREAS, Store
from pocketstack.identity.backends.cache import CachedStore, CacheMiss, cache_only, may_block


def load(area: str, name: str, conf, shared: dict) -> Store:
    """The driver ``name`` for ``area``; drivers of the same name share one store."""
    module = importlib.import_module(f"pocketstack.identity.backends.{name}")
    return module.create(area, conf, shared)


__all__ = ["AREAS", "CacheMiss", "CachedStore", "Store", "cache_only", "load", "may_block"]
